"""The paper's future-work idea "multi-scale latent analysis" (section 8.2), measured: one small VAE per VGG16
block (relu3_3, relu4_3, relu5_3, each globally pooled, log-compressed and standardised on the fitting normals)
instead of one VAE on pool5. Each VAE is trained on normal radiographs only; an image's score is the sum of its
per-block reconstruction errors as z-scores of the held-out normals (so weights and threshold come from normal data).
The VAEs also see augmented views of the fitting normals (resampling, JPEG, gamma, rotation): without them a
resampled film scored 5.1 normal IQRs higher than the original and 42% of flags flipped (`medsight evaluate`'s
stability metric).

Hyperparameters (hidden 512-256, latent 64, 40 epochs, AdamW 1e-3, beta 1e-3) are ours, not the paper's: they were
set on a probe (`docs/vision_extras.md`, section 4), where the same VAEs with a cosine ("perceptual")
reconstruction loss instead of MSE lost the dev tasks and are not shipped.
"""

from __future__ import annotations

import numpy as np
import torch

from medsight.vision.features import LAYERS
from medsight.vision.detectors.base import Detector, register
from medsight.vision.detectors.knn import pooled_region
from medsight.vision.scoring import Calibration
from medsight.vision.vae import FeatureVAE, kl_divergence, reconstruction_error

CAM_LAYERS = {"relu3_3": 14, "relu4_3": 21, "relu5_3": 28}  # VGG16 `features` index of each block's last conv


def pooled_log(maps: np.ndarray, layer: str) -> np.ndarray:
    """log(1 + global average of one layer's ReLU map), N x C (the 14x14 grid average equals the full-map average)."""
    return np.log1p(pooled_region(maps, layer, None))


@register
class MultiScaleVAE(Detector):
    kind = "multiscale_vae"

    def __init__(self, name: str = "paper_multiscale", config: dict | None = None):
        super().__init__(name, config)
        c = self.config
        c.setdefault("layers", list(LAYERS))
        c.setdefault("hidden", [512, 256])
        c.setdefault("latent", 64)
        c.setdefault("dropout", 0.1)
        c.setdefault("epochs", 40)
        c.setdefault("lr", 1e-3)
        c.setdefault("beta", 1e-3)
        c.setdefault("batch", 128)
        c.setdefault("seed", 0)
        #: also train on the augmented views of fitting normals (resampled, re-encoded, re-windowed, rotated)
        c.setdefault("train_augmented", True)
        c.setdefault("z", [[0.0, 1.0] for _ in c["layers"]])
        self.components = tuple(f"recon_{layer}" for layer in c["layers"])
        self.cam_layer = max(CAM_LAYERS[layer] for layer in c["layers"])
        self.vaes: list[FeatureVAE] = []
        self.stats: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer: mean, std of the log-pooled features

    def _new_vae(self, dim: int) -> FeatureVAE:
        c = self.config
        return FeatureVAE(dim, tuple(c["hidden"]), c["latent"], c["dropout"]).eval()

    def _errors(self, x: torch.Tensor, j: int) -> torch.Tensor:
        mu, sd = self.stats[j]
        x = (x - mu) / sd
        x_hat, _, _, _ = self.vaes[j](x)  # eval mode: the decoder reads the posterior mean
        return reconstruction_error(x_hat, x)

    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        out, total = {}, 0.0
        with torch.no_grad():
            for j, (layer, name) in enumerate(zip(self.config["layers"], self.components)):
                e = self._errors(torch.from_numpy(pooled_log(maps, layer)), j).numpy()
                out[name] = e
                mu, sd = self.config["z"][j]
                total = total + (e - mu) / sd
        out["score"] = np.asarray(total / np.sqrt(len(self.components)), dtype=np.float32)
        return out

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable score from backbone taps (for Grad-CAM)."""
        total = 0.0
        for j, layer in enumerate(self.config["layers"]):
            x = torch.log1p(taps[layer].float().mean(dim=(2, 3)))
            mu, sd = self.config["z"][j]
            total = total + (self._errors(x, j) - mu) / sd
        return total / np.sqrt(len(self.components))

    @classmethod
    def fit(cls, fit_maps: np.ndarray, holdout_maps: np.ndarray, name: str = "paper_multiscale", aug_maps=None, log=print,
            **config) -> "MultiScaleVAE":
        det = cls(name, config)
        c = det.config
        torch.manual_seed(c["seed"])
        use_aug = c["train_augmented"] and aug_maps is not None and len(aug_maps)
        for j, layer in enumerate(c["layers"]):
            x = torch.from_numpy(pooled_log(fit_maps, layer))
            if use_aug:
                x = torch.cat([x, torch.from_numpy(pooled_log(aug_maps, layer))])
            mu, sd = x.mean(0), x.std(0) + 1e-6
            det.stats.append((mu, sd))
            vae = det._new_vae(x.shape[1]).train()
            opt = torch.optim.AdamW(vae.parameters(), lr=c["lr"], weight_decay=1e-4)
            xs = (x - mu) / sd
            for epoch in range(c["epochs"]):
                perm, total = torch.randperm(len(xs)), 0.0
                for i in range(0, len(xs), c["batch"]):
                    batch = xs[perm[i : i + c["batch"]]]
                    x_hat, m, logvar, _ = vae(batch)
                    loss = reconstruction_error(x_hat, batch).mean() + c["beta"] * kl_divergence(m, logvar).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach()) * len(batch)
                if (epoch + 1) % 10 == 0:
                    log(f"[{name}] {layer} epoch {epoch + 1}/{c['epochs']} loss {total / len(xs):.4f}")
            det.vaes.append(vae.eval())
            with torch.no_grad():
                e = det._errors(torch.from_numpy(pooled_log(holdout_maps, layer)), j).numpy()
            c["z"][j] = [float(e.mean()), float(e.std() + 1e-8)]
        det.calibration = Calibration.from_normal_scores(det.signals(holdout_maps)["score"])
        log(f"[{name}] {len(det.vaes)} VAEs ({sum(p.numel() for v in det.vaes for p in v.parameters()):,} parameters), "
            f"threshold {det.calibration.threshold:.4f}")
        return det

    def tensors(self) -> dict[str, torch.Tensor]:
        t = {}
        for layer, vae, (mu, sd) in zip(self.config["layers"], self.vaes, self.stats):
            t[f"{layer}.mean"], t[f"{layer}.std"] = mu, sd
            t.update({f"{layer}.vae.{k}": v for k, v in vae.state_dict().items()})
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.vaes, self.stats = [], []
        for layer in self.config["layers"]:
            mu, sd = tensors[f"{layer}.mean"], tensors[f"{layer}.std"]
            vae = self._new_vae(mu.numel())
            prefix = f"{layer}.vae."
            vae.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            self.vaes.append(vae.eval())
            self.stats.append((mu, sd))
