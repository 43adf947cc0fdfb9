"""End-to-end jobs over a manifest: `train` (feature caches -> detectors -> weights/) and `evaluate`
(feature cache -> every detector's scores -> metrics.json, plots, report.md). The CLI calls these."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from medsight import config
from medsight.training.dataset import read_manifest
from medsight.training.features import cached_maps
from medsight.vision.detectors.catalog import CATALOG
from medsight.vision.features import pool5_gap
from medsight.training.synthetic import augment, synthesize

SYNTH_SEED, AUG_SEED, SUBSET_SEED = 7, 1, 0
SYNTH_IMAGES = 1500  # training normals that get one synthetic-anomaly view and one augmented view
#: trainable detectors besides the paper's: name -> (detector kind, configuration), from the one catalogue
DETECTOR_RECIPES = {name: (d.kind, d.config) for name, d in CATALOG.items() if name != "paper"}


def _backbone_factory(device: str | None = None):
    def make():
        from medsight.vision.backbone import load_backbone

        return load_backbone("auto", device)
    return make


def _pool5_chunked(maps: np.ndarray, chunk: int = 512) -> np.ndarray:
    return np.concatenate([pool5_gap(maps[i : i + chunk]) for i in range(0, len(maps), chunk)]) if len(maps) else np.zeros((0, 512), np.float32)


def training_views(train: pd.DataFrame, limit_views: int = SYNTH_IMAGES) -> np.ndarray:
    """Indices of training normals that get a synthetic and an augmented view (fixed seed)."""
    n = min(limit_views, len(train))
    return np.sort(np.random.default_rng(SUBSET_SEED).choice(len(train), n, replace=False))


def train_from_manifest(manifest: str | Path, out_dir: str | Path | None = None, split: str = "train", limit: int | None = None,
                        vae_epochs: int | None = None, vit_epochs: int | None = None, device: str | None = None,
                        detectors: tuple[str, ...] = ("paper",), log=print) -> dict:
    """Train the requested detectors on the normal images of `split` and save them (with calibration) to `out_dir`."""
    from dataclasses import replace

    from medsight.training import train as T

    device = device or config.device_name()
    out_dir = Path(out_dir or config.WEIGHTS_DIR)
    df = read_manifest(manifest, split)
    df = df[df["is_normal"] == 1].reset_index(drop=True)
    if limit:
        df = df.sample(n=min(limit, len(df)), random_state=0).reset_index(drop=True)
    if len(df) < 10:
        raise ValueError(f"need at least 10 normal images in split {split!r}, found {len(df)}")
    factory = _backbone_factory(device)
    t0 = time.time()
    log(f"features: {len(df)} training normals (clean view)")
    clean = cached_maps(df["path"], factory)
    views = training_views(df)
    log(f"features: {len(views)} synthetic-anomaly and {len(views)} augmented views")
    synth = cached_maps(df["path"].iloc[views], factory, lambda g, s: synthesize(g, s)[0], "synth", SYNTH_SEED)
    aug = cached_maps(df["path"].iloc[views], factory, augment, "aug", AUG_SEED)
    fit, hold = T.holdout_split(len(df), df.get("patient_id", pd.Series([None] * len(df))).tolist(), 0.1, seed=0)
    hold_set = set(hold.tolist())
    v_fit = np.array([k for k, i in enumerate(views) if i not in hold_set], dtype=int)
    v_hold = np.array([k for k, i in enumerate(views) if i in hold_set], dtype=int)
    feature_seconds = time.time() - t0
    summary = {"manifest": str(manifest), "split": split, "n_train_normals": int(len(df)), "n_fit": int(len(fit)),
               "n_holdout": int(len(hold)), "feature_seconds": round(feature_seconds, 1), "detectors": {}}
    if "paper" in detectors:
        f_clean = _pool5_chunked(clean)
        f_syn, f_aug = _pool5_chunked(synth), _pool5_chunked(aug)
        vae_cfg = replace(T.VAE_PHASE, epochs=vae_epochs or T.VAE_PHASE.epochs)
        vit_cfg = replace(T.VIT_PHASE, epochs=vit_epochs or T.VIT_PHASE.epochs)
        det, hist = T.train_paper_detector(f_clean[fit], f_clean[hold], f_syn[v_fit], f_syn[v_hold],
                                           fit_aug_feats=f_aug[v_fit], device=device, vae_phase=vae_cfg, vit_phase=vit_cfg, log=log)
        det.card = {"trained_on": _training_description(df, split, len(fit), len(hold), len(v_fit)), "history": hist,
                    "trained_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        det.save(out_dir)
        summary["detectors"]["paper"] = {"threshold": det.calibration.threshold, "history": hist}
    for name in detectors:
        if name == "paper":
            continue
        from medsight.vision.detectors import DETECTOR_TYPES

        if name not in DETECTOR_RECIPES:
            raise ValueError(f"unknown detector {name!r}; known: paper, {', '.join(DETECTOR_RECIPES)}")
        kind, cfg = DETECTOR_RECIPES[name]
        extra = {"directory": out_dir} if kind == "fusion" else {}
        det = DETECTOR_TYPES[kind].fit(clean[fit], clean[hold], name=name, aug_maps=aug[v_fit], log=log, **cfg, **extra)
        det.card = {"trained_on": _training_description(df, split, len(fit), len(hold), len(v_fit)),
                    "trained_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        det.save(out_dir)
        summary["detectors"][name] = {"threshold": det.calibration.threshold}
    summary["seconds"] = round(time.time() - t0, 1)
    return summary


def _training_description(df: pd.DataFrame, split: str, n_fit: int, n_hold: int, n_views: int) -> str:
    by = df.groupby(["source", "age_group"]).size().to_dict()
    parts = ", ".join(f"{s}/{a}: {n}" for (s, a), n in sorted(by.items()))
    return (f"{len(df)} normal radiographs of split '{split}' ({parts}); {n_fit} to fit, {n_hold} held out (by patient) for "
            f"early stopping and calibration; {n_views} synthetic-anomaly views and {n_views} augmented views made "
            f"from fitting normals only. No pathology image was used.")
