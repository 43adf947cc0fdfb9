"""One rendering path for every heatmap: the paper's clinical look (section 4.6) or a plain jet overlay.

Clinical rendering: CLAHE on the radiograph, a black -> dark red -> orange -> bright yellow look-up table, and an
adaptive alpha  a = (max(0, (h - p30) / (1 - p30)))^1.3 * 0.65  so that only the high end of the map glows.
"""

from __future__ import annotations

import cv2
import numpy as np

# anchor colours of the clinical LUT (position in [0, 1] -> RGB)
_CLINICAL_ANCHORS = [(0.0, (0, 0, 0)), (0.35, (128, 0, 0)), (0.65, (255, 120, 0)), (1.0, (255, 255, 80))]


def clinical_lut() -> np.ndarray:
    """256 x 3 uint8 look-up table: black -> dark red -> orange -> bright yellow."""
    xs = np.linspace(0, 1, 256)
    pos = [p for p, _ in _CLINICAL_ANCHORS]
    return np.stack([np.interp(xs, pos, [c[i] for _, c in _CLINICAL_ANCHORS]) for i in range(3)], axis=1).astype(np.uint8)


def clahe(gray: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    return cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(gray)


def adaptive_alpha(h: np.ndarray, max_alpha: float = 0.65, percentile: float = 30.0) -> np.ndarray:
    p = float(np.percentile(h, percentile))
    if p >= 1.0:
        return np.zeros_like(h)
    return (np.maximum(0.0, (h - p) / (1.0 - p)) ** 1.3) * max_alpha


def resize_map(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h = cv2.resize(heatmap.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(h, 0, 1)


def render_overlay(gray: np.ndarray, heatmap: np.ndarray, opacity: float = 0.65, threshold: float = 0.0,
                   use_clahe: bool = True, clinical: bool = True) -> np.ndarray:
    """Blend a [0,1] heatmap over a uint8 grayscale image -> RGB uint8 at the image's size.

    `opacity` scales the maximum alpha (0.65 in the paper); map values below `threshold` are not drawn."""
    base = clahe(gray) if use_clahe else gray
    h = resize_map(heatmap, gray.shape)
    h = np.where(h >= threshold, h, 0.0)
    if clinical:
        colour = clinical_lut()[(h * 255).astype(np.uint8)].astype(np.float32)
        alpha = adaptive_alpha(h, max_alpha=opacity)
    else:
        colour = cv2.applyColorMap((h * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
        alpha = np.where(h > 0, opacity, 0.0)
    rgb = np.repeat(base[..., None], 3, axis=2).astype(np.float32)
    out = rgb * (1 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)
