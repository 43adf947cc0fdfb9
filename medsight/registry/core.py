"""`ModelRegistry`: loading in priority order, placement under the GPU budget, eviction, retries and status."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from medsight.registry.entry import (
    CPU_FALLBACK,
    CUDA_MEASURED,
    DEFAULT_RETRY_S,
    ESTIMATE,
    EVICTED,
    LOADED,
    LOADING,
    PENDING,
    RSS_MEASURED,
    TENSORS,
    UNAVAILABLE,
    ModelEntry,
    ModelUnavailable,
    cuda_allocated_mb,
    default_device,
    empty_cuda_cache,
    gpu_budget_mb,
    is_user_error,
    one_sentence,
    process_rss_mb,
    tensor_mb,
    torch_mover,
)
from medsight.specs import MODEL_SPECS

log = logging.getLogger(__name__)


class ModelRegistry:
    """Owner of every loaded model in the process. All public methods are thread-safe."""

    def __init__(self, budget_mb: float | None = None, device: str | None = None,
                 cuda_memory: Callable[[], float] | None = None, retry_after_s: float | None = None,
                 process_memory: Callable[[], float | None] | None = None):
        self.budget_mb = float(budget_mb if budget_mb is not None else gpu_budget_mb())
        self.device = device or default_device()
        #: seconds before a failed load is tried again on next use (default MEDSIGHT_RETRY_S); inf: only `retry()`
        self.retry_after_s = float(os.environ.get("MEDSIGHT_RETRY_S", DEFAULT_RETRY_S) if retry_after_s is None else retry_after_s)
        self._entries: dict[str, ModelEntry] = {}
        self._lock = threading.RLock()  # guards entry fields and the accounting; held briefly
        self._load_lock = threading.Lock()  # one load or move at a time
        self._cuda_memory = cuda_memory or cuda_allocated_mb
        self._process_memory = process_memory or process_rss_mb
        self.evictions: list[dict] = []  # what was moved off the GPU or unloaded, and why
        self._background: threading.Thread | None = None
        self.started_at = time.perf_counter()

    # -- registration ---------------------------------------------------------------------------------------
    def register(self, key: str, loader: Callable[[str], Any], *, spec_key: str | tuple[str, ...] | None = None,
                 priority: int | None = None, memory_mb: float | None = None, gpu: bool = False,
                 mover: Callable[[Any, str], Any] | None = None, role: str | None = None,
                 requires: tuple[str, ...] = (), held_by_module: bool = False,
                 resident: Callable[[], bool] | None = None) -> ModelEntry:
        """Add a model. Priority, memory estimate and role come from the spec table (`spec_key`, several keys add
        up their memory) unless given here; a spec registered by the module the loader imports is read after the
        load. `requires`: registered keys loaded first, so a shared model is loaded and counted once."""
        entry = ModelEntry(key=key, loader=loader, priority=50 if priority is None else priority,
                           estimate_mb=memory_mb or 0.0, gpu=gpu, mover=(mover or torch_mover) if gpu else None,
                           role=role or "", requires=tuple(requires), held_by_module=held_by_module, resident=resident)
        entry.spec_keys = (spec_key,) if isinstance(spec_key, str) else tuple(spec_key or (key,))
        entry.explicit = {"priority": priority is not None, "memory_mb": memory_mb is not None, "role": role is not None}
        self._apply_specs(entry)
        with self._lock:
            if key in self._entries:
                raise ValueError(f"model {key!r} is already registered")
            unknown = [k for k in entry.requires if k not in self._entries]
            if unknown:
                raise ValueError(f"model {key!r} requires {unknown}, which are not registered (register them first)")
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

    def retry(self, key: str | None = None) -> list[str]:
        """Make an unavailable model (every one, without `key`) loadable again now; the next use or
        `start_background` loads it. Returns the keys reset."""
        with self._lock:
            reset = []
            for entry in [self._entry(key)] if key else list(self._entries.values()):
                if entry.state == UNAVAILABLE:
                    entry.state, entry.error, entry.failed_at = PENDING, "", None
                    entry.ready.clear()
                    reset.append(entry.key)
            return reset

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

    def _still_unavailable(self, entry: ModelEntry) -> bool:
        """True while a failed load should not be tried again yet (no automatic retry, or its cooldown runs)."""
        if entry.state != UNAVAILABLE:
            return False
        return time.monotonic() - (entry.failed_at or 0.0) < self.retry_after_s

    def _ensure(self, key: str, touch: bool, pin: bool = False) -> Any:
        entry = self._entry(key)
        with self._lock:  # fast path: already where it belongs
            if entry.state == LOADED:
                return self._claim(entry, touch, pin)
            if self._still_unavailable(entry):
                raise ModelUnavailable(entry.error)
        for dep in entry.requires:  # each loaded (and measured) on its own, before the load lock below is taken
            try:
                self._ensure(dep, touch=touch)
            except ModelUnavailable as exc:
                with self._lock:
                    self._fail(entry, f"needs {dep}, which is unavailable: {exc}")
                raise ModelUnavailable(entry.error) from None
        # Loads and moves are serialised by their own lock, so a slow load (the chat model) never blocks sessions
        # that use models already loaded, nor the status page; a load's measurement is exact when nothing else
        # allocates meanwhile (inference in other sessions can blur it).
        with self._load_lock:
            with self._lock:
                if entry.state == LOADED:
                    return self._claim(entry, touch, pin)
                if self._still_unavailable(entry):
                    raise ModelUnavailable(entry.error)
                if entry.obj is not None:  # evicted to CPU: bring it back where it belongs
                    self._place(entry)
                    return self._claim(entry, touch, pin)
                entry.state = LOADING
                entry.ready.clear()
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

    def _fail(self, entry: ModelEntry, reason: str) -> None:
        entry.state, entry.error, entry.device, entry.failed_at = UNAVAILABLE, reason, "", time.monotonic()
        entry.ready.set()

    def _load(self, entry: ModelEntry, target: str) -> None:
        t0 = time.perf_counter()
        try:
            held_before = entry.resident is not None and entry.resident()
            before = self._measure(target)
            obj = entry.loader(target)
            after = self._measure(target)
        except Exception as exc:
            with self._lock:
                self._fail(entry, one_sentence(exc))
            if isinstance(exc, (ImportError, OSError, ModelUnavailable)) or is_user_error(exc):
                raise ModelUnavailable(entry.error) from None
            raise
        measured = max(after - before, 0.0) if before is not None and after is not None and not held_before else None
        tensors = tensor_mb(obj)
        with self._lock:
            self._apply_specs(entry)  # the loader may have imported the module that registers the spec
            entry.obj, entry.device, entry.state, entry.failed_at, entry.tensors_mb = obj, target, LOADED, None, tensors
            if target.startswith("cuda") and measured is not None:
                entry.memory_mb, entry.memory_basis, entry.measured_mb = measured, CUDA_MEASURED, measured
            elif tensors is not None and (measured is None or tensors > 1.5 * measured):  # mapped, or loaded before
                entry.memory_mb, entry.memory_basis = tensors, TENSORS
            elif measured is not None:
                entry.memory_mb, entry.memory_basis = measured, RSS_MEASURED
            else:
                entry.memory_mb = entry.estimate_mb
                entry.memory_basis = ESTIMATE + (" (in memory before the registry loaded it)" if held_before else "")
            entry.load_seconds = time.perf_counter() - t0
            entry.last_used = entry.last_used or time.monotonic()
            entry.error = CPU_FALLBACK if (target == "cpu" and entry.gpu and self.device.startswith("cuda")) else ""
            if self.gpu_used_mb() > self.budget_mb:  # the estimate was low: correct with the measurement
                self._make_room(0.0, for_key=entry.key)
                if self.gpu_used_mb() > self.budget_mb:
                    entry.obj = entry.mover(entry.obj, "cpu")
                    entry.device, entry.memory_mb, entry.error = "cpu", entry.measured_mb, CPU_FALLBACK
                    entry.memory_basis = CUDA_MEASURED + " (its size on the GPU)"
                    empty_cuda_cache()
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
        entry.error = CPU_FALLBACK if (target == "cpu" and self.device.startswith("cuda")) else ""

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
        empty_cuda_cache()
        self.evictions.append({"model": entry.key, "action": action, "freed_mb": round(freed, 1), "reason": reason,
                               "at_s": round(time.perf_counter() - self.started_at, 2)})
        log.info("registry: %s %s (%.0f MB, %s)", entry.key, action, freed, reason)

    def evict(self, key: str, unload: bool = False) -> None:
        """Move a model off the GPU (or unload it) now, e.g. from the status page. A pinned model stays, and so
        does a CPU model its module holds (unloading it would free nothing)."""
        with self._lock:
            entry = self._entry(key)
            if entry.held_by_module and (unload or entry.mover is None):
                return
            if entry.state == LOADED and entry.pins == 0:
                self._evict(entry, reason="requested", unload=unload)

    # -- accounting ------------------------------------------------------------------------------------------
    def gpu_used_mb(self) -> float:
        with self._lock:
            return sum(e.memory_mb for e in self._entries.values() if e.state == LOADED and e.device.startswith("cuda"))

    def _measure(self, device: str) -> float | None:
        return self._cuda_memory() if device.startswith("cuda") else self._process_memory()

    def status(self) -> dict:
        with self._lock:
            rows = [self._entries[k].row(self.retry_after_s) for k in self.keys()]
            rss = self._process_memory()
            return {"device": self.device, "budget_mb": self.budget_mb, "gpu_used_mb": round(self.gpu_used_mb(), 1),
                    "cpu_resident_mb": round(sum(e.memory_mb for e in self._entries.values()
                                                 if e.obj is not None and e.device == "cpu"), 1),
                    "process_rss_mb": None if rss is None else round(rss, 1),
                    "models": rows, "evictions": list(self.evictions),
                    "loading": self._background is not None and self._background.is_alive()}

    def state(self, key: str) -> str:
        with self._lock:
            return self._entry(key).state
