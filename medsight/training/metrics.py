"""Evaluation metrics (scikit-learn) for a score where higher = more anomalous and `is_normal == 0` is positive."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, s))


def bootstrap_ci(y: np.ndarray, s: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> list[float] | None:
    """Percentile bootstrap CI of AUROC, resampling positives and negatives separately (stratified)."""
    y, s = np.asarray(y), np.asarray(s)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return None
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        vals.append(roc_auc_score(y[idx], s[idx]))
    return [float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))]


def sensitivity_at_specificity(y: np.ndarray, s: np.ndarray, specificity: float = 0.95) -> float | None:
    """Highest sensitivity on the ROC curve among points with specificity >= target."""
    if len(np.unique(y)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= 1 - specificity + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def confusion_at(y: np.ndarray, s: np.ndarray, threshold: float) -> dict:
    y, pred = np.asarray(y).astype(int), (np.asarray(s) >= threshold).astype(int)
    tp, fp = int(((pred == 1) & (y == 1)).sum()), int(((pred == 1) & (y == 0)).sum())
    tn, fn = int(((pred == 0) & (y == 0)).sum()), int(((pred == 0) & (y == 1)).sum())
    return {"threshold": float(threshold), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1)}


def _subgroup(df: pd.DataFrame, s: np.ndarray, mask: np.ndarray) -> dict | None:
    y = 1 - df["is_normal"].to_numpy()[mask]
    a = auroc(y, s[mask])
    if a is None:
        return None
    return {"auroc": a, "n_normal": int((y == 0).sum()), "n_abnormal": int((y == 1).sum())}


def score_metrics(df: pd.DataFrame, scores: np.ndarray, threshold: float | None = None, components: dict | None = None,
                  n_boot: int = 1000) -> dict:
    """All metrics for one detector on one manifest split (see `medsight evaluate`)."""
    s = np.asarray(scores, dtype=np.float64)
    y = 1 - df["is_normal"].to_numpy()
    normal = y == 0
    out = {"n": int(len(df)), "n_normal": int(normal.sum()), "n_abnormal": int((~normal).sum()),
           "auroc": auroc(y, s), "auroc_ci95": bootstrap_ci(y, s, n_boot),
           "auprc": float(average_precision_score(y, s)) if len(np.unique(y)) > 1 else None,
           "sensitivity_at_95_specificity": sensitivity_at_specificity(y, s, 0.95)}
    out["per_label"] = {}
    for label in sorted(df.loc[~normal, "label"].unique()):
        m = normal | (df["label"].to_numpy() == label)
        sub = _subgroup(df, s, m)
        if sub:
            sub["auroc_ci95"] = bootstrap_ci(y[m], s[m], n_boot // 4)
            out["per_label"][label] = sub
    for col, key in (("age_group", "by_age"), ("source", "by_source")):
        out[key] = {}
        for value in sorted(df[col].astype(str).unique()):
            m = df[col].astype(str).to_numpy() == value
            sub = _subgroup(df, s, m)
            if sub:
                sub["auroc_ci95"] = bootstrap_ci(y[m], s[m], n_boot // 4)
                out[key][value] = sub
    out["controlled"] = controlled_comparisons(df, s, n_boot // 4)
    if components:
        out["components"] = {k: {"auroc": auroc(y, v)} for k, v in components.items()}
    if threshold is not None:
        out["confusion"] = confusion_at(y, s, threshold)
    return out


#: comparisons that hold age and hospital fixed (see the data README's confounders)
CONTROLLED = {
    "pediatric_pneumonia": ("age_group", "pediatric", ("viral_pneumonia", "bacterial_pneumonia")),
    "adult_covid": ("age_group", "adult", ("covid",)),
    "nih_talo_pneumonia": ("source", "nih_talo", ("pneumonia",)),
}


def controlled_comparisons(df: pd.DataFrame, s: np.ndarray, n_boot: int = 250) -> dict:
    out = {}
    for key, (col, value, labels) in CONTROLLED.items():
        in_group = df[col].astype(str).to_numpy() == value
        m = in_group & ((df["is_normal"].to_numpy() == 1) | df["label"].isin(labels).to_numpy())
        sub = _subgroup(df, s, m)
        if sub:
            y = 1 - df["is_normal"].to_numpy()[m]
            sub["auroc_ci95"] = bootstrap_ci(y, s[m], n_boot)
            out[key] = sub
    return out
