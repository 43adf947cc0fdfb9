"""Calibration from normal images only: the paper's fused score (4.5), decision threshold and risk bands."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

PAPER_WEIGHTS = (0.4, 0.2, 0.4)  # recon, KL, ViT
PAPER_THRESHOLD = 0.348  # the paper's operating point on its own test set (not ours; documented, not used)
SPECIFICITY_TARGET = 0.95
MEDIUM_QUANTILE = 0.80


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def fused_score(recon, kl, vit, stats: dict, weights=PAPER_WEIGHTS) -> np.ndarray:
    """S = w1*sig((e_recon - mu_r)/s_r) + w2*sig((d_KL - mu_KL)/s_KL) + w3*s_ViT (paper eq. 4.5)."""
    w1, w2, w3 = weights
    r = sigmoid((np.asarray(recon) - stats["recon_mean"]) / stats["recon_std"])
    k = sigmoid((np.asarray(kl) - stats["kl_mean"]) / stats["kl_std"])
    return w1 * r + w2 * k + w3 * np.asarray(vit, dtype=np.float64)


@dataclass
class Calibration:
    """Operating points set from held-out normal images only.

    threshold: the score above which an image is flagged (the SPECIFICITY_TARGET quantile of held-out normals);
    medium: the MEDIUM_QUANTILE quantile (LOW below it, MEDIUM up to the threshold, HIGH at or above it);
    normal_scores: a sorted sample of held-out normal scores, to place a new image among normals."""

    threshold: float
    medium: float
    normal_scores: list[float] = field(repr=False)
    n_normals: int = 0
    specificity_target: float = SPECIFICITY_TARGET

    @classmethod
    def from_normal_scores(cls, scores, specificity: float = SPECIFICITY_TARGET) -> "Calibration":
        s = np.sort(np.asarray(scores, dtype=np.float64))
        keep = s if len(s) <= 2000 else s[np.linspace(0, len(s) - 1, 2000).round().astype(int)]
        return cls(float(np.quantile(s, specificity)), float(np.quantile(s, MEDIUM_QUANTILE)),
                   [float(v) for v in keep], int(len(s)), specificity)

    def risk_band(self, score: float) -> str:
        if score >= self.threshold:
            return "HIGH"
        return "MEDIUM" if score >= self.medium else "LOW"

    def normal_percentile(self, score: float) -> float:
        """Share of held-out normal images (in %) scoring below this one."""
        return float(100.0 * np.searchsorted(self.normal_scores, score, side="left") / max(len(self.normal_scores), 1))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(**d)
