import pytest

from medsight.nlp.note import MAX_NOTE_CHARS, NoteError, validate_note


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("12/03/2021 08:15 -- 37.5", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"\xff\xfe\xfa bad bytes", "UTF-16"),  # a UTF-16 byte-order mark, then an odd number of bytes
        (b"\x81\x8d\x90 bad bytes", "UTF-8, UTF-16 or Windows-1252"),
        ("x" * (MAX_NOTE_CHARS + 1), "limit"),
        ("Le patient présente une pneumonie du lobe inférieur droit avec un épanchement pleural et une toux depuis trois jours.", "English"),
        ("El paciente presenta una neumonía en el lóbulo inferior derecho y un derrame pleural leve desde hace dos días.", "English"),
        ("Der Patient hat seit drei Tagen Husten und eine Lungenentzündung mit einem Pleuraerguss auf der linken Seite.", "English"),
        ("右下葉に浸潤影を認める。胸水なし。", "English"),
        (12345, "text"),
    ],
)
def test_bad_notes_raise_one_clear_sentence(bad, words):
    with pytest.raises(NoteError) as err:
        validate_note(bad)
    message = str(err.value)
    assert words in message
    assert message.count(". ") == 0 and "\n" not in message  # one sentence


def test_note_error_is_a_value_error():
    assert issubclass(NoteError, ValueError)


@pytest.mark.parametrize(
    "good",
    [
        "No pleural effusion.",
        "Heart size is normal. The lungs are clear. There is no pneumothorax or pleural effusion.",
        "Pt c/o SOB, CP x2d. CXR: RLL opacity. Tx: azithromycin.",
        b"Findings: Mild cardiomegaly. Impression: No acute disease.",
    ],
)
def test_english_notes_and_terse_clinical_shorthand_pass(good):
    assert validate_note(good)


def test_importing_the_package_is_light_and_never_imports_streamlit():
    import subprocess
    import sys

    code = "import sys, medsight.nlp; print(sorted(m for m in ('streamlit', 'spacy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
