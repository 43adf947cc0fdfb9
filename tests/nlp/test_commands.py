import json

import pytest

from medsight.cli import main


def test_analyze_json(tmp_path, capsys, pipeline):
    note = tmp_path / "note.txt"
    note.write_text("No pleural effusion. Mild cardiomegaly. Patient reports dyspnea.")
    assert main(["nlp", "analyze", str(note), "--json", "--anomaly-score", "0.8", "--risk-band", "HIGH"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "cardiomegaly" in out["reported_conditions"]
    assert "pleural effusion" in out["negated_conditions"]
    assert {"text": "dyspnea", "label": "SYMPTOM"}.items() <= next(e for e in out["entities"] if e["text"] == "dyspnea").items()
    assert out["fusion"]["agreement"] == "consistent"


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary", "Der Patient hat seit drei Tagen Husten und eine Lungenentz\u00fcndung mit einem Pleuraerguss.".encode()])
def test_analyze_bad_input_is_one_line_not_a_traceback(tmp_path, capsys, content, pipeline):
    note = tmp_path / "note.txt"
    note.write_bytes(content)
    assert main(["nlp", "analyze", str(note)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsight: error: ") and "\n" not in err and "Traceback" not in err


def test_analyze_missing_file(tmp_path, capsys):
    assert main(["nlp", "analyze", str(tmp_path / "nope.txt")]) == 2
    assert "no note file" in capsys.readouterr().err
