"""Feature-space k-nearest-neighbour detectors on globally pooled backbone features.

Each *member* pools one layer over a region (the whole 14x14 grid, or a lung-field box that leaves out borders,
markers and collimation), L2-normalises, optionally centres on the training normals' mean (cosine of the
deviation from the typical normal, which downweights what all films of the training hospital share), and scores
an image by the mean cosine distance to its k nearest training normals. Several members are fused by summing
their z-scores, each standardised on held-out normals: weights and thresholds come from normal data only.
"""

from __future__ import annotations

import numpy as np
import torch

from medsight.vision.features import LAYERS
from medsight.vision.detectors.base import Detector, register
from medsight.vision.scoring import Calibration

LUNG_BOX = (3, 12, 2, 12)  # rows 3-11, columns 2-11 of the 14x14 grid


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def pooled_region(maps: np.ndarray, layer: str, region: list | tuple | None) -> np.ndarray:
    lo, hi = LAYERS[layer]
    out = []
    for i in range(0, len(maps), 512):
        f = np.asarray(maps[i : i + 512, lo:hi], dtype=np.float32)
        if region is not None:
            f = f[:, :, region[0] : region[1], region[2] : region[3]]
        out.append(f.mean(axis=(2, 3)))
    return np.concatenate(out) if out else np.zeros((0, hi - lo), np.float32)


@register
class PooledKNN(Detector):
    kind = "pooled_knn"
    cam_layer = 21  # conv4_3

    def __init__(self, name: str = "knn", config: dict | None = None):
        super().__init__(name, config)
        self.config.setdefault("members", [{"layer": "relu4_3", "region": None, "centred": False}])
        self.config.setdefault("k", 5)
        self.banks: list[np.ndarray] = []
        self.unit_banks: list[torch.Tensor] = []
        self.means: list[np.ndarray] = []
        self.config.setdefault("z", [[0.0, 1.0] for _ in self.config["members"]])
        self.components = tuple(self._member_name(m) for m in self.config["members"])
        if "relu3_3" in {m["layer"] for m in self.config["members"]} and len(self.config["members"]) == 1:
            self.cam_layer = 14

    @staticmethod
    def _member_name(m: dict) -> str:
        return f"{m['layer']}_{'lungs' if m.get('region') else 'full'}{'_centred' if m.get('centred') else ''}"

    def _embed(self, maps: np.ndarray, j: int) -> np.ndarray:
        m = self.config["members"][j]
        e = _normalise(pooled_region(maps, m["layer"], m.get("region")))
        return e - self.means[j] if m.get("centred") else e

    def _set_banks(self, banks: list[np.ndarray]) -> None:
        """Banks as stored (centred members are not unit length) and, once, their unit-length search copies."""
        self.banks = banks
        self.unit_banks = [torch.nn.functional.normalize(torch.from_numpy(b), dim=1) for b in banks]

    def _distances(self, emb: np.ndarray, b: torch.Tensor) -> np.ndarray:
        k = self.config["k"]
        q = torch.nn.functional.normalize(torch.from_numpy(emb), dim=1)
        out = np.empty(len(emb), dtype=np.float32)
        for i in range(0, len(emb), 1024):
            sim = q[i : i + 1024] @ b.T
            out[i : i + 1024] = (1 - torch.topk(sim, k, dim=1).values).mean(1).numpy()
        return out

    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        out, total = {}, 0.0
        for j, name in enumerate(self.components):
            d = self._distances(self._embed(maps, j), self.unit_banks[j])
            mu, sd = self.config["z"][j]
            out[name] = d
            total = total + (d - mu) / sd
        out["score"] = np.asarray(total / np.sqrt(len(self.components)), dtype=np.float32) if len(self.components) > 1 else out[self.components[0]]
        return out

    def torch_signals(self, taps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable per-member distances from backbone taps (for Grad-CAM)."""
        out = {}
        for j, m in enumerate(self.config["members"]):
            f = torch.nn.functional.adaptive_avg_pool2d(taps[m["layer"]], 14)
            r = m.get("region")
            if r is not None:
                f = f[:, :, r[0] : r[1], r[2] : r[3]]
            e = torch.nn.functional.normalize(f.mean(dim=(2, 3)), dim=1)
            if m.get("centred"):
                e = e - torch.from_numpy(self.means[j]).to(e.device)
            sim = torch.nn.functional.normalize(e, dim=1) @ self.unit_banks[j].to(e.device).T
            out[self.components[j]] = (1 - torch.topk(sim, self.config["k"], dim=1).values).mean(1)
        return out

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Differentiable version of `signals()['score']` (for Grad-CAM)."""
        sig = self.torch_signals(taps)
        if len(self.components) == 1:
            return sig[self.components[0]]
        total = sum((sig[name] - self.config["z"][j][0]) / self.config["z"][j][1] for j, name in enumerate(self.components))
        return total / np.sqrt(len(self.components))

    @classmethod
    def fit(cls, fit_maps: np.ndarray, holdout_maps: np.ndarray, name: str = "knn", aug_maps=None, log=print, **config):
        det = cls(name, config)
        n_bank = det.config.get("bank_images")
        if n_bank and n_bank < len(fit_maps):  # a random subset keeps the shipped file small
            fit_maps = fit_maps[np.sort(np.random.default_rng(0).choice(len(fit_maps), n_bank, replace=False))]
        use_aug = det.config.get("bank_augmented") and aug_maps is not None and len(aug_maps)
        banks = []
        for m in det.config["members"]:
            e = _normalise(pooled_region(fit_maps, m["layer"], m.get("region")))
            if use_aug:  # augmented views (flips, rotations, resampling, gamma, JPEG) of fitting normals join the bank
                e = np.concatenate([e, _normalise(pooled_region(aug_maps, m["layer"], m.get("region")))])
            mean = e.mean(0)
            det.means.append(mean.astype(np.float32))
            banks.append((e - mean if m.get("centred") else e).astype(np.float32))
        det._set_banks(banks)
        for j in range(len(banks)):
            d = det._distances(det._embed(holdout_maps, j), det.unit_banks[j])
            det.config["z"][j] = [float(d.mean()), float(d.std() + 1e-8)]
        det.calibration = Calibration.from_normal_scores(det.signals(holdout_maps)["score"])
        log(f"[{name}] {len(det.banks)} member(s), bank {det.banks[0].shape}, threshold {det.calibration.threshold:.4f}")
        return det

    def _base_key(self, j: int) -> str:
        m = self.config["members"][j]
        return f"base.{m['layer']}.{'-'.join(map(str, m['region'])) if m.get('region') else 'full'}"

    def tensors(self) -> dict[str, torch.Tensor]:
        """Members that pool the same layer over the same region share one stored bank (centring is re-applied)."""
        t = {}
        for j in range(len(self.banks)):
            base = self.banks[j] + self.means[j] if self.config["members"][j].get("centred") else self.banks[j]
            t.setdefault(self._base_key(j), torch.from_numpy(base.astype(np.float16)))
            t[f"mean{j}"] = torch.from_numpy(self.means[j])
        return t

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        n = len(self.config["members"])
        self.means = [tensors[f"mean{j}"].numpy() for j in range(n)]
        banks = []
        for j in range(n):
            base = tensors[self._base_key(j)].float().numpy()
            banks.append(base - self.means[j] if self.config["members"][j].get("centred") else base)
        self._set_banks(banks)
