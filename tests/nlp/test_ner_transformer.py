"""Transformer NER: windows and BIO tags, the training path on a tiny inline corpus (with a stop and resume), the
shipped model tagging a note, and eval-ner on a slice of BC5CDR Test."""

import json
from pathlib import Path

import pytest

from medsight.nlp.corpus import read_pubtator
from medsight.nlp.transformer_ner import (
    bio_tags,
    doc_words,
    load_transformer_pipeline,
    spans_from_tags,
    transformer_available,
    windows,
)

PUBTATOR = """354896|t|Lidocaine-induced cardiac asystole.
354896|a|Intravenous administration of a single 50-mg bolus of lidocaine in a 67-year-old man resulted in profound depression of the activity of the sinoatrial and atrioventricular nodal pacemakers.
354896	0	9	Lidocaine	Chemical	D008012
354896	18	34	cardiac asystole	Disease	D006323
354896	90	99	lidocaine	Chemical	D008012
354896	142	152	depression	Disease	D003866
354896	CID	D008012	D006323

2004|t|Naloxone reverses the antihypertensive effect of clonidine.
2004|a|In unanesthetized, spontaneously hypertensive rats the decrease in blood pressure and heart rate produced by intravenous clonidine was inhibited by naloxone.
2004	0	8	Naloxone	Chemical	D009270
2004	49	58	clonidine	Chemical	D003000
2004	93	105	hypertensive	Disease	D006973
2004	181	190	clonidine	Chemical	D003000
2004	208	216	naloxone	Chemical	D009270
"""

BC5CDR = Path(__file__).resolve().parents[3] / "shared" / "data" / "corpus" / "bc5cdr"


class _Tok:
    def __init__(self, text):
        self.text = text


def test_windows_cut_at_sentence_ends_and_cover_every_word():
    words = [_Tok(t) for t in ["a", "b", "c", ".", "d", "e", "f", ".", "g", "h"]]
    assert windows(words, [1] * len(words), max_pieces=5) == [(0, 4), (4, 8), (8, 10)]
    assert windows(words, [1] * len(words), max_pieces=6) == [(0, 4), (4, 10)]
    assert windows(words, [1] * len(words), max_pieces=100) == [(0, 10)]
    assert windows([_Tok("x")] * 5, [3] * 5, max_pieces=4) == [(i, i + 1) for i in range(5)]  # no sentence end


def test_spans_from_bio_tags_repair_stray_inside_tags():
    tags = ["B-Chemical", "I-Chemical", "O", "I-Disease", "I-Disease", "B-Disease", "I-Chemical"]
    assert spans_from_tags(tags) == [(0, 2, "Chemical"), (3, 5, "Disease"), (5, 6, "Disease"), (6, 7, "Chemical")]


def test_bio_tags_from_character_spans(tmp_path):
    from medsight.nlp.ner import blank_pipeline

    (tmp_path / "mini.txt").write_text(PUBTATOR)
    d = read_pubtator(tmp_path / "mini.txt")[0]
    doc = blank_pipeline().make_doc(d.text)
    words = doc_words(doc)
    tags = bio_tags(doc, words, d.entities)
    assert [(w.text, t) for w, t in zip(words, tags)][:5] == [
        ("Lidocaine", "B-Chemical"), ("-", "O"), ("induced", "O"), ("cardiac", "B-Disease"), ("asystole", "I-Disease")
    ]


def test_training_path_stops_resumes_and_saves_a_loadable_model(tmp_path):
    from dataclasses import replace

    import torch

    from medsight.nlp.transformer_train import (
        TransformerTrainConfig,
        train_transformer_ner,
    )

    torch.set_num_threads(1)
    (tmp_path / "mini.txt").write_text(PUBTATOR)
    docs = read_pubtator(tmp_path / "mini.txt")
    cfg = TransformerTrainConfig(epochs=4, learn_rate=2e-3, batch_size=2, frozen_layers=5, checkpoint_every=1, max_minutes=0.0)
    out, ck = tmp_path / "model", tmp_path / "ck"
    quiet = lambda m: None
    assert train_transformer_ner(docs * 2, out, cfg, dev_docs=docs, checkpoint_dir=ck, progress=quiet) == []
    assert (ck / "checkpoint.pt").exists() and not out.exists()  # stopped after its first step, resumably
    with pytest.raises(ValueError, match="another configuration"):
        train_transformer_ner(docs * 2, out, replace(cfg, learn_rate=1e-3), dev_docs=docs, checkpoint_dir=ck, progress=quiet)
    messages = []
    history = train_transformer_ner(docs * 2, out, replace(cfg, max_minutes=60.0), dev_docs=docs, checkpoint_dir=ck, progress=messages.append)
    assert any(m.startswith("resuming at epoch 1, step 1/") for m in messages)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4] and history[-1]["loss"] < history[0]["loss"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["selected_on"] == "dev" and meta["epoch"] == max(history, key=lambda r: r["dev_f1"])["epoch"]
    assert (out / "model.safetensors").stat().st_size < 5e6  # only the top layer and the classifier are stored
    nlp = load_transformer_pipeline(out)
    assert nlp.pipe_names == ["ner"] and nlp.meta["name"] == "medsight_ner_bc5cdr_transformer"
    doc = nlp("Lidocaine-induced cardiac asystole.")
    assert all(e.label_ in ("Chemical", "Disease") for e in doc.ents)
    if (BC5CDR / "CDR_TestSet.PubTator.txt").exists():  # eval-ner on a slice of Test with this model folder
        from medsight.cli import main

        assert main(["nlp", "eval-ner", "--out", str(tmp_path / "ev"), "--corpus", str(BC5CDR), "--limit", "2", "--model", str(out)]) == 0
        m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
        assert {"f1", "precision", "recall", "per_type", "selected_on", "dataset", "model", "kind"} <= set(m)
        assert m["selected_on"] == "dev" and m["kind"] == "transformer" and m["documents"] == 2
        assert set(m["per_type"]) == {"Chemical", "Disease"} and 0.0 <= m["f1"] <= 1.0


@pytest.mark.skipif(not (BC5CDR / "CDR_TestSet.PubTator.txt").exists(), reason="BC5CDR corpus not in ../shared/data")
def test_eval_ner_cnn_slice_says_its_epochs_were_chosen_on_dev(tmp_path):
    from medsight.cli import main

    assert main(["nlp", "eval-ner", "--out", str(tmp_path), "--corpus", str(BC5CDR), "--limit", "3", "--kind", "cnn"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["kind"] == "cnn" and m["selected_on"] == "dev" and m["documents"] == 3 and 0.5 < m["f1"] <= 1.0


def test_ner_kind_resolution(monkeypatch):
    from medsight.nlp.ner import ner_kind, scispacy_available

    monkeypatch.setenv("MEDSIGHT_NER", "cnn")
    assert ner_kind() == "cnn" and ner_kind("transformer") == "transformer"
    monkeypatch.delenv("MEDSIGHT_NER")
    from medsight.nlp.lm_ner import lm_ner_available

    expected = ("scispacy" if scispacy_available() else "smollm" if lm_ner_available()
                else "transformer" if transformer_available() else "cnn")
    assert ner_kind() == expected
    with pytest.raises(ValueError, match="unknown NER kind"):
        ner_kind("bert")


@pytest.mark.skipif(not transformer_available(), reason="no shipped transformer NER in weights/ner_transformer")
def test_shipped_transformer_tags_a_note_and_keeps_ruler_entities():
    import torch

    from medsight.nlp.lexicon import add_lexicon_ruler
    from medsight.nlp.ner import load_ner

    torch.set_num_threads(1)
    nlp = load_ner(kind="transformer")
    doc = nlp("Haloperidol-induced catalepsy in a patient with schizophrenia treated with lithium carbonate.")
    ents = {(e.text, e.label_) for e in doc.ents}
    assert {("Haloperidol", "Chemical"), ("catalepsy", "Disease"), ("schizophrenia", "Disease")} <= ents
    assert nlp.meta["name"] == "medsight_ner_bc5cdr_transformer"
    add_lexicon_ruler(nlp)  # the vocabulary ruler runs before the transformer and its matches win
    assert nlp.pipe_names == ["lexicon", "ner"]
    doc = nlp("Patient reports dyspnea after aspirin.")
    assert ("dyspnea", "SYMPTOM") in {(e.text, e.label_) for e in doc.ents}
    assert ("aspirin", "Chemical") in {(e.text, e.label_) for e in doc.ents}


def test_card_states_the_protocol_and_both_splits():
    from medsight.nlp.evaluate import render_model_card

    per = {"Chemical": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 6}, "Disease": {"precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 4}}
    dev = {"precision": 0.86, "recall": 0.86, "f1": 0.86, "support": 10, "per_type": per, "documents": 500}
    test = dev | {"f1": 0.851}
    meta = {"selected_on": "dev", "epoch": 3, "trained_on": "BC5CDR Training",
            "config": {"frozen_layers": 0, "learn_rate": 1e-4, "epochs": 8, "max_pieces": 254},
            "history": [{"epoch": 1, "loss": 0.2, "minutes": 5.0, "dev_f1": 0.8, "dev_per_type": {"Chemical": 0.85, "Disease": 0.75}}]}
    card = render_model_card(None, None, None, None, transformer={"meta": meta, "dev": dev, "test": test, "size_mb": 21.3})
    assert "selected_on = dev" in card and "epoch 3" in card and "21.3 MB" in card
    assert "| Development (500 abstracts) | **all** |" in card and "**0.851**" in card
    assert "NER, fast option: CNN" in card
