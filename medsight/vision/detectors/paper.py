"""The source paper's detector: pool5 global-average features -> VAE -> ViT, fused score (sections 4.2-4.5)."""

from __future__ import annotations

import numpy as np
import torch

from medsight.vision.features import pool5_gap
from medsight.vision.detectors.base import Detector, register
from medsight.vision.scoring import PAPER_WEIGHTS, fused_score
from medsight.vision.vae import FeatureVAE, kl_divergence, reconstruction_error
from medsight.vision.vit import LatentViT


@register
class PaperDetector(Detector):
    kind = "paper_vae_vit"
    components = ("recon", "kl", "vit", "recon_kl", "fused")

    def __init__(self, name: str = "paper", config: dict | None = None):
        super().__init__(name, config)
        self.vae = FeatureVAE().eval()
        self.vit = LatentViT().eval()
        self.feature_mean = torch.zeros(512)
        self.feature_std = torch.ones(512)
        self.config.setdefault("weights", list(PAPER_WEIGHTS))
        self.config.setdefault("stats", {"recon_mean": 0.0, "recon_std": 1.0, "kl_mean": 0.0, "kl_std": 1.0})

    def standardise(self, feats: np.ndarray) -> torch.Tensor:
        return (torch.as_tensor(feats, dtype=torch.float32) - self.feature_mean) / self.feature_std

    @torch.no_grad()
    def raw(self, feats: np.ndarray) -> dict[str, np.ndarray]:
        """Paper signals from 512-d pool5 features: recon error, KL, ViT probability, latent mean."""
        self.vae.eval(), self.vit.eval()
        x = self.standardise(feats)
        mu, logvar = self.vae.encode(x)
        x_hat = self.vae.decode(mu)
        return {"recon": reconstruction_error(x_hat, x).numpy(), "kl": kl_divergence(mu, logvar).numpy(),
                "vit": self.vit(mu).numpy(), "z": mu.numpy()}

    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        return self.signals_from_features(pool5_gap(maps))

    def signals_from_features(self, feats: np.ndarray) -> dict[str, np.ndarray]:
        r = self.raw(feats)
        w1, w2, w3 = self.config["weights"]
        stats = self.config["stats"]
        fused = fused_score(r["recon"], r["kl"], r["vit"], stats, (w1, w2, w3))
        recon_kl = fused_score(r["recon"], r["kl"], np.zeros_like(r["vit"]), stats, (w1, w2, 0.0)) / (w1 + w2)
        return {"recon": r["recon"], "kl": r["kl"], "vit": r["vit"], "recon_kl": recon_kl, "fused": fused, "score": fused}

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable fused score from backbone taps (for Grad-CAM)."""
        f = torch.nn.functional.max_pool2d(taps["relu5_3"], 2).mean(dim=(2, 3))
        x = (f - self.feature_mean.to(f.device)) / self.feature_std.to(f.device)
        mu, logvar = self.vae.encode(x)
        recon = (self.vae.decode(mu) - x).pow(2).mean(-1)
        kl = kl_divergence(mu, logvar)
        st, (w1, w2, w3) = self.config["stats"], self.config["weights"]
        return (w1 * torch.sigmoid((recon - st["recon_mean"]) / st["recon_std"])
                + w2 * torch.sigmoid((kl - st["kl_mean"]) / st["kl_std"]) + w3 * self.vit(mu))

    @torch.no_grad()
    def latent_attention(self, maps: np.ndarray) -> np.ndarray:
        """[CLS] attention over the 8 latent patches (N x 8); the patches have no spatial layout."""
        x = self.standardise(pool5_gap(maps))
        mu, _ = self.vae.encode(x)
        return self.vit.cls_attention(mu).numpy()

    def tensors(self) -> dict[str, torch.Tensor]:
        t = {f"vae.{k}": v for k, v in self.vae.state_dict().items()}
        t.update({f"vit.{k}": v for k, v in self.vit.state_dict().items()})
        t["feature_mean"], t["feature_std"] = self.feature_mean, self.feature_std
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.vae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vae.")})
        self.vit.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vit.")})
        self.feature_mean, self.feature_std = tensors["feature_mean"], tensors["feature_std"]
        self.vae.eval(), self.vit.eval()
