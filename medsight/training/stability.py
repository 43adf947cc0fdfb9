"""Stability of a detector's score when the same radiograph comes through a different acquisition chain.

Each perturbation re-makes the 224x224 input the way real uploads differ: resampled down and up again, JPEG
re-encoded at quality 50-70, re-windowed with a gamma curve, or re-windowed linearly (a narrower or wider window).
For each detector we report the median absolute score change in units of the spread of its held-out normal scores
(the interquartile range of `calibration.normal_scores`), and the share of images whose flag (score >= the stored
threshold) flips. A detector that wins on dev but moves a lot here keys on the acquisition chain, not the lungs.
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

Perturbation = Callable[[np.ndarray, int], np.ndarray]


def resample(gray: np.ndarray, seed: int) -> np.ndarray:
    """Down to 40-60% of the size (area averaging) and back up (bilinear), as a low-resolution re-save."""
    rng = np.random.default_rng(seed)
    h, w = gray.shape
    f = rng.uniform(0.4, 0.6)
    small = Image.fromarray(gray).resize((max(8, round(w * f)), max(8, round(h * f))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def jpeg(gray: np.ndarray, seed: int) -> np.ndarray:
    """Re-encoded as JPEG at quality 50-70."""
    q = int(np.random.default_rng(seed).integers(50, 71))
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"))


def gamma(gray: np.ndarray, seed: int) -> np.ndarray:
    """A gamma curve in [0.7, 0.85] or [1.2, 1.4] (a different display LUT)."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.7, 0.85) if rng.random() < 0.5 else rng.uniform(1.2, 1.4)
    lut = np.round(255.0 * (np.arange(256) / 255.0) ** g).astype(np.uint8)
    return lut[gray]


def window(gray: np.ndarray, seed: int) -> np.ndarray:
    """A linear re-window: narrower (clip 1-5% at each end and stretch) or wider (compress to 80-90% of the range)."""
    rng = np.random.default_rng(seed)
    x = gray.astype(np.float32)
    if rng.random() < 0.5:
        lo, hi = np.percentile(x, [rng.uniform(1, 5), 100 - rng.uniform(1, 5)])
        out = (x - lo) / max(hi - lo, 1.0) * 255.0
    else:
        c = rng.uniform(0.8, 0.9)
        out = x.mean() + (x - x.mean()) * c
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


PERTURBATIONS: dict[str, Perturbation] = {"resample": resample, "jpeg_q50_70": jpeg, "gamma": gamma, "window": window}


def normal_spread(detector) -> float:
    """Interquartile range of the detector's held-out normal scores (the unit of score change)."""
    s = np.asarray(detector.calibration.normal_scores, dtype=np.float64)
    iqr = float(np.quantile(s, 0.75) - np.quantile(s, 0.25)) if len(s) >= 4 else 0.0
    return iqr if iqr > 1e-12 else float(s.std() or 1.0)


def stability(detectors: Sequence, clean_maps: np.ndarray, perturbed_maps: dict[str, np.ndarray]) -> dict[str, dict]:
    """{detector name: {perturbation: {median_abs_delta, flip_rate, median_delta, n}}} from feature maps of the same
    images, clean and perturbed (same order). `median_abs_delta` is in units of the normal-score IQR."""
    out = {}
    for det in detectors:
        clean = np.asarray(det.score(np.asarray(clean_maps, dtype=np.float32)), dtype=np.float64)
        spread, thr = normal_spread(det), det.calibration.threshold
        res = {}
        for name, maps in perturbed_maps.items():
            s = np.asarray(det.score(np.asarray(maps, dtype=np.float32)), dtype=np.float64)
            delta = (s - clean) / spread
            res[name] = {"median_abs_delta": float(np.median(np.abs(delta))), "flip_rate": float(np.mean((s >= thr) != (clean >= thr))),
                         "median_delta": float(np.median(delta)), "n": int(len(s))}
        out[det.name] = res
    return out


def sample_for_stability(df: pd.DataFrame, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """About `n` rows of a manifest split, stratified by label (equal share per label, fewer where a label is rare)."""
    labels = sorted(df["label"].unique())
    per = max(1, n // max(len(labels), 1))
    parts = [g.sample(n=min(per, len(g)), random_state=seed) for _, g in df.groupby("label")]
    return pd.concat(parts).reset_index(drop=True)


def stability_of_files(files: Sequence[str], detectors: Sequence, backbone_factory, perturbations: Sequence[str] | None = None,
                       seed: int = 0, root=None, progress: bool = False) -> dict[str, dict]:
    """Stability of every detector on these image files. Feature maps of the clean and perturbed views are cached
    under `.cache/features` (one store per perturbation), so a rerun or another detector costs no backbone pass."""
    from medsight.training.features import cached_maps

    files = [str(f) for f in files]
    clean = cached_maps(files, backbone_factory, root=root, progress=progress)
    perturbed = {p: cached_maps(files, backbone_factory, PERTURBATIONS[p], f"stability_{p}", seed, root=root, progress=progress)
                 for p in (perturbations or PERTURBATIONS)}
    return stability(detectors, clean, perturbed)


def stability_of_images(pipeline, images: Sequence[np.ndarray], perturbations: Sequence[str] | None = None,
                        seed: int = 0) -> dict[str, dict]:
    """{perturbation: {...}} for the pipeline's detector on in-memory uint8 grayscale images (nothing cached)."""
    from medsight.imaging.preprocess import to_square

    squares = [to_square(np.asarray(g)) for g in images]
    clean = pipeline.maps(squares)
    perturbed = {p: pipeline.maps([PERTURBATIONS[p](g, seed * 1_000_003 + i) for i, g in enumerate(squares)])
                 for p in (perturbations or PERTURBATIONS)}
    return stability([pipeline.detector], clean, perturbed)[pipeline.detector.name]
