"""A registry entry (one model: its loader, state, device and memory) and the measurements the registry makes:
the CUDA allocator on a GPU, the process's resident memory on CPU."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: GPU memory budget in MB for all registry models together (paper 7.2: 3.5 GB); `MEDSIGHT_GPU_BUDGET_MB` overrides.
DEFAULT_GPU_BUDGET_MB = 3500.0
#: seconds after a failed load before the next use tries again (`MEDSIGHT_RETRY_S`; `registry.retry` at once)
DEFAULT_RETRY_S = 60.0

# Entry states, as shown on the Model status page.
PENDING, LOADING, LOADED, EVICTED, UNAVAILABLE = "pending", "loading", "loaded", "evicted", "unavailable"
# Where an entry's memory figure comes from (the status page's "memory from" column).
CUDA_MEASURED, RSS_MEASURED, ESTIMATE = "CUDA allocator", "process RSS growth at load", "spec estimate"
#: the bytes of its tensors, shown where they exceed the RSS growth (weights memory-mapped and read on first use, or
#: loaded before the registry asked)
TENSORS = "size of its tensors"

CPU_FALLBACK = "on CPU: the GPU budget is taken by models in use"


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
    requires: tuple[str, ...] = ()  # entries loaded (and measured) before this one, e.g. a shared encoder
    #: the object is a process-wide singleton of the module that made it: "unload" would free nothing, so never
    held_by_module: bool = False
    #: `() -> bool`: the module already holds the object (loaded before the registry asked): nothing to measure
    resident: Callable[[], bool] | None = None
    state: str = PENDING
    device: str = ""  # where it is now ("" while not loaded)
    memory_mb: float = 0.0  # resident size where it is now (measured where possible, else the estimate)
    memory_basis: str = ""  # CUDA_MEASURED, RSS_MEASURED, TENSORS or ESTIMATE (with why)
    tensors_mb: float | None = None  # bytes of the torch tensors and numpy arrays it holds
    measured_mb: float = 0.0  # last CUDA measurement; replaces the estimate in placement decisions
    error: str = ""
    failed_at: float | None = None  # monotonic time of the last failed load
    last_used: float = 0.0
    load_seconds: float | None = None
    pins: int = 0  # sessions using it right now; a pinned model is never evicted
    spec_keys: tuple[str, ...] = ()
    explicit: dict = field(default_factory=dict)
    obj: Any = field(default=None, repr=False)
    ready: threading.Event = field(default_factory=threading.Event, repr=False)

    def row(self, retry_after_s: float) -> dict:
        retry_in = None
        if self.state == UNAVAILABLE and retry_after_s != float("inf") and self.failed_at is not None:
            retry_in = round(max(retry_after_s - (time.monotonic() - self.failed_at), 0.0))
        loaded = self.state == LOADED
        return {"model": self.key, "role": self.role, "priority": self.priority, "state": self.state,
                "device": self.device or "-", "memory_mb": round(self.memory_mb if loaded else 0.0, 1),
                "memory_from": self.memory_basis if loaded else "-",
                "tensors_mb": None if self.tensors_mb is None or not loaded else round(self.tensors_mb, 1),
                "estimate_mb": round(self.estimate_mb, 1) if self.estimate_mb else None,
                "load_s": None if self.load_seconds is None else round(self.load_seconds, 2),
                "in_use": self.pins, "note": self.error, "retry_in_s": retry_in}


def process_rss_mb() -> float | None:
    """This process's resident memory in MB (psutil, else /proc), or None where neither can tell."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return None


def tensor_mb(obj: Any, depth: int = 4, limit: int = 50_000) -> float | None:
    """MB of the torch tensors and numpy arrays an object holds (through modules, containers and attributes, `depth`
    levels deep, each storage once, at most `limit` objects looked at); None when it holds none."""
    torch = sys.modules.get("torch")
    np = sys.modules.get("numpy")
    seen: set[int] = set()
    storages: dict[int, int] = {}

    def visit(o: Any, level: int) -> None:
        if level < 0 or id(o) in seen or len(seen) > limit or isinstance(o, (str, bytes, int, float, type)):
            return
        seen.add(id(o))
        if torch is not None and isinstance(o, torch.nn.Module):
            for t in itertools.chain(o.parameters(), o.buffers()):
                visit(t, 0)
        elif torch is not None and isinstance(o, torch.Tensor):
            storage = o.untyped_storage()
            storages[storage.data_ptr() or id(storage)] = storage.nbytes()
        elif np is not None and isinstance(o, np.ndarray):
            base = o if o.base is None else o.base
            storages[id(base)] = getattr(base, "nbytes", o.nbytes)
        elif isinstance(o, dict):
            for v in list(o.values()):
                visit(v, level - 1)
        elif isinstance(o, (list, tuple, set, frozenset)):
            for v in list(o):
                visit(v, level - 1)
        elif hasattr(o, "__dict__"):
            for v in list(vars(o).values()):
                visit(v, level - 1)

    visit(obj, depth)
    return sum(storages.values()) / 2**20 if storages else None


def cuda_allocated_mb() -> float:
    try:
        import torch

        return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    except ImportError:
        return 0.0


def empty_cuda_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def is_user_error(exc: Exception) -> bool:
    # Loaders signal "cannot load here" with these library types (missing weights, missing optional package).
    return type(exc).__name__ in {"WeightsError", "TierUnavailable", "ImageLoadError", "NoteError"}


def one_sentence(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


