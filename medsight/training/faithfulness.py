"""Is a heatmap faithful to the anomaly score, and does it point at the lungs?

Deletion: replace the most salient pixels (per the map) by a blurred copy of the image, in growing fractions, and
track the detector's score; a faithful map makes the score fall fastest, so a lower area is better. Insertion: start
from the blurred image and put back the most salient pixels first; a faithful map restores the score fastest.
Scores are expressed relative to the clean image's score, in units of the held-out normal-score IQR, and every method
is compared with a smooth random map on the same image (the baseline a map has to beat).
Location: the share of each map's mass in the lung fields, the mediastinum, below the diaphragm and the border band
(within 16 px of the square's edge), from the lung-field atlas (`medsight.vision.regions`), against those regions'
share of the area (what a uniform map would give).

Caveat: blurring is itself a change the detector may score as anomalous, so the whole-image blur shift is reported.
ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution Methods") answers that
caveat: removed pixels are filled by noisy linear imputation from their neighbours (pytorch-grad-cam's
`NoisyLinearImputer`), and both orders are run: most relevant first (MoRF, a faithful map makes the score fall)
and least relevant first (LeRF, the score should stay). ROAD combined = mean(LeRF - MoRF), higher is better; a
change the removal itself causes shifts both curves alike and cancels.
"""

from __future__ import annotations

import time
from typing import Sequence

import cv2
import numpy as np

from medsight.imaging.preprocess import INPUT_SIZE, to_square
from medsight.vision.regions import BORDER_PX

#: default fractions of pixels replaced (0 and 1 are shared by every method)
FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0)
BLUR_SIGMA = 10.0
#: ROAD: fractions of pixels removed and imputed
ROAD_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def blurred(gray: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    return cv2.GaussianBlur(gray, (0, 0), sigma)


def random_map(seed: int, grid: int = 7) -> np.ndarray:
    """A smooth random saliency map (uniform noise on a coarse grid, bicubic upsampling): the baseline."""
    g = np.random.default_rng(seed).random((grid, grid)).astype(np.float32)
    m = cv2.resize(g, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_CUBIC)
    return (m - m.min()) / max(float(m.max() - m.min()), 1e-8)


def _order(saliency: np.ndarray, seed: int) -> np.ndarray:
    # tiny noise breaks ties (flat regions of a map) in a seeded, unbiased way
    noise = np.random.default_rng(seed).random(saliency.size) * 1e-6
    return np.argsort(-(saliency.ravel().astype(np.float64) + noise), kind="stable")


def masked_views(gray: np.ndarray, saliency: np.ndarray, fractions: Sequence[float], mode: str, seed: int = 0,
                 base: np.ndarray | None = None) -> list[np.ndarray]:
    """Images with the top `f` most salient pixels replaced (deletion: by `base`, a blur; insertion: the other way)."""
    base = blurred(gray) if base is None else base
    order = _order(saliency, seed)
    src, dst = (base, gray) if mode == "deletion" else (gray, base)
    out = []
    for f in fractions:
        mask = np.zeros(gray.size, dtype=bool)
        mask[order[: int(round(f * gray.size))]] = True
        out.append(np.where(mask.reshape(gray.shape), src, dst).astype(np.uint8))
    return out


def road_views(gray: np.ndarray, saliency: np.ndarray, fractions: Sequence[float], order: str, seed: int = 0) -> list[np.ndarray]:
    """Images with the top `f` most (order "morf") or least ("lerf") salient pixels removed and imputed (ROAD)."""
    import torch
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    imputer = NoisyLinearImputer()
    ranked = _order(saliency if order == "morf" else -np.asarray(saliency, dtype=np.float64), seed)
    img = torch.from_numpy(gray.astype(np.float32) / 255.0)[None]
    torch.manual_seed(seed)
    out = []
    for f in fractions:
        keep = np.ones(gray.size, dtype=np.float32)
        keep[ranked[: int(round(f * gray.size))]] = 0.0
        filled = imputer(img, torch.from_numpy(keep.reshape(gray.shape)))[0].numpy()
        out.append(np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8))
    return out


def map_location(saliency: np.ndarray) -> dict:
    """Share of the map's mass in each atlas region (`<region>_mass`; NaN for a map with no mass) and the regions'
    share of the area."""
    from medsight.vision.regions import map_location as located

    loc = located(saliency)
    if not float(np.clip(saliency, 0, None).sum()) > 0:
        loc = {k: float("nan") if k.endswith("_mass") else v for k, v in loc.items()}
    return loc


def _nan_stat(stat, values) -> float | None:
    v = np.asarray(values, dtype=np.float64)
    return None if np.isnan(v).all() else float(stat(v))


def _auc(fractions: Sequence[float], curve: np.ndarray) -> float:
    x = np.asarray(fractions, dtype=np.float64)
    return float(np.sum((curve[1:] + curve[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def faithfulness(pipeline, images: Sequence[np.ndarray], methods: Sequence[str] | None = None,
                 fractions: Sequence[float] = FRACTIONS, seed: int = 0, road: Sequence[float] | None = None,
                 log=None) -> dict:
    """Deletion / insertion AUCs and map location per explanation method (plus "random") for the pipeline's
    detector, averaged over `images` (uint8 grayscale); with `road` (fractions, e.g. ROAD_FRACTIONS) also the ROAD
    MoRF / LeRF curves. `fractions` without any strictly between 0 and 1 skips deletion / insertion (their AUCs are
    then None). Returns {method: {...}} and a "_summary" entry; location shares are means (and medians) over the
    maps that have any mass."""
    from medsight.training.stability import normal_spread
    from medsight.vision.explain import available_methods, explain

    det = pipeline.detector
    methods = list(methods or available_methods(pipeline)) + ["random"]
    spread = normal_spread(det)
    inner = [f for f in fractions if 0.0 < f < 1.0]
    per = {m: {"deletion": [], "insertion": [], "location": [], "map_seconds": [], "morf": [], "lerf": []} for m in methods}
    blur_shift = []
    for i, img in enumerate(images):
        gray = to_square(np.asarray(img))
        base = blurred(gray)
        s_clean, s_blur = (float(v) for v in det.score(pipeline.maps([gray, base])))
        blur_shift.append((s_blur - s_clean) / spread)
        views, index = [], []
        for m in methods:
            t0 = time.perf_counter()
            sal = random_map(seed * 1_000_003 + i) if m == "random" else explain(pipeline, gray, m)
            per[m]["map_seconds"].append(time.perf_counter() - t0)
            per[m]["location"].append(map_location(sal))
            for mode in ("deletion", "insertion"):
                views += masked_views(gray, sal, inner, mode, seed + i, base)
                index.append((m, mode, len(inner)))
            for order in ("morf", "lerf") if road else ():
                views += road_views(gray, sal, road, order, seed + i)
                index.append((m, order, len(road)))
        scores = np.concatenate([det.score(pipeline.maps(views[j : j + 16])) for j in range(0, len(views), 16)])
        start = 0
        for m, mode, n in index:
            mid = scores[start : start + n]
            start += n
            if mode in ("morf", "lerf"):  # mean score change over the removal fractions
                per[m][mode].append(float(np.mean(mid - s_clean) / spread))
                continue
            ends = (s_clean, s_blur) if mode == "deletion" else (s_blur, s_clean)
            curve = (np.concatenate([[ends[0]], mid, [ends[1]]]) - s_clean) / spread
            per[m][mode].append(_auc([0.0, *inner, 1.0], curve))
        if log:
            log(f"[faithfulness {det.name}] {i + 1}/{len(images)} images")
    out = {}
    rnd_del, rnd_ins = np.array(per["random"]["deletion"]), np.array(per["random"]["insertion"])
    for m in methods:
        d, ins = np.array(per[m]["deletion"]), np.array(per[m]["insertion"])
        loc = per[m]["location"]
        blur = {"deletion_auc": float(d.mean()), "insertion_auc": float(ins.mean()),
                "deletion_minus_random": float((d - rnd_del).mean()), "insertion_minus_random": float((ins - rnd_ins).mean()),
                "share_deletion_beats_random": float(np.mean(d < rnd_del)),
                "share_insertion_beats_random": float(np.mean(ins > rnd_ins))}
        out[m] = {**{k: (v if inner else None) for k, v in blur.items()},
                  **{k: _nan_stat(np.nanmean, [x[k] for x in loc]) for k in loc[0]},
                  **{f"median_{k}": _nan_stat(np.nanmedian, [x[k] for x in loc]) for k in loc[0] if k.endswith("_mass")},
                  "empty_maps": int(np.sum([np.isnan(x["lung_mass"]) for x in loc])),
                  "seconds_per_map": float(np.mean(per[m]["map_seconds"])), "n": int(len(d))}
        if road:
            morf, lerf = np.array(per[m]["morf"]), np.array(per[m]["lerf"])
            rnd = np.array(per["random"]["lerf"]) - np.array(per["random"]["morf"])
            out[m].update({"road_morf": float(morf.mean()), "road_lerf": float(lerf.mean()),
                           "road_combined": float((lerf - morf).mean()),
                           "share_road_beats_random": float(np.mean(lerf - morf > rnd))})
    out["_summary"] = {"detector": det.name, "n_images": len(images), "fractions": list(fractions),
                       "blur_sigma": BLUR_SIGMA, "score_unit": "held-out normal-score IQR",
                       "normal_score_iqr": spread, "median_blur_shift": float(np.median(blur_shift)),
                       "regions": "lung-field atlas (weights/lung_atlas.png)", "border_band_px": BORDER_PX, "road_fractions": list(road) if road else None}
    return out
