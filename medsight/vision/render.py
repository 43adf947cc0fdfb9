"""One rendering path for every heatmap: the paper's clinical look (section 4.6) or a plain jet overlay, and the
colour bar that says what the colours mean.

Clinical rendering: CLAHE on the radiograph, a black -> dark red -> orange -> bright yellow look-up table. A map on
the normal films' absolute scale (`medsight.vision.map_scale`) is shown from 0 to `vmax` (2.0: twice the level
1% of normal films reach) with an alpha that follows the value itself, a ** 1.3 * opacity, so a quiet film stays
quiet. A map stretched per image gets the paper's adaptive alpha  a = (max(0, (h - p30) / (1 - p30)))^1.3 * 0.65,
so that only the film's own high end glows.
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


def jet_lut() -> np.ndarray:
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1].copy()


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
                   use_clahe: bool = True, clinical: bool = True, vmax: float | None = None) -> np.ndarray:
    """Blend a heatmap over a uint8 grayscale image -> RGB uint8 at the image's size.

    `vmax` None: the map is stretched per image ([0, 1], the paper's adaptive alpha). A number: the map is on an
    absolute scale, shown from 0 to `vmax` (values above are drawn as `vmax`), alpha from the value itself.
    `opacity` scales the maximum alpha (0.65 in the paper); map values below `threshold` (in the map's own units)
    are not drawn."""
    base = clahe(gray) if use_clahe else gray
    top = 1.0 if vmax is None else float(vmax)
    raw = cv2.resize(np.asarray(heatmap, dtype=np.float32), (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_CUBIC)
    h = np.clip(raw / top, 0, 1)
    h = np.where(raw >= threshold, h, 0.0)
    colour = (clinical_lut() if clinical else jet_lut())[(h * 255).astype(np.uint8)].astype(np.float32)
    if vmax is not None:
        alpha = (h ** 1.3) * opacity if clinical else np.where(h > 0, opacity * np.minimum(1.0, 4 * h), 0.0)
    else:
        alpha = adaptive_alpha(h, max_alpha=opacity) if clinical else np.where(h > 0, opacity, 0.0)
    rgb = np.repeat(base[..., None], 3, axis=2).astype(np.float32)
    out = rgb * (1 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def colour_bar(vmax: float | None, clinical: bool = True, width: int = 448, caption: str = "") -> np.ndarray:
    """RGB uint8 strip of the colours over the map's range with tick labels and a caption line: the legend the
    viewer and the PDF show beside a map. `vmax` None: a per-image stretched map (0 = its minimum, 1 = its max)."""
    from PIL import Image, ImageDraw

    lut = clinical_lut() if clinical else jet_lut()
    pad, bar_h = 10, 16
    strip = lut[np.linspace(0, 255, width - 2 * pad).astype(int)]
    import textwrap

    lines = textwrap.wrap(caption, max(20, int((width - 2 * pad) / 6.2))) if caption else []
    img = Image.new("RGB", (width, bar_h + 22 + 14 * len(lines)), "white")
    img.paste(Image.fromarray(np.repeat(strip[None], bar_h, axis=0)), (pad, 2))
    draw = ImageDraw.Draw(img)
    top = 1.0 if vmax is None else float(vmax)
    ticks = [0, 0.5, 1.0] if vmax is None else list(np.arange(0, top + 1e-9, 0.5))
    for t in ticks:
        x = pad + (width - 2 * pad - 1) * t / top
        draw.line([(x, 2 + bar_h), (x, 6 + bar_h)], fill="black")
        label = ("min" if t == 0 else "max" if t == top else f"{t:g}") if vmax is None else (f"{t:g}" + ("+" if t == top else ""))
        draw.text((min(max(x - 6, 0), width - 18), 7 + bar_h), label, fill="black")
    for i, line in enumerate(lines):
        draw.text((pad, 21 + bar_h + 14 * i), line, fill="black")
    return np.asarray(img)
