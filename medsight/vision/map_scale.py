"""Heatmaps on an absolute scale fixed by normal films: a map value means the same on every film.

For a patch anomaly map (a patch detector's nearest-normal distances on the 14x14 grid), the distances are smoothed
over neighbouring patches (a Gaussian of 2 patches, 32 px: diffuse disease raises many neighbours a little), each
position is standardised against the held-out training normals at the same grid position (0 at or below their lower
quartile, in units of their spread), the map is down-weighted outside the lung fields (halved), and divided by the
99th percentile of those normal films' map maxima: 1.0 is as high as the highest point of the most unusual 1% of
normal films; a typical normal film peaks near 0.3. Positions the detector does not score are 0.

For Grad-CAM (and Grad-CAM++), the CAM's own magnitude does not say how unusual a film is (on dev films, abnormal
films get no stronger CAMs than normal ones: AUROC of the unscaled maximum 0.52, Grad-CAM++ 0.65), so the CAM gives
the shape only: the lung-weighted CAM is divided by its maximum and multiplied by where the film's score lies among
the detector's held-out normal scores (`ScoreScale`): 0 at their 1st percentile, 1.0 at their 99th. A typical normal
film peaks near 0.5, a quarter of the colour scale; a film scoring like the most unusual 1% of normals peaks at 1.0.

The patch statistics come from the held-out training normals only (`medsight map-fit`) and are stored beside the
detector's weights as `<detector>.mapscale.json`; they apply only to the detector they were fitted with (same
calibration), and any other detector's patch maps are stretched per image, which the map then says. The score
scale is the detector's own calibration (held-out normals).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SUFFIX = ".mapscale.json"
#: patch maps: smoothing over neighbouring grid positions (in patches of 16 px) and the weight outside the lung fields
PATCH_SIGMA = 2.0
PATCH_OUTSIDE_WEIGHT = 0.5
#: the top of the colour scale for absolute maps: twice the level that 1% of normal films reach
DISPLAY_MAX = 2.0
PATCH_UNIT = ("1.0 = the highest point of the most unusual 1% of held-out normal films (0 = at or below the quieter "
              "quarter of normal patches at that position)")
CAM_UNIT = ("the map's peak is the film's score: 0 = the 1st percentile of held-out normal scores, 1.0 = their 99th "
            "percentile (the shape is Grad-CAM's)")


def fingerprint(detector) -> str:
    """Which fitted detector a scale belongs to: a hash of its calibration's held-out normal scores."""
    cal = getattr(detector, "calibration", None)
    scores = [] if cal is None else [round(float(s), 5) for s in cal.normal_scores]
    return hashlib.sha1(json.dumps([detector.name, detector.kind, scores]).encode()).hexdigest()[:16]


@dataclass
class PatchScale:
    """Per-position statistics of held-out normal films' patch distances (14x14 grid, NaN where not scored: the lower
    quartile as the floor, and the spread), the grid smoothing they were taken after, the weight outside the lung
    fields, and the 99th percentile of the normal films' map maxima that makes 1.0."""

    floor: np.ndarray
    spread: np.ndarray
    sigma: float
    outside_weight: float
    film_max_q99: float
    n_films: int

    @property
    def scored(self) -> np.ndarray:
        return np.isfinite(self.floor)

    @classmethod
    def fit(cls, distances: np.ndarray, scored: np.ndarray, weight: np.ndarray, sigma: float = PATCH_SIGMA,
            outside_weight: float = PATCH_OUTSIDE_WEIGHT, quantile: float = 99.0) -> "PatchScale":
        """`distances`: N x 14 x 14 of normal films; `scored`: 14 x 14 bool, the positions the detector reads;
        `weight`: the 224x224 lung-field weight (`regions.lung_weight(atlas, outside_weight)`)."""
        d = smooth_grid(np.asarray(distances, dtype=np.float64), scored, sigma)
        q25, q75 = np.percentile(d, [25, 75], axis=0)
        spread = np.maximum((q75 - q25) / 1.349, 1e-6)  # the IQR of a normal distribution's unit
        floor = q25.copy()  # a lower anchor than the median: even a very quiet normal film keeps a (faint) map
        floor[~scored], spread[~scored] = np.nan, np.nan
        scale = cls(floor.astype(np.float32), spread.astype(np.float32), sigma, outside_weight, 1.0, int(len(d)))
        maxima = [float(m.max()) for m in scale.to_maps(distances, weight)]
        scale.film_max_q99 = max(float(np.percentile(maxima, quantile)), 1e-6)
        return scale

    def to_maps(self, distances: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """N x 14 x 14 distances -> N x 224 x 224 maps on the absolute scale (>= 0; 0 where not scored)."""
        d = smooth_grid(np.asarray(distances, dtype=np.float32), self.scored, self.sigma)
        z = np.clip(np.nan_to_num((d - self.floor) / self.spread, nan=0.0), 0, None).astype(np.float32)
        size = weight.shape[::-1]
        return np.stack([cv2.resize(g, size, interpolation=cv2.INTER_LINEAR) * weight for g in z]) / self.film_max_q99

    def to_dict(self) -> dict:
        return {"floor": _nested(self.floor), "spread": _nested(self.spread), "sigma": self.sigma,
                "outside_weight": self.outside_weight, "film_max_q99": self.film_max_q99, "n_films": self.n_films}

    @classmethod
    def from_dict(cls, d: dict) -> "PatchScale":
        return cls(_array(d["floor"]), _array(d["spread"]), float(d["sigma"]), float(d["outside_weight"]),
                   float(d["film_max_q99"]), int(d["n_films"]))


def smooth_grid(grids: np.ndarray, scored: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of N x 14 x 14 grids inside the scored positions only (normalised convolution: positions
    the detector does not read never leak in); 0 outside them."""
    if not sigma:
        return np.where(scored, grids, 0)
    m = scored.astype(np.float32)
    norm = np.maximum(cv2.GaussianBlur(m, (0, 0), sigma), 1e-6)
    out = np.stack([cv2.GaussianBlur((g * m).astype(np.float32), (0, 0), sigma) / norm for g in grids])
    return np.where(scored, out, 0)


@dataclass(frozen=True)
class ScoreScale:
    """The detector's held-out normal scores (its calibration): their 1st and 99th percentiles. A CAM's peak is set to
    where the film's score lies between them: 0 at the 1st percentile (or below), 1.0 at the 99th."""

    low: float
    q99: float

    @classmethod
    def of(cls, detector) -> "ScoreScale | None":
        cal = getattr(detector, "calibration", None)
        scores = np.asarray(getattr(cal, "normal_scores", None) or [], dtype=np.float64)
        if len(scores) < 20:
            return None
        low, q99 = np.percentile(scores, [1, 99])
        return cls(float(low), float(q99)) if q99 > low else None

    def excess(self, score: float) -> float:
        return max(0.0, (float(score) - self.low) / (self.q99 - self.low))


@dataclass
class MapScales:
    """What `<detector>.mapscale.json` holds: the PatchScale of the detector's anomaly map."""

    detector: str
    fingerprint: str
    patch: PatchScale | None = None
    fitted_on: str = ""

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / f"{self.detector}{SUFFIX}"
        doc = {"detector": self.detector, "fingerprint": self.fingerprint, "fitted_on": self.fitted_on,
               "anomaly_map": self.patch.to_dict() if self.patch else None}
        path.write_text(json.dumps(doc, indent=1))
        _CACHE.clear()
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "MapScales":
        return cls(d["detector"], d["fingerprint"], PatchScale.from_dict(d["anomaly_map"]) if d.get("anomaly_map") else None,
                   d.get("fitted_on", ""))


_CACHE: dict[tuple, MapScales] = {}
_LOCK = threading.Lock()


def scales_for(detector, directory: str | Path | None = None) -> MapScales | None:
    """The stored scales of this very detector (matched by fingerprint), or None."""
    from medsight import config

    path = Path(directory or config.WEIGHTS_DIR) / f"{detector.name}{SUFFIX}"
    if not path.is_file():
        return None
    key = (str(path), path.stat().st_mtime)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = MapScales.from_dict(json.loads(path.read_text()))
        scales = _CACHE[key]
    return scales if scales.fingerprint == fingerprint(detector) else None


def _nested(a: np.ndarray) -> list:
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in a]


def _array(rows: list) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)
