"""How many films a site needs (issue 13): one source of a manifest split (dev `nih_talo` by default), its normals
split by patient into a fitting half and an evaluation half, repeatedly. For each size (25, 50, 100, all fitting
films) a profile is fitted on that many fitting films and the detector is measured on the evaluation half's
normals against all of the source's abnormal films: AUROC, and sensitivity and specificity at the profile's own
threshold. The row `none` is the shipped detector on the same films."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from medsight.vision.site_fit import fit_profile


def _point(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    from sklearn.metrics import roc_auc_score

    flag = s >= threshold
    return {"auroc": float(roc_auc_score(y, s)), "sensitivity": float(flag[y == 1].mean()),
            "specificity": float(1 - flag[y == 0].mean()), "threshold": float(threshold)}


def _split_patients(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over normals: True = fitting half (by patient)."""
    uniq = rng.permutation(np.unique(groups))
    fit = set(uniq[: len(uniq) // 2])
    return np.array([g in fit for g in groups])


def run_study(manifest, out_dir, split: str = "dev", source: str = "nih_talo", detector: str | None = None,
              sizes=("25", "50", "100", "all"), repeats: int = 5, weights_dir=None, method: dict | None = None,
              log=print) -> dict:
    from medsight.sites.fitting import _backbone, load_detectors
    from medsight.training.dataset import read_manifest
    from medsight.training.features import cached_maps
    from medsight.vision.detectors.catalog import DEFAULT_DETECTOR

    detector = detector or DEFAULT_DETECTOR
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = read_manifest(manifest, split)
    df = df[df["source"] == source].reset_index(drop=True)
    if df.empty:
        raise ValueError(f"no films of source {source!r} in split {split!r}")
    maps = np.asarray(cached_maps(df["path"], _backbone), dtype=np.float32)
    y = 1 - df["is_normal"].to_numpy()
    groups = np.array([g if isinstance(g, str) and g else f"#{i}" for i, g in enumerate(df.get("patient_id", [""] * len(df)).fillna(""))])
    normals, abnormal = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    det = load_detectors(weights_dir, [detector])[detector]
    shipped = _score(det, maps)
    rows = []
    for r in range(repeats):
        rng = np.random.default_rng(r)
        in_fit = _split_patients(groups[normals], rng)
        fit_pool, held = normals[in_fit], normals[~in_fit]
        test = np.concatenate([held, abnormal])
        rows.append({"repeat": r, "size": "none", "n_fit": 0, **_point(y[test], shipped[test], det.calibration.threshold)})
        for size in sizes:
            n = len(fit_pool) if size == "all" else int(size)
            if n > len(fit_pool):
                continue
            pick = np.sort(rng.choice(fit_pool, n, replace=False))
            t0 = time.time()
            profile = fit_profile(f"study{r}", maps[pick], df["file"].iloc[pick].tolist(), {detector: det},
                                  groups[pick].tolist(), source, method, before=False)
            adapted = profile.adapt(det)
            row = {"repeat": r, "size": size, "n_fit": int(n), "n_eval_normal": int(len(held)), "n_abnormal": int(len(abnormal)),
                   "fit_seconds": round(time.time() - t0, 1), **_point(y[test], _score(adapted, maps[test]), adapted.calibration.threshold)}
            rows.append(row)
            log(f"repeat {r} size {size} ({n} films): AUROC {row['auroc']:.3f}, sens {row['sensitivity']:.3f}, spec {row['specificity']:.3f}")
    summary = _summarise(rows)
    result = {"manifest": str(manifest), "split": split, "source": source, "detector": detector, "repeats": repeats,
              "method": profile.meta["method"] if rows else method, "rows": rows, "summary": summary,
              "table": _table(summary)}
    (out_dir / "site_study.json").write_text(json.dumps(result, indent=1))
    _plot(summary, detector, source, out_dir / "site_study.png")
    return result


def _score(det, maps: np.ndarray) -> np.ndarray:
    return np.concatenate([det.signals(maps[i : i + 64])["score"] for i in range(0, len(maps), 64)])


def _summarise(rows: list[dict]) -> list[dict]:
    out = []
    for size in dict.fromkeys(r["size"] for r in rows):
        sel = [r for r in rows if r["size"] == size]
        item = {"size": size, "n_fit": int(np.mean([r["n_fit"] for r in sel])), "repeats": len(sel)}
        for k in ("auroc", "sensitivity", "specificity"):
            v = np.array([r[k] for r in sel])
            item[k] = {"mean": float(v.mean()), "sd": float(v.std()), "min": float(v.min()), "max": float(v.max())}
        out.append(item)
    return out


def _table(summary: list[dict]) -> str:
    lines = ["| site films in profile | AUROC mean ± sd [min, max] | sensitivity at profile threshold | specificity at profile threshold |",
             "|---|---|---|---|"]
    for s in summary:
        label = "none (shipped detector)" if s["size"] == "none" else f"{s['n_fit']}" + (" (all fitting films)" if s["size"] == "all" else "")
        cells = [f"{s[k]['mean']:.3f} ± {s[k]['sd']:.3f} [{s[k]['min']:.3f}, {s[k]['max']:.3f}]" for k in ("auroc", "sensitivity", "specificity")]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(summary: list[dict], detector: str, source: str, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted = [s for s in summary if s["size"] != "none"]
    base = next((s for s in summary if s["size"] == "none"), None)
    x = [s["n_fit"] for s in fitted]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, colour in (("auroc", "C0"), ("sensitivity", "C1"), ("specificity", "C2")):
        ax.errorbar(x, [s[key]["mean"] for s in fitted], yerr=[s[key]["sd"] for s in fitted], marker="o", capsize=3,
                    color=colour, label=f"{key} (profile)")
        if base is not None:
            ax.axhline(base[key]["mean"], color=colour, linestyle=":", linewidth=1, label=f"{key} (no profile)")
    ax.set_xscale("log")
    ax.set_xticks(x, [str(v) for v in x])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("site normal films in the profile")
    ax.set_ylim(0, 1)
    ax.set_title(f"{detector} on {source}: held-out normals vs abnormal")
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
