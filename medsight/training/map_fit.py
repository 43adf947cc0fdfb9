"""What heatmaps need from training normals, and from them only: the lung-field atlas (`weights/lung_atlas.png`,
`medsight.vision.regions`) and each detector's map scales (`weights/<detector>.mapscale.json`,
`medsight.vision.map_scale`), fitted on the held-out training normals the detector was calibrated on.
No dev or test film is read here."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from medsight import config


def training_normals(manifest: str | Path) -> pd.DataFrame:
    from medsight.training.dataset import read_manifest

    df = read_manifest(manifest, "train")
    return df[df["is_normal"] == 1].reset_index(drop=True)


def holdout_normals(manifest: str | Path) -> pd.DataFrame:
    """The held-out training normals of `medsight train` (the same patient-grouped 10%, same seed)."""
    from medsight.training.train import holdout_split

    df = training_normals(manifest)
    _, hold = holdout_split(len(df), df["patient_id"].tolist(), 0.1, seed=0)
    return df.iloc[hold].reset_index(drop=True)


def fit_atlas(manifest: str | Path, out: str | Path | None = None, n: int = 900, seed: int = 1, log=print) -> Path:
    """The lung-field atlas from `n` training normals: each film's rough lung fields, averaged, thresholded."""
    import cv2

    from medsight.imaging.load import load_image
    from medsight.imaging.preprocess import to_square
    from medsight.vision.regions import ATLAS_FILE, LABELS, atlas_from_probability, film_lung_mask

    films = training_normals(manifest).sample(n=n, random_state=seed)["path"]
    prob = np.mean([film_lung_mask(to_square(load_image(p).pixels)) for p in films], axis=0)
    atlas = atlas_from_probability(prob)
    path = Path(out or config.WEIGHTS_DIR) / ATLAS_FILE
    cv2.imwrite(str(path), atlas)
    log(f"atlas from {n} training normals: " + ", ".join(f"{k} {np.mean(atlas == v):.1%}" for k, v in LABELS.items()))
    return path


def _check_holdout(det, maps: np.ndarray) -> None:
    """The held-out films must be the ones the detector was calibrated on (same scores), else the scale is wrong."""
    stored = np.sort(np.asarray(det.calibration.normal_scores, dtype=np.float64))
    mine = np.sort(np.concatenate([det.score(np.asarray(maps[i : i + 64], np.float32)) for i in range(0, len(maps), 64)]))
    if len(stored) != len(mine) or not np.allclose(stored, mine, atol=1e-2 * max(1.0, float(np.ptp(stored)))):
        raise ValueError(f"{det.name}: these held-out normals are not the ones it was calibrated on (other manifest or weights?)")


def fit_map_scales(manifest: str | Path, detectors: list[str], weights: str | Path | None = None, log=print) -> list[Path]:
    """Fit and save `<detector>.mapscale.json` for the detector each named detector's anomaly map comes from (itself,
    a fused detector's part, or the companion map detector)."""
    from medsight.training.features import cached_maps
    from medsight.training.workflow import _backbone_factory
    from medsight.vision import map_scale
    from medsight.vision.detectors.patchcore import region_mask
    from medsight.vision.explain import _patch_source
    from medsight.vision.pipeline import AnomalyPipeline
    from medsight.vision.regions import load_atlas, lung_weight

    weights = Path(weights or config.WEIGHTS_DIR)
    hold = holdout_normals(manifest)
    maps = cached_maps(list(hold["path"]), _backbone_factory())
    stamp = f"{len(hold)} held-out training normals of {Path(manifest).name} ({time.strftime('%Y-%m-%d')})"
    written = []
    for name in detectors:
        source = _patch_source(AnomalyPipeline.load(name, weights_dir=weights))
        if source is None:
            log(f"[{name}] no patch anomaly map: nothing to fit (its Grad-CAM is scaled by its calibration)")
            continue
        _check_holdout(source, maps)
        dist = np.concatenate([source.anomaly_map(np.asarray(maps[i : i + 64], np.float32)) for i in range(0, len(maps), 64)])
        weight = lung_weight(load_atlas(weights), map_scale.PATCH_OUTSIDE_WEIGHT)
        patch = map_scale.PatchScale.fit(dist, region_mask(**source.config["region"]), weight)
        log(f"[{source.name}] anomaly map: {len(dist)} held-out normals, 99th percentile of their map maxima "
            f"{patch.film_max_q99:.3f} normal spreads")
        written.append(map_scale.MapScales(source.name, map_scale.fingerprint(source), patch, stamp).save(weights))
        log(f"wrote {written[-1]}")
    return written
