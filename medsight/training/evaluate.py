"""`medsight evaluate`: score a manifest split with every trained detector and write metrics.json, plots and a
markdown report (paper section 6, extended with every detector)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medsight import config
from medsight.training.dataset import read_manifest
from medsight.training.features import cached_maps
from medsight.training.metrics import score_metrics
from medsight.training.workflow import _backbone_factory

PAPER_RESULTS = {"auroc": 0.718, "components": {"recon": 0.62, "kl": 0.68, "vit": 0.65, "recon_kl": 0.69, "fused": 0.718},
                 "sensitivity": 0.647, "specificity": 0.665, "threshold": 0.348,
                 "data": "COVID-19 Radiography Database: normal vs COVID / lung opacity / viral pneumonia (paper 6.3)"}


def evaluate_manifest(manifest: str | Path, out_dir: str | Path, split: str | None = "dev", detectors: list[str] | None = None,
                      weights_dir: str | Path | None = None, primary: str | None = None, plots: bool = True,
                      n_boot: int = 1000, limit: int | None = None, stability_n: int = 100, log=print, site=None) -> dict:
    """`site`: a site profile's name (or `SiteProfile`): every detector measured with the site's reference and
    calibration (`medsight.vision.sites`); metrics.json records which profile. None changes nothing."""
    from medsight.vision.detectors import available_detectors, load_detector
    from medsight.vision.pipeline import DEFAULT_DETECTOR

    weights_dir = Path(weights_dir or config.WEIGHTS_DIR)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = read_manifest(manifest, split)
    if limit:
        df = df.sample(n=min(limit, len(df)), random_state=0).reset_index(drop=True)
    names = detectors or available_detectors(weights_dir)
    if not names:
        raise FileNotFoundError(f"no trained detectors in {weights_dir}; run `medsight train` first")
    primary = primary or (DEFAULT_DETECTOR if DEFAULT_DETECTOR in names else names[0])
    profile = None
    if site is not None:
        from medsight.vision.sites import resolve

        profile = resolve(site)
    t0 = time.time()
    log(f"features: {len(df)} images of split {split!r}")
    maps = cached_maps(df["path"], _backbone_factory())
    results, scores, latents = {}, {}, None
    loaded = {}
    for name in names:
        det = loaded[name] = load_detector(weights_dir, name) if profile is None else profile.adapt(load_detector(weights_dir, name))
        sig = _signals_chunked(det, maps)
        comps = {k: sig[k] for k in det.components if k in sig}
        m = score_metrics(df, sig["score"], det.calibration.threshold if det.calibration else None, comps, n_boot)
        m["card"] = {"kind": det.kind, "trained_on": det.card.get("trained_on")}
        results[name], scores[name] = m, sig
        if det.kind == "paper_vae_vit" and plots:
            latents = (det, maps)
        log(f"{name}: AUROC {m['auroc']:.3f}")
    if stability_n:
        from medsight.training.stability import sample_for_stability, stability_of_files

        sub = sample_for_stability(df, stability_n)
        log(f"stability: {len(sub)} images x resample / JPEG / gamma / window")
        stab = stability_of_files(sub["path"], [loaded[n] for n in names], _backbone_factory())
        for n in names:
            results[n]["stability"] = stab[n]
    metrics = dict(results[primary])
    if profile is not None:
        metrics["site_profile"] = profile.summary()
    metrics.update({"split": split, "manifest": str(manifest), "primary_detector": primary, "detectors": results,
                    "paper_reference": PAPER_RESULTS, "seconds": round(time.time() - t0, 1)})
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    # per-image scores, keyed by row order within the split (no file names: results ship without the data)
    pd.DataFrame({"row": np.arange(len(df)), "label": df["label"], "is_normal": df["is_normal"], "source": df["source"], "age_group": df["age_group"],
                  **{f"score_{n}": s["score"] for n, s in scores.items()}}).to_csv(out_dir / "scores.csv", index=False)
    if plots:
        from medsight.training import plots as P

        P.roc_curves(df, scores, primary, out_dir / "roc.png")
        P.score_distributions(df, scores[primary]["score"], results[primary].get("confusion", {}).get("threshold"), primary, out_dir / "score_distributions.png")
        if "confusion" in results[primary]:
            P.confusion_matrix(results[primary]["confusion"], primary, out_dir / "confusion_matrix.png")
        P.training_curves(weights_dir, out_dir / "training_curves.png")
        if latents is not None:
            P.latent_umap(df, *latents, out_dir / "latent_umap.png")
    (out_dir / "report.md").write_text(render_report(metrics))
    return metrics


def _signals_chunked(det, maps: np.ndarray, chunk: int = 256) -> dict[str, np.ndarray]:
    parts = [det.signals(np.asarray(maps[i : i + chunk], dtype=np.float32)) for i in range(0, len(maps), chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _fmt(v, ci=None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def ablation_table(metrics: dict) -> str:
    """Markdown: every detector (and the paper detector's components) with AUROC and its 95% CI."""
    rows = ["| detector / component | AUROC pooled [95% CI] | sens. @95% spec. | pediatric (normal vs viral+bacterial) | adult (normal vs COVID) | nih_talo (normal vs pneumonia) | paper |",
            "|---|---|---|---|---|---|---|"]
    for name, m in metrics["detectors"].items():
        ped = m["controlled"].get("pediatric_pneumonia", {})
        nih = m["controlled"].get("nih_talo_pneumonia", {})
        covid = m["controlled"].get("adult_covid", {})
        rows.append(f"| **{name}** | {_fmt(m['auroc'], m['auroc_ci95'])} | {_fmt(m['sensitivity_at_95_specificity'])} | "
                    f"{_fmt(ped.get('auroc'), ped.get('auroc_ci95'))} | {_fmt(covid.get('auroc'), covid.get('auroc_ci95'))} | "
                    f"{_fmt(nih.get('auroc'), nih.get('auroc_ci95'))} | {PAPER_RESULTS['auroc'] if m['card']['kind'] == 'paper_vae_vit' else ''} |")
        for comp, c in (m.get("components") or {}).items():
            if comp == "fused" or c["auroc"] is None:
                continue
            paper = PAPER_RESULTS["components"].get(comp, "") if m["card"]["kind"] == "paper_vae_vit" else ""
            rows.append(f"| &nbsp;&nbsp;{name}: {comp} only | {_fmt(c['auroc'])} | | | | | {paper} |")
    return "\n".join(rows)


def stability_table(metrics: dict) -> str:
    dets = {n: d["stability"] for n, d in metrics["detectors"].items() if "stability" in d}
    perts = list(next(iter(dets.values()))) if dets else []
    rows = ["| detector | " + " | ".join(perts) + " |", "|---|" + "---|" * len(perts)]
    for n, st in dets.items():
        rows.append(f"| {n} | " + " | ".join(f"{st[p]['median_abs_delta']:.2f} / {st[p]['flip_rate']:.2f}" for p in perts) + " |")
    return "\n".join(rows)


def render_report(metrics: dict) -> str:
    p = metrics["primary_detector"]
    m = metrics["detectors"][p]
    lines = [f"# MedSight evaluation: split `{metrics['split']}`", "",
             f"Manifest `{metrics['manifest']}`, {m['n']} images ({m['n_normal']} normal, {m['n_abnormal']} abnormal). "
             f"Primary detector: `{p}`. Generated by `medsight evaluate`.", "",
             *([f"Site profile `{metrics['site_profile']['name']}` ({metrics['site_profile']['n_films']} normal films, "
                f"{metrics['site_profile']['source']}, {metrics['site_profile']['created']}): the detectors' reference and "
                "thresholds come from the site's normals.", ""] if metrics.get("site_profile") else []),
             "## Detectors and ablation (paper 6.6, extended)", "", ablation_table(metrics), "",
             f"The paper's numbers come from different data ({PAPER_RESULTS['data']}); they are shown for orientation, not as a like-for-like comparison.",
             "", f"## Primary detector `{p}`", "", "| label | AUROC vs normals [95% CI] | n |", "|---|---|---|"]
    for label, v in m["per_label"].items():
        lines.append(f"| {label} | {_fmt(v['auroc'], v.get('auroc_ci95'))} | {v['n_abnormal']} |")
    lines += ["", "| group | AUROC (normal vs abnormal within group) | normals | abnormal |", "|---|---|---|---|"]
    for key in ("by_age", "by_source"):
        for g, v in m[key].items():
            lines.append(f"| {key[3:]}={g} | {_fmt(v['auroc'], v.get('auroc_ci95'))} | {v['n_normal']} | {v['n_abnormal']} |")
    c = m.get("confusion")
    if c:
        lines += ["", f"At the stored threshold {c['threshold']:.4f} (95th percentile of held-out training normals): "
                  f"TP {c['tp']}, FP {c['fp']}, TN {c['tn']}, FN {c['fn']}; sensitivity {c['sensitivity']:.3f}, "
                  f"specificity {c['specificity']:.3f}. Paper at its threshold 0.348: sensitivity 0.647, specificity 0.665."]
    if any("stability" in d for d in metrics["detectors"].values()):
        lines += ["", "## Stability (same image, different acquisition chain)", "",
                  "Median |score change| in units of the IQR of held-out normal scores / share of flag flips at the stored threshold.", "",
                  stability_table(metrics)]
    lines += ["", "Plots: `roc.png`, `score_distributions.png`, `confusion_matrix.png`, `training_curves.png`, `latent_umap.png`."]
    return "\n".join(lines) + "\n"
