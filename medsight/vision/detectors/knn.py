"""Feature-space k-nearest-neighbour detector: cosine distance from an image's globally pooled backbone features
to its k nearest training normals (a memory bank). Layers are configurable; relu4_3 is the default."""

from __future__ import annotations

import numpy as np
import torch

from medsight.training.features import pooled
from medsight.vision.detectors.base import Detector, register
from medsight.vision.scoring import Calibration


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


@register
class PooledKNN(Detector):
    kind = "pooled_knn"
    components = ("knn_distance",)
    cam_layer = 21  # conv4_3 (relu4_3 is the default layer)

    def __init__(self, name: str = "knn", config: dict | None = None):
        super().__init__(name, config)
        self.config.setdefault("layers", ["relu4_3"])
        self.config.setdefault("k", 5)
        self.bank = np.zeros((0, 1), dtype=np.float32)

    def embed(self, maps: np.ndarray) -> np.ndarray:
        parts = [_normalise(pooled(maps, layer)) for layer in self.config["layers"]]
        return _normalise(np.concatenate(parts, axis=1))

    def distances(self, emb: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        k = self.config["k"]
        out = np.empty(len(emb), dtype=np.float32)
        bank = torch.from_numpy(self.bank)
        for i in range(0, len(emb), 512):
            sim = torch.from_numpy(emb[i : i + 512]) @ bank.T
            top = torch.topk(sim, k + int(exclude_self), dim=1).values[:, int(exclude_self):]
            out[i : i + 512] = (1 - top).mean(1).numpy()
        return out

    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        d = self.distances(self.embed(maps))
        return {"knn_distance": d, "score": d}

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable k-NN distance from backbone taps (for Grad-CAM)."""
        parts = [torch.nn.functional.normalize(taps[layer].mean(dim=(2, 3)), dim=1) for layer in self.config["layers"]]
        emb = torch.nn.functional.normalize(torch.cat(parts, dim=1), dim=1)
        sim = emb @ torch.from_numpy(self.bank).to(emb.device).T
        return (1 - torch.topk(sim, self.config["k"], dim=1).values).mean(1)

    @classmethod
    def fit(cls, fit_maps: np.ndarray, holdout_maps: np.ndarray, name: str = "knn", aug_maps=None, log=print, **config):
        det = cls(name, config)
        det.bank = np.concatenate([det.embed(fit_maps[i : i + 512].astype(np.float32)) for i in range(0, len(fit_maps), 512)])
        det.calibration = Calibration.from_normal_scores(det.signals(holdout_maps.astype(np.float32))["score"])
        log(f"[{name}] memory bank {det.bank.shape}, threshold {det.calibration.threshold:.4f}")
        return det

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"bank": torch.from_numpy(self.bank.astype(np.float16))}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.bank = tensors["bank"].float().numpy()
