"""Issue 13: does the student-teacher head (medsight.vision.detectors.student), trained on a site's normals, add to
a fitted site profile of the default detector?

The site study's protocol and splits (`medsight site study`, size "all", the same seeds): dev `nih_talo` normals
split by patient into a fitting half and an evaluation half; the profile is fitted on the fitting half; measured on
the evaluation normals against all 222 dev NIH pneumonia films. The student (hidden width 256, 60 epochs: the probe's first
setting) is trained on the same fitting films; the profile here is fitted without its own student.
Combined score = z(profile score) + z(student score), each z from the fitting films' out-of-fold scores (2 patient
folds: a profile and a student fitted on one fold score the other); its threshold is the 95th
percentile of the fitting films' out-of-fold combined scores. Nothing of the evaluation half sets anything.

    .venv/bin/python scripts/site_student_probe.py [REPEATS] [--out runs/site_student]
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


def main(argv=None) -> int:
    from site_heads_probe import nih_dev_maps

    from medsight.sites.fitting import load_detectors
    from medsight.sites.study import _point, _score, _split_patients
    from medsight.vision.detectors.catalog import DEFAULT_DETECTOR
    from medsight.vision.detectors.patchcore import region_mask
    from medsight.vision.detectors.student import FeatureStudent
    from medsight.vision.site_fit import fit_profile, group_folds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repeats", nargs="?", type=int, default=5)
    parser.add_argument("--manifest", default="../shared/data/cxr/manifest.csv")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--out", default="runs/site_student")
    args = parser.parse_args(argv)

    df, maps = nih_dev_maps(args.manifest)
    y = 1 - df["is_normal"].to_numpy()
    groups = np.array([g if isinstance(g, str) and g else f"#{i}" for i, g in enumerate(df["patient_id"].fillna(""))])
    normals, abnormal = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    det = load_detectors(None, [DEFAULT_DETECTOR])[DEFAULT_DETECTOR]
    mask = torch.from_numpy(region_mask())

    def scores(student, m):
        with torch.no_grad():
            return (student.errors(torch.as_tensor(m)) / student.err_mean)[:, mask].mean(dim=1).numpy()
    rows = []
    for r in range(args.repeats):
        rng = np.random.default_rng(r)  # as run_study: the split, then the pick of "all" fitting films
        in_fit = _split_patients(groups[normals], rng)
        fit_pool, held = normals[in_fit], normals[~in_fit]
        pick = np.sort(rng.choice(fit_pool, len(fit_pool), replace=False))
        test = np.concatenate([held, abnormal])
        t0 = time.time()
        profile = fit_profile(f"probe{r}", maps[pick], df["file"].iloc[pick].tolist(), {DEFAULT_DETECTOR: det},
                              groups[pick].tolist(), "nih_talo", {"student": False}, before=False)
        adapted = profile.adapt(det)
        t_profile = time.time() - t0
        prof_test = _score(adapted, maps[test])
        t0 = time.time()
        student_test = scores(FeatureStudent(args.hidden).fit(maps[pick], epochs=args.epochs), maps[test])
        t_student = time.time() - t0
        student_oof = np.zeros(len(pick))
        for ref, out in group_folds(groups[pick].tolist(), 2):
            student_oof[out] = scores(FeatureStudent(args.hidden).fit(maps[pick][ref], epochs=args.epochs), maps[pick][out])

        def z(v, ref):
            return (v - ref.mean()) / (ref.std() + 1e-8)

        # out-of-fold profile scores on the same 2 folds as the student's (profiles fitted on the other fold)
        oof_profile = np.zeros(len(pick))
        for ref, out in group_folds(groups[pick].tolist(), 2):
            sub = fit_profile(f"probe{r}f", maps[pick][ref], df["file"].iloc[pick[ref]].tolist(), {DEFAULT_DETECTOR: det},
                              groups[pick][ref].tolist(), "nih_talo", {"student": False}, before=False)
            oof_profile[out] = _score(sub.adapt(det), maps[pick][out])
        combined_test = z(prof_test, oof_profile) + z(student_test, student_oof)
        combined_oof = z(oof_profile, oof_profile) + z(student_oof, student_oof)
        threshold = float(np.quantile(combined_oof, 0.95))
        row = {"repeat": r, "n_fit": int(len(pick)), "profile_seconds": round(t_profile, 1),
               "student_seconds": round(t_student, 1),
               "profile": _point(y[test], prof_test, adapted.calibration.threshold),
               "student": _point(y[test], student_test, float(np.quantile(student_oof, 0.95))),
               "profile+student": _point(y[test], combined_test, threshold)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {k: {m: [round(float(np.mean([row[k][m] for row in rows])), 3), round(float(np.std([row[k][m] for row in rows])), 3)]
                   for m in ("auroc", "sensitivity", "specificity")} for k in ("profile", "student", "profile+student")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "site_student.json").write_text(json.dumps({"protocol": __doc__.split("\n\n")[1], "rows": rows,
                                                        "summary_mean_sd": summary}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
