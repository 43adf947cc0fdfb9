"""Which way up is this film? A small classifier for the OOD gate's orientation check.

A frontal chest flipped top-bottom keeps its left-right symmetry and most of its backbone features, so the
gate's symmetry statistic and feature distance miss it. Its layout does not survive: the bright abdomen and
diaphragm sit at the bottom of an upright film. A multinomial logistic regression on a standardised 16x16
thumbnail tells upright, upside-down and 90-degree-rotated films apart. It is fitted on training normals and
their flipped / rotated copies only (self-supervised: no labels, no pathology), and stored as plain JSON.
Measured by `medsight orientation-fit` (held-out training normals) and `medsight gate-eval` (dev films).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from medsight import config

THUMB = 16
#: class order of the model; `rotated_left` is np.rot90(k=1) (the film turned 90 degrees anticlockwise)
ORIENTATIONS = ("upright", "upside_down", "rotated_left", "rotated_right")
TURNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "upright": lambda g: g,
    "upside_down": lambda g: g[::-1],
    "rotated_left": lambda g: np.rot90(g, 1),
    "rotated_right": lambda g: np.rot90(g, -1),
}
UNDO: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "upright": lambda g: g,
    "upside_down": lambda g: g[::-1],
    "rotated_left": lambda g: np.rot90(g, -1),
    "rotated_right": lambda g: np.rot90(g, 1),
}
FILE = "orientation.json"


def turn_upright(pixels: np.ndarray, likely: str) -> np.ndarray:
    """Undo the turn the classifier found (`check(...)['likely']`)."""
    return np.ascontiguousarray(UNDO[likely](pixels))


def thumbnail_features(pixels: np.ndarray) -> np.ndarray:
    """Grayscale image (any size) -> 256 standardised values of its 16x16 thumbnail (aspect is not kept)."""
    g = np.asarray(Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).resize((THUMB, THUMB), Image.BILINEAR),
                   dtype=np.float32)
    return ((g - g.mean()) / (g.std() + 1e-6)).ravel()


@dataclass
class OrientationModel:
    coef: list[list[float]]  # 4 x 256
    intercept: list[float]  # 4
    #: a film is flagged when p(upright) falls below this
    threshold: float = 0.1
    measured: dict = field(default_factory=dict)

    def probabilities(self, pixels: np.ndarray) -> dict[str, float]:
        z = np.asarray(self.coef) @ thumbnail_features(pixels) + np.asarray(self.intercept)
        p = np.exp(z - z.max())
        p /= p.sum()
        return {name: float(v) for name, v in zip(ORIENTATIONS, p)}

    def check(self, pixels: np.ndarray) -> dict:
        """{'p_upright', 'likely' (most probable orientation), 'flag' (p_upright < threshold)}."""
        p = self.probabilities(pixels)
        return {"p_upright": round(p["upright"], 4), "likely": max(p, key=p.get), "flag": p["upright"] < self.threshold}

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / FILE
        path.write_text(json.dumps(asdict(self), indent=1))
        return path


def load_orientation(folder: str | Path | None = None) -> OrientationModel | None:
    """The shipped model, or None when it has not been fitted (the gate then skips the check)."""
    return _load(str(folder or config.WEIGHTS_DIR))


@lru_cache(maxsize=4)
def _load(folder: str) -> OrientationModel | None:
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    return OrientationModel(**json.loads(path.read_text()))


def _crops(g: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """The film and n-1 random crops keeping 80-100% of each side (other framings and aspect ratios)."""
    out = [g]
    h, w = g.shape
    for _ in range(n - 1):
        ch, cw = int(h * rng.uniform(0.8, 1.0)), int(w * rng.uniform(0.8, 1.0))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        out.append(g[top : top + ch, left : left + cw])
    return out


def fit_orientation(images: Iterable[np.ndarray], holdout: float = 0.2, seed: int = 0, C: float = 0.01,
                    threshold: float = 0.1, crops: int = 2, log=print) -> OrientationModel:
    """Fit on upright training normals (grayscale uint8 arrays) and their three turned copies; measure on a held-out part."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    films = list(images)
    hold = np.zeros(len(films), bool)
    hold[rng.choice(len(films), int(len(films) * holdout), replace=False)] = True

    def design(idx, n_crops):
        X, y = [], []
        for i in idx:
            for c in _crops(films[i], rng, n_crops):
                for k, name in enumerate(ORIENTATIONS):
                    X.append(thumbnail_features(TURNS[name](c)))
                    y.append(k)
        return np.asarray(X), np.asarray(y)

    X, y = design(np.flatnonzero(~hold), crops)
    clf = LogisticRegression(C=C, max_iter=3000).fit(X, y)
    model = OrientationModel(clf.coef_.tolist(), clf.intercept_.tolist(), threshold)
    Xh, yh = design(np.flatnonzero(hold), 1)
    p_up = clf.predict_proba(Xh)[:, 0]
    flagged = p_up < threshold
    model.measured = {
        "n_fit": int((~hold).sum()), "n_holdout": int(hold.sum()), "C": C, "crops_per_film": crops,
        "holdout_flag_rate": {name: round(float(flagged[yh == k].mean()), 4) for k, name in enumerate(ORIENTATIONS)},
        "holdout_accuracy": round(float((clf.predict(Xh) == yh).mean()), 4),
    }
    log(f"orientation-fit: {model.measured}")
    return model
