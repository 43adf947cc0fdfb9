"""The paper's models (DistilBART-MNLI, BiomedCLIP, scispaCy) are optional: offline they are reported absent, never
downloaded, and the offline defaults take over."""

from PIL import Image

from medsight.nlp import fusion, zeroshot
from medsight.nlp.ner import scispacy_available


def test_nli_model_is_not_fetched_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSIGHT_NLI_MODEL", str(tmp_path / "missing"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = zeroshot.nli_model_path()  # must not raise nor reach the network
    if path is None:
        zeroshot.load_nli.cache_clear()
        assert zeroshot.classify_nli("Mild cardiomegaly.") is None


def test_biomedclip_alignment_is_none_without_open_clip():
    similarity = fusion.image_text_alignment(Image.new("RGB", (224, 224)), "cardiomegaly")
    assert similarity is None or -1.0 <= similarity <= 1.0


def test_analysis_names_its_backends(analyze):
    a = analyze("Mild cardiomegaly.")
    assert a.backends["zeroshot"] in ("embedding:all-MiniLM-L6-v2", "nli:distilbart-mnli")
    assert "bc5cdr" in a.backends["ner"]
    if not scispacy_available():
        from medsight.nlp.lm_ner import lm_ner_available

        assert a.backends["ner"] == ("medsight_ner_bc5cdr_smollm" if lm_ner_available() else "medsight_ner_bc5cdr")
