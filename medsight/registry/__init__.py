"""The process-wide model registry (paper 7.2): every model the app uses, its priority, device and memory
footprint; background loading in priority order; total GPU memory kept under a budget by moving the least
recently used model to CPU (or unloading it); CPU fallback without CUDA; retries of failed loads; safe when
several sessions share it.

The registry knows nothing about what a model is: an entry is a `loader(device) -> object` plus, for models that
can live on a GPU, a `mover(object, device) -> object`. `medsight.specs.MODEL_SPECS` supplies priorities and memory
estimates; a load's footprint is measured instead where it can be (the CUDA allocator on a GPU, the growth of the
process's resident memory on CPU). MedSight's own models are registered by `medsight.registry.models`.

    registry = ModelRegistry(budget_mb=3500)
    registry.register("vgg16", lambda device: load_backbone(device=device), spec_key="vgg16", gpu=True)
    registry.start_background()          # loads in priority order on a daemon thread
    with registry.use("vgg16") as model: # waits if still loading, pins it against eviction while in use
        ...
"""

from medsight.registry.core import ModelRegistry  # noqa: F401
from medsight.registry.entry import (  # noqa: F401  (the public names)
    CUDA_MEASURED,
    DEFAULT_GPU_BUDGET_MB,
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
    default_device,
    gpu_budget_mb,
    process_rss_mb,
    torch_mover,
)
from medsight.registry.models import APP_MODELS, build_app_registry  # noqa: F401
