"""Where a heatmap's mass falls in the 224x224 square the backbone saw: the lung fields, the mediastinum, below the
diaphragm, the border band (within 16 px of the square's edge, where markers, text and collimation edges sit) and
the rest (chest wall, shoulders, neck). The five regions partition the square.

The regions come from a lung-field atlas fitted on training normals (`medsight map-fit`, stored as
`weights/lung_atlas.png`): in each film, the large dark regions inside the thorax; averaged over the films;
thresholded. It is where the lungs of a typical training film lie, not a segmentation of the film at hand.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from medsight.imaging.preprocess import INPUT_SIZE

REGIONS = ("lung", "mediastinum", "below_diaphragm", "border", "other")
BORDER_PX = 16
ATLAS_FILE = "lung_atlas.png"
#: label of each region in the stored atlas (0 is "other")
LABELS = {"other": 0, "lung": 1, "mediastinum": 2, "below_diaphragm": 3, "border": 4}


def border_band(size: int = INPUT_SIZE, width: int = BORDER_PX) -> np.ndarray:
    band = np.ones((size, size), bool)
    band[width : size - width, width : size - width] = False
    return band


def film_lung_mask(square: np.ndarray, quantile: float = 38.0) -> np.ndarray:
    """Rough lung fields of one 224x224 film: its darkest large regions that touch neither the square's edge nor the
    neck or abdomen rows (outside air and bowel gas do). Used only to build the atlas from many films."""
    size = square.shape[0]
    inner = ~border_band(size, 12)
    blur = cv2.GaussianBlur(square, (0, 0), 2)
    dark = ((blur < np.percentile(blur[inner], quantile)) & inner).astype(np.uint8)
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, lab, stats, cent = cv2.connectedComponentsWithStats(dark)
    keep = np.zeros(square.shape, bool)
    lo, hi = 13, size - 13
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if area > 400 and x > lo and y > lo and x + w < hi and y + h < hi and 0.13 * size < cent[i][1] < 0.76 * size:
            keep |= lab == i
    return keep


def atlas_from_probability(prob: np.ndarray, threshold: float = 0.12) -> np.ndarray:
    """Label map (LABELS) from a lung probability map: lung where prob >= threshold; below the diaphragm under the
    diaphragm (the line between the lungs' lowest points, or a lung's lower edge where deeper); mediastinum between
    the two lungs' inner edges above it; the border band over everything; the rest "other"."""
    size = prob.shape[0]
    band = border_band(size)
    lung = (prob >= threshold) & ~band
    mid = size // 2
    bottom = np.array([np.flatnonzero(c).max() if c.any() else -1 for c in lung.T], dtype=float)
    # the diaphragm: a line between the two lungs' lowest points (across the heart, flat beyond them), lowered
    # to the lung's own lower edge wherever that lies deeper
    (xl, yl), (xr, yr) = [(int(np.argmax(half)) + off, float(half.max())) for half, off in ((bottom[:mid], 0), (bottom[mid:], mid))]
    diaphragm = np.maximum(np.interp(np.arange(size), [xl, xr], [yl, yr]), bottom)
    rows = np.arange(size)[:, None]
    below = rows > diaphragm[None, :]
    left, right = lung[:, :mid], lung[:, mid:]
    # inner edges per row; rows above the apices keep the apices' edges (trachea and neck between them)
    inner_l = np.array([np.flatnonzero(r).max() if r.any() else -1 for r in left], dtype=float)
    inner_r = np.array([mid + np.flatnonzero(r).min() if r.any() else -1 for r in right], dtype=float)
    for edge in (inner_l, inner_r):
        have = np.flatnonzero(edge >= 0)
        edge[: have.min()] = edge[have.min()]
        edge[have.max() + 1 :] = edge[have.max()]
    xs = np.arange(size)[None, :]
    medi = (xs > inner_l[:, None]) & (xs < inner_r[:, None]) & ~below & ~lung
    atlas = np.zeros((size, size), np.uint8)
    atlas[medi] = LABELS["mediastinum"]
    atlas[below & ~lung] = LABELS["below_diaphragm"]
    atlas[lung] = LABELS["lung"]
    atlas[band] = LABELS["border"]
    return atlas


_ATLAS: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


def load_atlas(directory: str | Path | None = None) -> np.ndarray:
    """The stored atlas (224x224 uint8 labels), read once per file: from `directory` (default: the weights folder),
    else the one shipped in the repository's weights/ (it belongs to the input geometry, not to a detector)."""
    from medsight import config

    candidates = [Path(directory or config.WEIGHTS_DIR) / ATLAS_FILE, config.REPO_ROOT / "weights" / ATLAS_FILE]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"no lung-field atlas at {candidates[0]}; run `medsight map-fit --atlas` to build it")
    with _LOCK:
        if str(path) not in _ATLAS:
            _ATLAS[str(path)] = np.asarray(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), dtype=np.uint8)
        return _ATLAS[str(path)]


def region_masks(atlas: np.ndarray) -> dict[str, np.ndarray]:
    return {name: atlas == LABELS[name] for name in REGIONS}


def map_location(heatmap: np.ndarray, atlas: np.ndarray | None = None) -> dict[str, float]:
    """Share of the map's mass (its non-negative values) in each region, `<region>_mass`, and each region's share
    of the area, `<region>_area` (what a uniform map would give). A map with no mass gets shares of 0."""
    atlas = load_atlas() if atlas is None else atlas
    m = np.clip(np.asarray(heatmap, dtype=np.float64), 0, None)
    if m.shape != atlas.shape:
        m = cv2.resize(m, atlas.shape[::-1], interpolation=cv2.INTER_LINEAR)
    total = float(m.sum())
    out = {}
    for name, mask in region_masks(atlas).items():
        out[f"{name}_mass"] = float(m[mask].sum() / total) if total > 0 else 0.0
        out[f"{name}_area"] = float(mask.mean())
    return out


def atlas_weight(outside: float) -> np.ndarray:
    """`lung_weight` of the stored atlas (computed once per weight)."""
    atlas = load_atlas()
    key = f"weight:{id(atlas)}:{outside}"
    with _LOCK:
        if key not in _ATLAS:
            _ATLAS[key] = lung_weight(atlas, outside)
        return _ATLAS[key]


def lung_weight(atlas: np.ndarray, outside: float, margin: int = 8, soft: float = 6.0) -> np.ndarray:
    """Weights in [outside, 1]: 1 on the atlas lung fields widened by `margin` px (films differ from the atlas), a
    smooth fall to `outside` elsewhere, and `outside` throughout the border band."""
    lung = (atlas == LABELS["lung"]).astype(np.uint8)
    grown = cv2.dilate(lung, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    w = np.clip(2 * cv2.GaussianBlur(grown.astype(np.float32), (0, 0), soft), 0, 1)  # 1 up to the grown edge
    w = outside + (1 - outside) * w
    w[atlas == LABELS["border"]] = outside
    return w.astype(np.float32)
