"""Heatmaps with one interface: `explain(pipeline, image, method) -> HxW map in [0, 1]` at the 224x224 input
geometry (the centre-cropped square the backbone saw).

Methods:
- `latent_attention`: the paper's map (4.6): [CLS] attention of the ViT's last layer over the 8 latent patches,
  laid out on a 2x4 grid and upsampled. The latent patches have NO spatial layout: this grid is not a location
  in the image, and the app says so wherever it shows it.
- `gradcam`, `gradcam++`: pytorch-grad-cam on the backbone's last convolution the detector reads, with the
  detector's anomaly score as the target. Its hooks go on a module tree of the call's own that shares the frozen
  weights (`private_backbone`), never on the backbone other sessions run: their forward passes would feed this
  call's hooks (another image's activations, or bf16 ones from an autocast pass).
- `anomaly_map`: the detector's own patch-level anomaly (feature distances), where the detector has one; for a
  detector without one, the pipeline's companion map detector's (`anomaly_map:patchcore`): a map of where the
  image differs from normal patches, not of what drove this detector's score.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from medsight.imaging.load import LoadedImage
from medsight.imaging.preprocess import INPUT_SIZE, to_backbone_tensor, to_square

SPATIAL_NOTE = ("The paper's latent-attention map shows attention over 8 patches of the 256-d latent vector, which "
                "have no spatial layout: the 2x4 grid is not a position in the radiograph.")


class _ScoreModel(nn.Module):
    """image tensor -> detector anomaly score (N, 1), differentiable, for Grad-CAM."""

    def __init__(self, backbone: nn.Module, detector):
        super().__init__()
        self.backbone = backbone
        self.detector = detector  # not a module: its tensors are read, never written

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.backbone(x)
        return self.detector.torch_score(taps).reshape(-1, 1)


def available_methods(pipeline) -> list[str]:
    det = pipeline.detector
    methods = []
    if hasattr(det, "torch_score"):
        methods += ["gradcam", "gradcam++"]
    if det.has_anomaly_map:
        methods.insert(0, "anomaly_map")
    elif getattr(pipeline, "map_detector", None) is not None:
        methods.insert(0, f"anomaly_map:{pipeline.map_detector.name}")
    if hasattr(det, "latent_attention"):
        methods.append("latent_attention")
    return methods


def _normalise(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    return np.zeros_like(m) if hi - lo < 1e-12 else (m - lo) / (hi - lo)


def _upsample(grid: np.ndarray, mode: str = "bicubic") -> np.ndarray:
    t = torch.as_tensor(grid, dtype=torch.float32)[None, None]
    up = torch.nn.functional.interpolate(t, size=(INPUT_SIZE, INPUT_SIZE), mode=mode, align_corners=False)
    return up[0, 0].numpy()


def explain(pipeline, image: LoadedImage | np.ndarray, method: str) -> np.ndarray:
    gray = to_square(image.pixels if isinstance(image, LoadedImage) else image)
    det = pipeline.detector
    if method == "latent_attention":
        if not hasattr(det, "latent_attention"):
            raise ValueError(f"detector {det.name!r} has no latent attention")
        att = det.latent_attention(pipeline.maps([gray]))[0]
        return _normalise(_upsample(att.reshape(2, 4)))
    if method.startswith("anomaly_map"):
        return map_from_maps(pipeline, pipeline.maps([gray]))[0]
    if method in ("gradcam", "gradcam++"):
        return gradcam(pipeline, gray, plus=method == "gradcam++")
    raise ValueError(f"unknown explanation method {method!r}")


def map_from_maps(pipeline, maps: np.ndarray) -> tuple[np.ndarray, str]:
    """The patch-level anomaly map of the first image in `maps` (already computed feature maps): the detector's own,
    else the companion map detector's. Returns (224x224 map in [0, 1], method name)."""
    det = pipeline.detector
    maps = maps if len(maps) == 1 else maps[:1]  # the same array object lets detectors reuse their distances
    if det.has_anomaly_map:
        return _normalise(_upsample(det.anomaly_map(maps)[0], "bilinear")), "anomaly_map"
    companion = getattr(pipeline, "map_detector", None)
    if companion is None:
        raise ValueError(f"detector {det.name!r} has no anomaly map")
    return _normalise(_upsample(companion.anomaly_map(maps)[0], "bilinear")), f"anomaly_map:{companion.name}"


def private_backbone(backbone: nn.Module) -> nn.Module:
    """A copy of the backbone's module tree (its own hooks) over the same weight storage, which no gradient can
    touch: hooks on it see only the forward pass of the caller. It costs milliseconds and no memory for weights; a
    full deepcopy costs 30x the time and 56 MB per call (`scripts/bench_app.py --gradcam-cost`)."""
    memo = {id(t): nn.Parameter(t.detach(), requires_grad=False) for t in backbone.parameters()}
    memo.update({id(t): t for t in backbone.buffers()})
    return copy.deepcopy(backbone, memo)


def gradcam(pipeline, gray: np.ndarray, plus: bool = False) -> np.ndarray:
    return gradcam_on(private_backbone(pipeline.backbone), pipeline.detector, gray, plus)


def gradcam_on(backbone: nn.Module, detector, gray: np.ndarray, plus: bool = False) -> np.ndarray:
    """Grad-CAM with its hooks on `backbone`, which must be the caller's own (`private_backbone`)."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _ScoreModel(backbone, detector).eval()
    layer = backbone.features[detector.cam_layer]
    device = next(backbone.parameters()).device
    x = to_backbone_tensor([gray]).to(device).requires_grad_(True)  # the backbone is frozen
    cls = GradCAMPlusPlus if plus else GradCAM
    with torch.enable_grad(), cls(model=model, target_layers=[layer]) as cam:
        grayscale = cam(input_tensor=x, targets=[ClassifierOutputTarget(0)])
    return _normalise(grayscale[0])
