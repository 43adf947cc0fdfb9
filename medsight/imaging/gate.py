"""Is this a frontal chest radiograph? A cheap gate run before scoring, so a photo, a blank image or an
inverted film gets a warning instead of a confident score.

This first version checks image statistics only (colour, dynamic range, polarity); the detector's own
out-of-distribution check (feature distance to training normals) is added by the pipeline where available.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from medsight.imaging.load import LoadedImage


@dataclass
class GateResult:
    ok: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def check_frontal_cxr(image: LoadedImage) -> GateResult:
    g = image.pixels.astype(np.float32)
    reasons = []
    h, w = g.shape
    checks = {"colourfulness": round(image.colourfulness, 4), "std": round(float(g.std()), 2),
              "aspect": round(w / h, 3)}
    if image.colourfulness > 0.08:
        reasons.append("the image is in colour; radiographs are grayscale (is this a photo?)")
    if g.std() < 12 or (np.percentile(g, 99) - np.percentile(g, 1)) < 40:
        reasons.append("the image is almost uniform (blank or nearly blank)")
    if not 0.5 <= w / h <= 2.0:
        reasons.append(f"unusual aspect ratio {w}x{h} for a chest film")
    # Polarity: on a frontal CXR the lung fields (central band) are darker than the mediastinum/borders? Use the
    # fact that the image border rows of a normal film are darker than the centre column (spine/mediastinum).
    sq = g[int(0.2 * h):int(0.85 * h)]
    centre = sq[:, int(0.45 * w):int(0.55 * w)].mean()
    lungs = np.concatenate([sq[:, int(0.2 * w):int(0.35 * w)], sq[:, int(0.65 * w):int(0.8 * w)]], axis=1).mean()
    checks["mediastinum_minus_lungs"] = round(float(centre - lungs), 2)
    if centre - lungs < -25:
        reasons.append("the image looks inverted (lungs brighter than the mediastinum)")
    return GateResult(not reasons, reasons, checks)
