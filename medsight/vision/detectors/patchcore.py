"""Patch-level memory bank in the PatchCore manner (Roth et al., CVPR 2022), adapted to radiographs.

Locally aware patch features (3x3 neighbourhood average of chosen backbone layers on the 14x14 grid) from
training normals form a memory bank, reduced by greedy k-center coreset selection. An image's anomaly map is
each patch's distance to its nearest bank patch; its score is the mean of the top few patch distances inside
the lung-field region (image borders, where markers, text and collimation sit, are excluded).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch
import torch.nn.functional as F

from medsight.vision.features import GRID, LAYERS
from medsight.vision.detectors.base import Detector, register
from medsight.vision.scoring import Calibration

#: per thread: (detector, maps, distances) of the thread's last `patch_distances` call, both weakly referenced
_LAST = threading.local()


def region_mask(grid: int = GRID, top: int = 2, bottom: int = 1, side: int = 1) -> np.ndarray:
    m = np.zeros((grid, grid), dtype=bool)
    m[top : grid - bottom, side : grid - side] = True
    return m


def greedy_coreset(x: torch.Tensor, n: int, proj_dim: int = 128, seed: int = 0) -> np.ndarray:
    """Indices of an approximately minimax-covering subset (greedy k-center on a random projection)."""
    g = torch.Generator().manual_seed(seed)
    if x.shape[1] > proj_dim:
        x = x @ (torch.randn(x.shape[1], proj_dim, generator=g) / proj_dim ** 0.5)
    n = min(n, len(x))
    sq = (x * x).sum(1)  # squared distances as |x|^2 - 2 x.c + |c|^2: one matrix-vector product per step
    i = int(torch.randint(len(x), (1,), generator=g))
    idx = [i]
    dist = sq - 2 * (x @ x[i]) + sq[i]
    for _ in range(n - 1):
        i = int(torch.argmax(dist))
        idx.append(i)
        dist = torch.minimum(dist, sq - 2 * (x @ x[i]) + sq[i])
    return np.array(idx)


@register
class PatchCore(Detector):
    kind = "patchcore"
    components = ("max_patch_distance", "mean_patch_distance")
    has_anomaly_map = True
    cam_layer = 21

    def __init__(self, name: str = "patchcore", config: dict | None = None):
        super().__init__(name, config)
        self.config.setdefault("layers", ["relu3_3", "relu4_3"])
        self.config.setdefault("region", {"top": 2, "bottom": 1, "side": 1})
        self.config.setdefault("top_k", 3)
        self.bank = torch.zeros((0, 1))

    def patch_features(self, maps: np.ndarray | torch.Tensor) -> torch.Tensor:
        """N x 14 x 14 x D locally aware, L2-normalised patch features."""
        t = torch.as_tensor(np.asarray(maps, dtype=np.float32)) if not torch.is_tensor(maps) else maps.float()
        parts = []
        for name in self.config["layers"]:
            lo, hi = LAYERS[name]
            f = F.avg_pool2d(t[:, lo:hi], 3, stride=1, padding=1, count_include_pad=False)
            parts.append(F.normalize(f, dim=1))
        return F.normalize(torch.cat(parts, dim=1), dim=1).permute(0, 2, 3, 1)

    def patch_distances(self, maps: np.ndarray) -> torch.Tensor:
        # Scoring and the anomaly map of one image read the same maps: compute their distances once. The memo is
        # the thread's own, so sessions scoring at once (one detector, one thread each) never evict each other's.
        last = getattr(_LAST, "value", None)
        if last is not None and last[0]() is self and last[1]() is maps:
            return last[2]
        d = self._patch_distances(maps)
        try:
            _LAST.value = (weakref.ref(self), weakref.ref(maps), d)
        except TypeError:  # not weak-referenceable (e.g. a memmap slice subclass): no memo
            _LAST.value = None
        return d

    def _patch_distances(self, maps: np.ndarray) -> torch.Tensor:
        feats = self.patch_features(maps)
        n = feats.shape[0]
        flat = feats.reshape(-1, feats.shape[-1])
        d = torch.empty(len(flat))
        for i in range(0, len(flat), 4096):
            d[i : i + 4096] = torch.cdist(flat[i : i + 4096], self.bank).min(dim=1).values
        return d.reshape(n, GRID, GRID)

    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        d = self.patch_distances(maps)
        mask = torch.from_numpy(region_mask(**self.config["region"]))
        inside = d[:, mask]
        top = torch.topk(inside, self.config["top_k"], dim=1).values.mean(1)
        return {"max_patch_distance": top.numpy(), "mean_patch_distance": inside.mean(1).numpy(), "score": top.numpy()}

    def anomaly_map(self, maps: np.ndarray) -> np.ndarray:
        d = self.patch_distances(maps).numpy().copy()  # the cached distances stay untouched
        mask = region_mask(**self.config["region"])
        # borders are not scored: they take the lowest lung-field value, so a normalised map spans the lung field
        # (setting them to 0 would light the whole lung box up on a normal film)
        d[:, ~mask] = d[:, mask].min(axis=1)[:, None]
        return d

    def torch_signals(self, taps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable `signals()` from backbone taps (for Grad-CAM)."""
        maps = torch.cat([F.adaptive_avg_pool2d(taps[n], GRID) for n in LAYERS], dim=1)
        feats = self.patch_features(maps)
        mask = torch.from_numpy(region_mask(**self.config["region"]))
        inside = feats[:, mask]  # N x P x D
        d = torch.cdist(inside, self.bank[None].expand(inside.shape[0], -1, -1)).min(dim=2).values
        top = torch.topk(d, self.config["top_k"], dim=1).values.mean(1)
        return {"max_patch_distance": top, "mean_patch_distance": d.mean(1), "score": top}

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.torch_signals(taps)["score"]

    @classmethod
    def fit(cls, fit_maps: np.ndarray, holdout_maps: np.ndarray, name: str = "patchcore", aug_maps=None, log=print,
            bank_images: int = 1500, bank_size: int = 4000, seed: int = 0, **config):
        det = cls(name, config)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(fit_maps), min(bank_images, len(fit_maps)), replace=False))
        mask = torch.from_numpy(region_mask(**det.config["region"]))
        patches = []
        for i in range(0, len(pick), 256):
            f = det.patch_features(np.asarray(fit_maps[pick[i : i + 256]], dtype=np.float32))
            patches.append(f[:, mask].reshape(-1, f.shape[-1]))
        if aug_maps is not None and len(aug_maps):
            f = det.patch_features(np.asarray(aug_maps[: min(len(aug_maps), bank_images // 3)], dtype=np.float32))
            patches.append(f[:, mask].reshape(-1, f.shape[-1]))
        allp = torch.cat(patches)
        log(f"[{name}] coreset {bank_size} of {len(allp)} patches")
        det.bank = allp[torch.from_numpy(greedy_coreset(allp, bank_size, seed=seed))].contiguous()
        scores = np.concatenate([det.signals(holdout_maps[i : i + 256])["score"] for i in range(0, len(holdout_maps), 256)])
        det.calibration = Calibration.from_normal_scores(scores)
        log(f"[{name}] bank {tuple(det.bank.shape)}, threshold {det.calibration.threshold:.4f}")
        return det

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"bank": self.bank.half()}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.bank = tensors["bank"].float()
