"""Is this a frontal chest radiograph? A gate run before scoring, so a photo, a CT slice, a blank, inverted or
rotated film, or a screenshot gets a warning instead of a confident score.

Three parts: cheap image statistics here (colour, dynamic range, aspect, polarity, left-right vs top-bottom
symmetry), the shipped orientation classifier of `medsight.imaging.orientation` (upside-down and rotated films),
and, where the pipeline has one, the learned feature-space check of `medsight.vision.ood` (distance of
the image's backbone features to the training normals'), passed in as `ood`. Measured by `medsight gate-eval`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from medsight.imaging.load import LoadedImage
from medsight.imaging.orientation import OrientationModel, load_orientation

#: default for `check_frontal_cxr(orientation=...)`: the model shipped in weights/ (skipped when absent)
SHIPPED = "shipped"
_TURN_WORDS = {"upside_down": "upside down", "rotated_left": "rotated 90 degrees anticlockwise",
               "rotated_right": "rotated 90 degrees clockwise"}


@dataclass
class GateResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


#: top-bottom minus left-right mirror correlation above which a film looks rotated by 90 degrees (0.3% of dev films)
SYMMETRY_MARGIN = 0.7


def _symmetry(g: np.ndarray) -> tuple[float, float]:
    """Correlation of the (downsampled) image with its left-right and its top-bottom mirror image."""
    small = g[:: max(1, g.shape[0] // 64), :: max(1, g.shape[1] // 64)].astype(np.float64)
    x = small - small.mean()
    denom = float((x * x).sum()) or 1.0
    return float((x * x[:, ::-1]).sum() / denom), float((x * x[::-1]).sum() / denom)


def check_frontal_cxr(image: LoadedImage, ood: dict | None = None,
                      orientation: OrientationModel | None | str = SHIPPED) -> GateResult:
    """Image statistics (always), the orientation classifier (the shipped one by default; None skips it), and the
    feature-space check when `ood` (one item of `ood_check`) is given."""
    g = image.pixels.astype(np.float32)
    reasons = []
    h, w = g.shape
    spread = float(np.percentile(g, 99) - np.percentile(g, 1))
    checks = {"colourfulness": round(image.colourfulness, 4), "std": round(float(g.std()), 2),
              "aspect": round(w / h, 3), "range_1_99": round(spread, 1)}
    if image.colourfulness > 0.08:
        reasons.append("the image is in colour; radiographs are grayscale (is this a photo?)")
    if g.std() < 12 or spread < 40:
        reasons.append("the image is almost uniform (blank or nearly blank)")
    if not 0.5 <= w / h <= 2.0:
        reasons.append(f"unusual aspect ratio {w}x{h} for a chest film")
    # Polarity: on a frontal film the mediastinum (central column) is brighter than the lung fields beside it.
    sq = g[int(0.2 * h):int(0.85 * h)]
    centre = sq[:, int(0.45 * w):int(0.55 * w)].mean()
    lungs = np.concatenate([sq[:, int(0.2 * w):int(0.35 * w)], sq[:, int(0.65 * w):int(0.8 * w)]], axis=1).mean()
    checks["mediastinum_minus_lungs"] = round(float(centre - lungs), 2)
    if centre - lungs < -25:
        reasons.append("the image looks inverted (lungs brighter than the mediastinum)")
    # Orientation: a frontal chest is close to mirror-symmetric left-right, much less so top-bottom.
    lr, ud = _symmetry(g)
    checks["symmetry_lr"], checks["symmetry_ud"] = round(lr, 3), round(ud, 3)
    if ud - lr > SYMMETRY_MARGIN:
        reasons.append("the image looks rotated by 90 degrees (symmetric top-bottom, not left-right)")
    model = load_orientation() if orientation == SHIPPED else orientation
    if model is not None:
        o = model.check(image.pixels)
        checks["p_upright"], checks["orientation"] = o["p_upright"], o["likely"]
        if o["flag"] and not any("rotated" in r for r in reasons):
            turn = _TURN_WORDS.get(o["likely"], "turned")
            reasons.append(f"the image looks {turn} (p upright {o['p_upright']:.2f}); rotate it so the neck is at the top")
    if ood is not None:
        checks.update({k: ood[k] for k in ("ood_distance", "ood_threshold") if k in ood})
        if ood.get("ood"):
            reasons.append("the image does not look like the chest radiographs the detector was trained on "
                           "(not a frontal chest X-ray, or an unusual acquisition)")
    return GateResult(not reasons, reasons, checks)
