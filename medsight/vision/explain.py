"""Heatmaps with one interface: `explain(pipeline, image, method) -> 224x224 map` at the input geometry (the
centre-cropped square the backbone saw), on an absolute scale fixed by held-out normal films where the detector has
one (`medsight.vision.map_scale`: 1.0 = what only the most unusual 1% of normal films reach, so a quiet film looks
quiet), else stretched to [0, 1] per image. `map_meaning(pipeline, method)` says which, and what 1.0 means.

Methods:
- `anomaly_map`: the detector's own patch-level anomaly (feature distances), where the detector has one; for a
  detector without one, the pipeline's companion map detector's (`anomaly_map:patchcore`): a map of where the
  image differs from normal patches, not of what drove this detector's score. The method the app shows first.
- `gradcam`, `gradcam++`: pytorch-grad-cam on the backbone's last convolution the detector reads, with the
  detector's anomaly score as the target: the CAM gives the shape, the film's score the height. Outside the lung
  fields of the atlas (`medsight.vision.regions`) and on the border band the map is down-weighted: the default
  detector's score also reads the borders (a whole-image view), and Grad-CAM's channel weights paint the border's
  padding-inflated activations even for a part that reads only the lungs (docs/vision_extras.md, 3.2). Its hooks go on a module tree of the call's own that shares the frozen weights
  (`private_backbone`), never on the backbone other sessions run: their forward passes would feed this call's
  hooks (another image's activations, or bf16 ones from an autocast pass).
- `latent_attention`: the paper's map (4.6): [CLS] attention of the ViT's last layer over the 8 latent patches,
  laid out on a 2x4 grid and upsampled. The latent patches have NO spatial layout: this grid is not a location
  in the image, and the app says so wherever it shows it. Always stretched per image.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from medsight.imaging.load import LoadedImage
from medsight.imaging.preprocess import INPUT_SIZE, to_backbone_tensor, to_square
from medsight.vision import map_scale

SPATIAL_NOTE = ("The paper's latent-attention map shows attention over 8 patches of the 256-d latent vector, which "
                "have no spatial layout: the 2x4 grid is not a position in the radiograph.")
#: Grad-CAM's weight outside the atlas lung fields and on the border band (read off 100 dev films: median border
#: mass 0.338 unweighted, 0.154 at 0.25; docs/vision_extras.md, 3.2)
CAM_OUTSIDE_WEIGHT = 0.25


@dataclass(frozen=True)
class MapMeaning:
    """How to read a map: `absolute` (the normal films' scale) or stretched per image, what 1.0 means, the top of
    its colour scale, and what was done to it (e.g. down-weighted outside the lung fields), in words."""

    absolute: bool
    unit: str
    display_max: float
    note: str = ""


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


def default_method(pipeline) -> str:
    """The map the app shows first (viewer, PDF): the first method with a spatial layout."""
    methods = [m for m in available_methods(pipeline) if m != "latent_attention"]
    if not methods:
        raise ValueError(f"detector {pipeline.detector.name!r} has no spatial heatmap")
    return methods[0]


def stretch(m: np.ndarray) -> np.ndarray:
    """Per-image stretch to [0, 1] (min -> 0, max -> 1): every film's map then looks equally strong."""
    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    return np.zeros_like(m) if hi - lo < 1e-12 else (m - lo) / (hi - lo)


_normalise = stretch  # the name earlier callers used


def _upsample(grid: np.ndarray, mode: str = "bicubic") -> np.ndarray:
    t = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None, None]
    up = torch.nn.functional.interpolate(t, size=(INPUT_SIZE, INPUT_SIZE), mode=mode, align_corners=False)
    return up[0, 0].numpy()


def _patch_source(pipeline):
    """The detector whose patch-level map `anomaly_map` shows (a fused detector's part, or the companion)."""
    det = pipeline.detector
    if det.has_anomaly_map:
        parts = [p for p in getattr(det, "parts", {}).values() if p.has_anomaly_map]
        return parts[0] if parts else det
    return getattr(pipeline, "map_detector", None)


def _scales(pipeline, method: str):
    """The normal films' scale of this method (a PatchScale, or the detector's ScoreScale for CAMs), or None."""
    if method.startswith("anomaly_map"):
        source = _patch_source(pipeline)
        s = map_scale.scales_for(source) if source is not None else None
        return s.patch if s else None
    if method.startswith("gradcam"):
        return map_scale.ScoreScale.of(pipeline.detector)
    return None


def map_meaning(pipeline, method: str) -> MapMeaning:
    scale = _scales(pipeline, method)
    note = ""
    if method.startswith("gradcam") and CAM_OUTSIDE_WEIGHT < 1:
        note = f"outside the lung fields (atlas) down-weighted to {CAM_OUTSIDE_WEIGHT:.0%}"
    elif method.startswith("anomaly_map") and scale is not None:
        note = (f"patch distances smoothed over {16 * scale.sigma:.0f} px; outside the lung fields (atlas) "
                f"down-weighted to {scale.outside_weight:.0%}; the image edge, which the detector does not score, is 0")
    if scale is None:
        return MapMeaning(False, "stretched per image: 1.0 = this film's own maximum (no normal scale fitted)", 1.0, note)
    unit = map_scale.PATCH_UNIT if method.startswith("anomaly_map") else map_scale.CAM_UNIT
    return MapMeaning(True, unit, map_scale.DISPLAY_MAX, note)


def explain(pipeline, image: LoadedImage | np.ndarray, method: str, stretched: bool = False) -> np.ndarray:
    """The 224x224 float32 map of `method` on the absolute scale (`map_meaning`), or with `stretched` (or no
    fitted scale) stretched to [0, 1] per image."""
    gray = to_square(image.pixels if isinstance(image, LoadedImage) else image)
    det = pipeline.detector
    if method == "latent_attention":
        if not hasattr(det, "latent_attention"):
            raise ValueError(f"detector {det.name!r} has no latent attention")
        att = det.latent_attention(pipeline.maps([gray]))[0]
        return stretch(_upsample(att.reshape(2, 4)))
    if method.startswith("anomaly_map"):
        m, _ = map_from_maps(pipeline, pipeline.maps([gray]))
    elif method in ("gradcam", "gradcam++"):
        m = gradcam(pipeline, gray, plus=method == "gradcam++")
    else:
        raise ValueError(f"unknown explanation method {method!r}")
    return stretch(m) if stretched else m


def map_from_maps(pipeline, maps: np.ndarray) -> tuple[np.ndarray, str]:
    """The patch-level anomaly map of the first image in `maps` (already computed feature maps): the detector's own,
    else the companion map detector's. Returns (224x224 map, method name), on the normal films' scale where the
    map's detector has one, else stretched to [0, 1]."""
    det = pipeline.detector
    maps = maps if len(maps) == 1 else maps[:1]  # the same array object lets detectors reuse their distances
    if det.has_anomaly_map:
        grid, method = det.anomaly_map(maps)[0], "anomaly_map"
    elif getattr(pipeline, "map_detector", None) is not None:
        grid, method = pipeline.map_detector.anomaly_map(maps)[0], f"anomaly_map:{pipeline.map_detector.name}"
    else:
        raise ValueError(f"detector {det.name!r} has no anomaly map")
    scale = _scales(pipeline, method)
    if scale is None:
        return stretch(_upsample(grid, "bilinear")), method
    from medsight.vision.regions import atlas_weight

    return scale.to_maps(grid[None], atlas_weight(scale.outside_weight))[0], method


def private_backbone(backbone: nn.Module) -> nn.Module:
    """A copy of the backbone's module tree (its own hooks) over the same weight storage, which no gradient can
    touch: hooks on it see only the forward pass of the caller. It costs milliseconds and no memory for weights; a
    full deepcopy costs 30x the time and 56 MB per call (`scripts/bench_app.py --gradcam-cost`)."""
    memo = {id(t): nn.Parameter(t.detach(), requires_grad=False) for t in backbone.parameters()}
    memo.update({id(t): t for t in backbone.buffers()})
    return copy.deepcopy(backbone, memo)


def gradcam(pipeline, gray: np.ndarray, plus: bool = False) -> np.ndarray:
    """Grad-CAM of the pipeline's detector, down-weighted outside the lung fields; its peak is the film's score on the
    held-out normals' scale (`map_scale.ScoreScale`), or 1.0 (stretched) for a detector without calibration."""
    from medsight.vision.regions import atlas_weight

    method = "gradcam++" if plus else "gradcam"
    cams, scores = cams_on(private_backbone(pipeline.backbone), pipeline.detector, [gray], (method,))
    raw = cams[method][0] * atlas_weight(CAM_OUTSIDE_WEIGHT) if CAM_OUTSIDE_WEIGHT < 1 else cams[method][0]
    shape = stretch(raw)
    scale = _scales(pipeline, method)
    return shape if scale is None else (shape * scale.excess(scores[0])).astype(np.float32)


def gradcam_on(backbone: nn.Module, detector, gray: np.ndarray, plus: bool = False) -> np.ndarray:
    """Grad-CAM with its hooks on `backbone`, which must be the caller's own (`private_backbone`), stretched to
    [0, 1] per image (the library's own output)."""
    return stretch(cam_on(backbone, detector, gray, plus))


def cam_on(backbone: nn.Module, detector, gray: np.ndarray, plus: bool = False) -> np.ndarray:
    """The unscaled CAM of one image at 224x224, hooks on `backbone` (the caller's own)."""
    method = "gradcam++" if plus else "gradcam"
    return cams_on(backbone, detector, [gray], (method,))[0][method][0]


def cams_on(backbone: nn.Module, detector, grays: list[np.ndarray], methods=("gradcam",)) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Unscaled CAMs, N x 224 x 224 per method (ReLU of the activations weighted by pytorch-grad-cam's channel
    weights, bilinear to the input; no per-image min-max), and the detector's scores (N,) from the same forward
    pass: one forward and one backward pass of the images."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _ScoreModel(backbone, detector).eval()
    layer = backbone.features[detector.cam_layer]
    device = next(backbone.parameters()).device
    x = to_backbone_tensor(list(grays)).to(device).requires_grad_(True)  # the backbone is frozen
    targets = [ClassifierOutputTarget(0) for _ in grays]
    out = {}
    with torch.enable_grad(), GradCAM(model=model, target_layers=[layer]) as cam:
        cam(input_tensor=x, targets=targets)
        scores = cam.outputs.detach().cpu().numpy().reshape(-1)
        acts = cam.activations_and_grads.activations[0].cpu().numpy()
        grads = cam.activations_and_grads.gradients[0].cpu().numpy()
        for method in methods:
            cls = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}[method]
            weights = cls.get_cam_weights(cam, x, [layer], targets, acts, grads)
            cams = np.maximum((weights[:, :, None, None] * acts).sum(axis=1), 0).astype(np.float32)
            out[method] = np.stack([cv2.resize(c, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR) for c in cams])
    return out, scores
