"""Feature-space probes behind issue 6's "bar not met": which frozen-VGG16 signals separate the dev tasks, and why
none of them also passes the independent NIH set. Prints one AUROC row per signal and a fusion frontier.

Reads the training and dev feature caches that `medsight train` / `medsight evaluate` build (extracts them when
missing: about an hour on 2 CPU cores). Signals are fitted on 90% of the training normals (split by patient); the
fusion's z-scores come from the other 10%. Normals only everywhere; only the ranking of the fusion frontier looks
at dev labels, so that part is model selection on dev, not a result.

    .venv/bin/python scripts/probe_features.py --manifest ../shared/data/cxr/manifest.csv [--context]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medsight.training import train as T  # noqa: E402
from medsight.training.dataset import read_manifest  # noqa: E402
from medsight.training.features import cached_maps  # noqa: E402
from medsight.vision.features import LAYERS  # noqa: E402
from medsight.training.metrics import CONTROLLED, auroc  # noqa: E402
from medsight.training.synthetic import augment  # noqa: E402
from medsight.training.workflow import AUG_SEED, _backbone_factory, training_views  # noqa: E402
from medsight.vision.detectors.knn import LUNG_BOX, pooled_region  # noqa: E402

LUNG = (slice(LUNG_BOX[0], LUNG_BOX[1]), slice(LUNG_BOX[2], LUNG_BOX[3]))


def tasks(df) -> dict[str, np.ndarray]:
    """pooled + the evaluate command's controlled comparisons, as boolean row masks."""
    out = {"pooled": np.ones(len(df), bool)}
    for key, (col, value, labels) in CONTROLLED.items():
        out[key] = (df[col].astype(str).to_numpy() == value) & ((df["is_normal"].to_numpy() == 1) | df["label"].isin(labels).to_numpy())
    return out


def pooled(maps, how: str) -> np.ndarray:
    """N x 1280: each channel's mean over the grid or the lung box, or its spatial std or max."""
    if how in ("mean", "lung_mean"):
        region = LUNG_BOX if how == "lung_mean" else None
        return np.concatenate([pooled_region(maps, layer, region) for layer in LAYERS], axis=1)
    reduce = {"std": np.std, "max": np.max}[how]
    return np.concatenate([reduce(np.asarray(maps[i : i + 256], dtype=np.float32), axis=(2, 3)) for i in range(0, len(maps), 256)])


def knn_distance(bank: np.ndarray, query: np.ndarray, k: int = 5, centred: bool = False, drop: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine distance to the k nearest bank rows (L2-normalised; optionally centred on the bank mean, and
    with the `drop` directions projected out)."""
    b = torch.nn.functional.normalize(torch.from_numpy(bank), dim=1)
    q = torch.nn.functional.normalize(torch.from_numpy(query), dim=1)
    if drop is not None:
        d = torch.from_numpy(drop)
        b, q = b - (b @ d.T) @ d, q - (q @ d.T) @ d
    if centred:
        mu = b.mean(0)
        b, q = b - mu, q - mu
    b, q = torch.nn.functional.normalize(b, dim=1), torch.nn.functional.normalize(q, dim=1)
    return torch.cat([(1 - (q[i : i + 1024] @ b.T).topk(k, dim=1).values).mean(1) for i in range(0, len(q), 1024)]).numpy()


def context_errors(train_maps, fit, query_maps_list, layer="relu4_3", dim=96, epochs=12, log=print):
    """Blind-spot context prediction: a 5x5 convolution with its centre tap zeroed (then 1x1 layers) predicts each
    patch's PCA-whitened feature from its neighbours; trained on fitting normals; returns the per-image mean
    squared error over the lung box for each array in `query_maps_list`."""
    lo, hi = LAYERS[layer]
    get = lambda m: torch.log1p(torch.cat([torch.from_numpy(np.asarray(m[i : i + 512, lo:hi], np.float32)) for i in range(0, len(m), 512)]))  # noqa: E731
    x = get(train_maps)
    g = torch.Generator().manual_seed(0)
    pat = x[torch.randperm(len(x), generator=g)[:1500]].permute(0, 2, 3, 1).reshape(-1, hi - lo)
    mu, sd = pat.mean(0), pat.std(0) + 1e-3
    _, s, v = torch.linalg.svd((pat - mu) / sd, full_matrices=False)
    w = v[:dim].T / s[:dim] * np.sqrt(len(pat))
    proj = lambda t: torch.cat([(((t[i : i + 512].permute(0, 2, 3, 1) - mu) / sd) @ w).permute(0, 3, 1, 2) for i in range(0, len(t), 512)])  # noqa: E731
    z = proj(x)
    del x
    conv = torch.nn.Conv2d(dim, 256, 5, padding=2)
    mask = torch.ones(1, 1, 5, 5)
    mask[..., 2, 2] = 0
    head = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Conv2d(256, 256, 1), torch.nn.ReLU(), torch.nn.Conv2d(256, dim, 1))
    net = lambda t: head(torch.nn.functional.conv2d(t, conv.weight * mask, conv.bias, padding=2))  # noqa: E731
    opt = torch.optim.AdamW(list(conv.parameters()) + list(head.parameters()), 2e-3, weight_decay=1e-4)
    fit_t = torch.from_numpy(np.asarray(fit))
    for ep in range(epochs):
        order = fit_t[torch.randperm(len(fit_t), generator=g)]
        for i in range(0, len(order), 64):
            batch = z[order[i : i + 64]]
            loss = ((net(batch) - batch) ** 2).mean(1)[:, 1:13, 1:13].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        log(f"  context epoch {ep + 1}/{epochs}: loss {loss.item():.4f}")
    out = []
    with torch.no_grad():
        for m in query_maps_list:
            q = proj(get(m)) if m is not train_maps else z
            err = torch.cat([((net(q[i : i + 512]) - q[i : i + 512]) ** 2).mean(1) for i in range(0, len(q), 512)])
            out.append(err[:, LUNG[0], LUNG[1]].flatten(1).mean(1).numpy())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--context", action="store_true", help="also the blind-spot context-prediction signal (~12 min)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    factory = _backbone_factory()
    train = read_manifest(args.manifest, "train")
    train = train[train["is_normal"] == 1].reset_index(drop=True)
    dev = read_manifest(args.manifest, "dev")
    tr_maps, dv_maps = cached_maps(train["path"], factory), cached_maps(dev["path"], factory)
    fit, hold = T.holdout_split(len(train), train["patient_id"].tolist(), 0.1, seed=0)
    masks, y = tasks(dev), 1 - dev["is_normal"].to_numpy()
    print(f"{len(fit)} fitting normals, {len(hold)} held-out normals, {len(dev)} dev images", flush=True)
    print(f"{'signal':56s} " + " ".join(f"{k:>18s}" for k in masks), flush=True)
    signals: dict[str, np.ndarray] = {}

    def add(name: str, s_dev: np.ndarray, s_hold: np.ndarray) -> None:
        signals[name] = (s_dev - s_hold.mean()) / (s_hold.std() + 1e-12)
        print(f"{name:56s} " + " ".join(f"{auroc(y[m], s_dev[m]):18.3f}" for m in masks.values()), flush=True)

    reps = {how: (pooled(tr_maps, how), pooled(dv_maps, how)) for how in ("mean", "lung_mean", "std", "max")}
    for how, (a, b) in reps.items():
        for layer, (lo, hi) in LAYERS.items():
            for centred in (False, True):
                bank = a[fit, lo:hi]
                add(f"knn {how} {layer}{' centred' if centred else ''}",
                    knn_distance(bank, b[:, lo:hi], centred=centred), knn_distance(bank, a[hold, lo:hi], centred=centred))
    # directions to project out: top principal components of the normals, or the nuisance directions along which
    # augmented views (resampling, JPEG, gamma, rotation) of the same normal move (nuisance attribute projection)
    views = training_views(train)
    aug = pooled(cached_maps(train["path"].iloc[views], factory, augment, "aug", AUG_SEED), "mean")
    a, b = reps["mean"]
    for layer in ("relu3_3", "relu4_3"):
        lo, hi = LAYERS[layer]
        unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
        pcs = np.linalg.svd(unit(a[fit, lo:hi]) - unit(a[fit, lo:hi]).mean(0), full_matrices=False)[2]
        nuis = np.linalg.svd(unit(aug[:, lo:hi]) - unit(a[views, lo:hi]), full_matrices=False)[2]
        for m in (10, 50):
            for what, basis in (("PCs", pcs), ("augmentation directions", nuis)):
                add(f"knn mean {layer} without top {m} {what}", knn_distance(a[fit, lo:hi], b[:, lo:hi], drop=basis[:m]),
                    knn_distance(a[fit, lo:hi], a[hold, lo:hi], drop=basis[:m]))
    if args.context:
        e_dev, e_hold = context_errors(tr_maps, fit, [dv_maps, tr_maps[np.sort(hold)]], log=print)
        add("context prediction error relu4_3 (lungs)", e_dev, e_hold)
    # fusion frontier: sums of 2-3 z-scored signals; best worst-dev-task AUROC at each NIH level (selection on dev)
    names = [n for n in signals if "without" not in n]
    rows = []
    for r in (2, 3):
        for combo in itertools.combinations(names, r):
            s = sum(signals[n] for n in combo)
            a_ = {k: auroc(y[m], s[m]) for k, m in masks.items()}
            rows.append((min(a_["pooled"], a_["pediatric_pneumonia"], a_["adult_covid"]), a_["nih_talo_pneumonia"], combo))
    print("\nfusion frontier (worst of pooled / pediatric / adult COVID, then NIH), chosen on dev:")
    for lo_nih in (0.5, 0.6, 0.65, 0.7, 0.72, 0.75):
        ok = [r for r in rows if r[1] >= lo_nih]
        if ok:
            best = max(ok, key=lambda r: r[0])
            print(f"  NIH >= {lo_nih:.2f}: worst dev task {best[0]:.3f}, NIH {best[1]:.3f}  {' + '.join(best[2])}")
    print(f"\n{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
