"""Fit and measure the out-of-distribution gate: `medsight gate-fit` (feature-space check from training normals)
and `medsight gate-eval` (detection rate per non-CXR kind, false-flag rate on real dev radiographs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medsight import config
from medsight.imaging.gate import check_frontal_cxr
from medsight.imaging.orientation import load_orientation
from medsight.imaging.load import LoadedImage, load_image


def _backbone():
    from medsight.vision.backbone import load_backbone

    return load_backbone("auto")


def _maps(backbone, images: list[LoadedImage], batch: int = 16) -> np.ndarray:
    from medsight.imaging.preprocess import to_backbone_tensor, to_square
    from medsight.vision.features import maps_from_taps
    from medsight.vision.backbone import forward_taps

    parts = [maps_from_taps(forward_taps(backbone, to_backbone_tensor([to_square(im.pixels) for im in images[i : i + batch]]))).cpu().numpy()
             for i in range(0, len(images), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, 1280, 14, 14), np.float32)


def cached_rows(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(maps, have): feature maps of `paths` found in any clean-view feature store under the cache (read only,
    e.g. the dev extraction or `stability-eval`'s sample) and a mask of the rows found."""
    from medsight.training.features import FeatureStore

    paths = [str(p) for p in paths]
    out = np.zeros((len(paths), 1280, 14, 14), np.float16)
    have = np.zeros(len(paths), bool)
    want = {p: i for i, p in enumerate(paths)}
    for meta_path in sorted((config.CACHE_DIR / "features").glob("*/meta.json")):
        try:
            if json.loads(meta_path.read_text()).get("view") != "clean":
                continue
            store = FeatureStore.open(meta_path.parent)
        except (OSError, ValueError):
            continue
        for j, f in enumerate(store.files):
            i = want.get(f)
            if i is not None and store.done[j] and not have[i]:
                out[i], have[i] = store.maps[j], True
    return out, have


def cached_or_computed_maps(paths: list[str], backbone_factory) -> np.ndarray:
    """Feature maps for `paths`: cached rows where there are any, the rest through the backbone in memory."""
    out, have = cached_rows(paths)
    missing = np.flatnonzero(~have)
    if len(missing):
        out[missing] = _maps(backbone_factory(), [load_image(paths[i]) for i in missing]).astype(np.float16)
    return out


def train_normal_maps(manifest: str | Path, split: str = "train", n: int = 2000, seed: int = 0, log=print) -> np.ndarray:
    """Feature maps of up to `n` training normals. Reuses the training feature cache (rows already extracted, read
    only) when one exists for this split, else extracts the sample into the cache."""
    from medsight.training.dataset import read_manifest
    from medsight.training.features import FeatureStore, cached_maps, find_store_dir
    from medsight.training.workflow import _backbone_factory

    df = read_manifest(manifest, split)
    df = df[df["is_normal"] == 1].reset_index(drop=True)
    store_dir = find_store_dir(df["path"], "clean", 0, config.CACHE_DIR / "features")
    if (store_dir / "done.npy").exists():
        store = FeatureStore.open(store_dir)
        done = np.flatnonzero(store.done)
        pick = np.sort(np.random.default_rng(seed).choice(done, min(n, len(done)), replace=False))
        log(f"gate-fit: {len(pick)} training normals from the feature cache {store_dir}")
        return np.asarray(store.maps[pick], dtype=np.float16)
    sample = df.sample(n=min(n, len(df)), random_state=seed)
    log(f"gate-fit: extracting features of {len(sample)} training normals")
    return cached_maps(sample["path"], _backbone_factory())


def train_normal_pixels(manifest: str | Path, split: str = "train", n: int = 100_000, seed: int = 0) -> list[np.ndarray]:
    """Grayscale pixels of up to `n` training normals (a random sample; for the orientation check)."""
    from medsight.training.dataset import read_manifest

    df = read_manifest(manifest, split)
    df = df[df["is_normal"] == 1]
    sample = df.sample(n=min(n, len(df)), random_state=seed)
    return [load_image(p).pixels for p in sample["path"]]


def fit_gate(manifest: str | Path, out_dir: str | Path | None = None, n: int = 2000, log=print) -> dict:
    from medsight.vision.ood import fit_ood, save_ood

    maps = train_normal_maps(manifest, n=n, log=log)
    rng = np.random.default_rng(1)
    hold = np.zeros(len(maps), bool)
    hold[rng.choice(len(maps), max(50, len(maps) // 5), replace=False)] = True
    state = fit_ood(maps[~hold], maps[hold])
    path = save_ood(state, out_dir or config.WEIGHTS_DIR)
    log(f"gate-fit: bank {state['n_bank']}, threshold {state['threshold']:.4f} "
        f"(q{state['quantile']} of {state['n_holdout']} held-out normals x {state['margin']}); wrote {path}")
    return {k: v for k, v in state.items() if k != "bank"}


def evaluate_gate(manifest: str | Path, out_dir: str | Path, n_dev: int = 400, n_transform: int = 60,
                  weights_dir: str | Path | None = None, seed: int = 0, all_dev: bool = True, log=print) -> dict:
    """Run the gate (image statistics, feature check, both) on real dev radiographs and on non-CXR images.
    `all_dev`: also the false-flag rate on every dev radiograph (statistics; features where already cached)."""
    from medsight.imaging.ood_samples import TRANSFORMS, package_samples, transformed
    from medsight.training.dataset import read_manifest
    from medsight.training.stability import sample_for_stability
    from medsight.training.workflow import _backbone_factory
    from medsight.vision.ood import load_ood, ood_check

    t0 = time.time()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = load_ood(weights_dir or config.WEIGHTS_DIR)
    orientation = load_orientation(weights_dir)
    if orientation is None:
        log("gate-eval: no weights/orientation.json: no orientation check (run `medsight orientation-fit`)")
    if state is None:
        log("gate-eval: no weights/ood.json: measuring image statistics only (run `medsight gate-fit`)")
    dev = sample_for_stability(read_manifest(manifest, "dev"), n_dev, seed)  # same sample as `stability-eval`
    dev_images = [load_image(p) for p in dev["path"]]
    sets: dict[str, list[tuple[str, LoadedImage]]] = {"dev_radiograph": list(zip(dev["file"], dev_images))}
    sets.update(package_samples())
    base_idx = np.random.default_rng(seed).choice(len(dev_images), min(n_transform, len(dev_images)), replace=False)
    base = [dev_images[i] for i in base_idx]
    for kind in TRANSFORMS:
        sets[kind] = [(f"{kind}:{dev['file'][i]}", im) for i, im in zip(base_idx, transformed(base, kind, seed))]
    backbone = _backbone() if state is not None else None
    rows = []
    for kind, items in sets.items():
        if not items:
            continue
        if state is None:
            oods = [None] * len(items)
        else:  # dev radiographs: through the feature cache (shared with `stability-eval`)
            maps = (cached_or_computed_maps(list(dev["path"]), _backbone_factory()) if kind == "dev_radiograph"
                    else _maps(backbone, [im for _, im in items]))
            oods = ood_check(np.asarray(maps, dtype=np.float32), state)
        for (name, im), ood in zip(items, oods):
            stats = check_frontal_cxr(im, orientation=None)
            both = check_frontal_cxr(im, ood, orientation)  # the orientation model of `weights_dir`, if any
            turned = orientation is not None and both.checks["p_upright"] < orientation.threshold
            rows.append({"kind": kind, "name": name, "flag_stats": not stats.ok, "flag_orientation": turned,
                         "flag_ood": bool(ood and ood["ood"]),
                         "flag": not both.ok, "ood_distance": ood["ood_distance"] if ood else None,
                         "reasons": " | ".join(both.reasons)})
        log(f"gate-eval: {kind}: {len(items)} images")
    table = pd.DataFrame(rows)
    table.to_csv(out_dir / "gate_results.csv", index=False)
    dev_rows = table[table["kind"] == "dev_radiograph"].copy()
    dev_rows["label"] = dev["label"].to_numpy()
    dev_rows["source"] = dev["source"].to_numpy()
    rate = lambda d, col="flag": float(d[col].mean()) if len(d) else None  # noqa: E731
    full = read_manifest(manifest, "dev") if all_dev else dev
    stats_all = pd.DataFrame({"label": full["label"], "flag": [not check_frontal_cxr(load_image(p)).ok for p in full["path"]]})
    metrics = {
        "manifest": str(manifest), "ood_state": ({k: v for k, v in state.items() if k != "bank"} if state else None),
        "orientation_model": orientation.measured if orientation is not None else None,
        "false_flag_rate_dev": {"combined": rate(dev_rows), "stats_only": rate(dev_rows, "flag_stats"),
                                "orientation_only": rate(dev_rows, "flag_orientation"),
                                "ood_only": rate(dev_rows, "flag_ood"), "n": int(len(dev_rows)),
                                "by_label": {k: rate(g) for k, g in dev_rows.groupby("label")},
                                "by_source": {k: rate(g) for k, g in dev_rows.groupby("source")},
                                "stats_only_all_dev": {"rate": rate(stats_all), "n": int(len(stats_all)),
                                                       "by_label": {k: rate(g) for k, g in stats_all.groupby("label")}}},
        "detection_rate": {kind: {"combined": rate(g), "stats_only": rate(g, "flag_stats"),
                                  "orientation_only": rate(g, "flag_orientation"), "ood_only": rate(g, "flag_ood"), "n": int(len(g))}
                           for kind, g in table[table["kind"] != "dev_radiograph"].groupby("kind", sort=False)},
        "seconds": round(time.time() - t0, 1),
    }
    if state is not None and all_dev:  # the feature check on every dev radiograph already in a feature cache (no backbone pass)
        maps, have = cached_rows(list(full["path"]))
        idx = np.flatnonzero(have)
        flags = pd.DataFrame({"label": full["label"].to_numpy()[idx], "flag": [
            c["ood"] for i in range(0, len(idx), 512) for c in ood_check(np.asarray(maps[idx[i : i + 512]], np.float32), state)]})
        both = flags.assign(flag=flags["flag"].to_numpy() | stats_all["flag"].to_numpy()[idx])
        metrics["false_flag_rate_dev"]["ood_only_cached_dev"] = {
            "rate": rate(flags), "n": int(len(flags)), "by_label": {k: rate(g) for k, g in flags.groupby("label")}}
        metrics["false_flag_rate_dev"]["combined_cached_dev"] = {
            "rate": rate(both), "n": int(len(both)), "by_label": {k: rate(g) for k, g in both.groupby("label")}}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
