"""Evaluation figures (matplotlib, headless): ROC curves, score distributions, confusion matrix, training
curves, UMAP of the paper VAE's latent space (paper 6.5)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def roc_curves(df: pd.DataFrame, scores: dict, primary: str, path: Path) -> None:
    y = 1 - df["is_normal"].to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for name, sig in scores.items():
        fpr, tpr, _ = roc_curve(y, sig["score"])
        axes[0].plot(fpr, tpr, label=name)
    axes[0].set_title("Pooled ROC: normal vs all abnormal, every detector")
    normal = df["is_normal"].to_numpy() == 1
    for label in sorted(df.loc[~normal, "label"].unique()):
        m = normal | (df["label"].to_numpy() == label)
        fpr, tpr, _ = roc_curve(y[m], scores[primary]["score"][m])
        axes[1].plot(fpr, tpr, label=label)
    axes[1].set_title(f"ROC per label ({primary})")
    for ax in axes:
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def score_distributions(df: pd.DataFrame, score: np.ndarray, threshold: float | None, name: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    bins = np.linspace(np.quantile(score, 0.001), np.quantile(score, 0.999), 60)
    for label in sorted(df["label"].unique()):
        ax.hist(score[df["label"].to_numpy() == label], bins=bins, alpha=0.45, density=True, label=label)
    if threshold is not None:
        ax.axvline(threshold, color="k", ls="--", label=f"threshold {threshold:.3f}")
    ax.set_title(f"Score distribution per label ({name})")
    ax.set_xlabel("anomaly score")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(conf: dict, name: str, path: Path) -> None:
    mat = np.array([[conf["tn"], conf["fp"]], [conf["fn"], conf["tp"]]])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(mat, cmap="Blues")
    for (i, j), v in np.ndenumerate(mat):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], ["pred. normal", "pred. anomaly"])
    ax.set_yticks([0, 1], ["normal", "abnormal"])
    ax.set_title(f"{name} at threshold {conf['threshold']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_curves(weights_dir: Path, path: Path) -> None:
    meta = Path(weights_dir) / "paper.json"
    if not meta.exists():
        return
    hist = json.loads(meta.read_text()).get("card", {}).get("history")
    if not hist:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "vae", "VAE ELBO (standardised features)"), (axes[1], "vit", "ViT BCE: normals vs synthetic")):
        h = hist[key]
        ax.plot(h["train_loss"], label="train")
        ax.plot(h["val_loss"], label="held-out")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def latent_umap(df: pd.DataFrame, det, maps: np.ndarray, path: Path, max_points: int = 3000) -> None:
    import umap

    from medsight.vision.features import pool5_gap

    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(df), min(max_points, len(df)), replace=False))
    z = det.raw(pool5_gap(np.asarray(maps[idx], dtype=np.float32)))["z"]
    emb = umap.UMAP(n_neighbors=15, min_dist=0.1, random_state=0).fit_transform(z)
    labels = df["label"].to_numpy()[idx]
    fig, ax = plt.subplots(figsize=(7, 6))
    for label in sorted(set(labels)):
        m = labels == label
        ax.scatter(emb[m, 0], emb[m, 1], s=4, alpha=0.6, label=label)
    ax.set_title("UMAP of the paper VAE's latent mean (dev sample)")
    ax.legend(markerscale=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
