"""Issue 13, trained heads: do a normalising flow or a student-teacher regressor, trained on a site's normal films
only, rank dev NIH pneumonia above held-out NIH normals better than the site profile's PatchCore bank?

Protocol of docs/sites.md: the 239 dev `nih_talo` normals split by patient into a fitting half (the heads' training
films and the PatchCore bank) and an evaluation half; measured on the evaluation normals against all 222 dev NIH
pneumonia films; REPEATS random splits (mean ± sd). Sums of z-scored signals use z from the fitting films'
out-of-fold scores (2 patient folds), so nothing of the evaluation half sets them.

    .venv/bin/python scripts/site_heads_probe.py [REPEATS] [--out runs/site_heads]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medsight.vision.heads import FeatureStudent, PatchFlow  # noqa: E402


def pc_mean(pf, bank_films, films, bank_size=4000, seed=0):
    bank = pf[bank_films].reshape(-1, pf.shape[-1])
    if len(bank) > bank_size:
        bank = bank[torch.from_numpy(np.random.default_rng(seed).choice(len(bank), bank_size, replace=False))]
    return np.array([float(torch.cdist(pf[i], bank).min(1).values.mean()) for i in films])


def head_signals(maps, pf, mask, fit, films, epochs_flow, epochs_st):
    flow = PatchFlow().fit(pf[fit], epochs=epochs_flow)
    student = FeatureStudent().fit(maps[fit], epochs=epochs_st)
    return {"flow.mean": flow.film_scores(pf[films]), "flow.top10": flow.film_scores(pf[films], top=10),
            "student.mean": student.film_scores(maps[films], mask), "student.top10": student.film_scores(maps[films], mask, 10),
            "patchcore_site.mean": pc_mean(pf, fit, films)}


def main(argv=None) -> int:
    from sklearn.metrics import roc_auc_score

    from medsight.training.dataset import read_manifest
    from medsight.training.features import cached_maps
    from medsight.training.workflow import _backbone_factory
    from medsight.vision.detectors import load_detector
    from medsight.vision.detectors.patchcore import region_mask

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repeats", nargs="?", type=int, default=3)
    parser.add_argument("--manifest", default="../shared/data/cxr/manifest.csv")
    parser.add_argument("--epochs-flow", type=int, default=15)
    parser.add_argument("--epochs-student", type=int, default=60)
    parser.add_argument("--out", default="runs/site_heads")
    args = parser.parse_args(argv)

    df = read_manifest(args.manifest, "dev")
    nih = df[df.source == "nih_talo"].reset_index(drop=True)
    maps = np.asarray(cached_maps(nih["path"], _backbone_factory("cpu")), dtype=np.float32)
    y = 1 - nih.is_normal.to_numpy()
    pid = nih.patient_id.astype(str).to_numpy()
    normals, pneumonia = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    mask = region_mask()
    pc = load_detector(str(ROOT / "weights"), "patchcore")
    pf = pc.patch_features(maps)[:, torch.from_numpy(mask)].contiguous()  # films x 132 lung positions x D
    aurocs: dict[str, list[float]] = {}
    for rep in range(args.repeats):
        t0 = time.time()
        rng = np.random.default_rng(rep)
        pats = np.unique(pid[normals])
        rng.shuffle(pats)
        fit_p = set(pats[: len(pats) // 2])
        fit = np.array([i for i in normals if pid[i] in fit_p])
        held = np.array([i for i in normals if pid[i] not in fit_p])
        test = np.concatenate([held, pneumonia])
        signals = head_signals(maps, pf, mask, fit, test, args.epochs_flow, args.epochs_student)
        fp = np.unique(pid[fit])
        rng.shuffle(fp)
        a = np.array([i for i in fit if pid[i] in set(fp[::2])])
        b = np.array([i for i in fit if pid[i] not in set(fp[::2])])
        oof_a = head_signals(maps, pf, mask, b, a, args.epochs_flow, args.epochs_student)
        oof_b = head_signals(maps, pf, mask, a, b, args.epochs_flow, args.epochs_student)
        z = {}
        for k, v in signals.items():
            o = np.concatenate([oof_a[k], oof_b[k]])
            z[k] = (v - o.mean()) / (o.std() + 1e-8)
        combos = {"patchcore_site.mean + flow.mean": ("patchcore_site.mean", "flow.mean"),
                  "patchcore_site.mean + student.mean": ("patchcore_site.mean", "student.mean"),
                  "patchcore_site.mean + flow.mean + student.mean": ("patchcore_site.mean", "flow.mean", "student.mean"),
                  "flow.mean + student.mean": ("flow.mean", "student.mean")}
        for name, parts in combos.items():
            signals[name] = sum(z[p] for p in parts)
        yt = y[test]
        for k, v in signals.items():
            aurocs.setdefault(k, []).append(float(roc_auc_score(yt, v)))
        print(f"split {rep}: {time.time() - t0:.0f} s " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in aurocs.items()), flush=True)
    table = {k: {"mean": round(float(np.mean(v)), 3), "sd": round(float(np.std(v)), 3), "splits": [round(x, 4) for x in v]}
             for k, v in aurocs.items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "site_heads.json").write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "auroc": table}, indent=1) + "\n")
    for k, v in table.items():
        print(f"| {k} | {v['mean']:.3f} ± {v['sd']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
