"""Student-teacher head trained on a site's normal films (issue 13); it lives inside a site profile.

A small convolutional student predicts the frozen VGG16 relu4_3 map (the teacher) from the relu3_3 map on the 14x14
grid, trained on normal films only. Where a film departs from what those normals taught, the prediction fails: a
film's anomaly is the mean squared regression error over the lung field, each position in units of its mean error on
the training normals. On the site's own normals it is the best single signal measured (dev NIH, docs/sites.md), so a
site profile adds it to the default fusion as one more z-scored part.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medsight.vision.detectors.base import Detector, register
from medsight.vision.detectors.patchcore import region_mask
from medsight.vision.features import LAYERS, maps_from_taps

IN_LAYER, OUT_LAYER = "relu3_3", "relu4_3"


class FeatureStudent(nn.Module):
    """relu3_3 -> relu4_3 regressor on the 14x14 grid (inputs and targets log1p, per-channel standardised)."""

    def __init__(self, hidden: int = 128, seed: int = 0):
        super().__init__()
        c_in = LAYERS[IN_LAYER][1] - LAYERS[IN_LAYER][0]
        c_out = LAYERS[OUT_LAYER][1] - LAYERS[OUT_LAYER][0]
        with torch.random.fork_rng():  # seeded weights without resetting the process's generator (shared by sessions)
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.GELU(),
                                     nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, c_out, 1))
        for name in ("in_mean", "in_std", "out_mean", "out_std", "err_mean"):
            self.register_buffer(name, torch.zeros(0))

    @staticmethod
    def split(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log1p relu3_3, log1p relu4_3) of N x 1280 x 14 x 14 feature maps."""
        (a0, a1), (b0, b1) = LAYERS[IN_LAYER], LAYERS[OUT_LAYER]
        return torch.log1p(maps[:, a0:a1]), torch.log1p(maps[:, b0:b1])

    def errors(self, maps: torch.Tensor) -> torch.Tensor:
        """N x 14 x 14 squared regression error (differentiable in `maps`)."""
        x, y = self.split(maps)
        pred = self.net((x - self.in_mean) / self.in_std)
        return ((pred - (y - self.out_mean) / self.out_std) ** 2).mean(dim=1)

    def fit(self, maps: np.ndarray, epochs: int = 30, batch: int = 16, lr: float = 1e-3, progress=None):
        x, y = self.split(torch.as_tensor(np.asarray(maps, dtype=np.float32)))
        self.in_mean, self.in_std = x.mean((0, 2, 3), keepdim=True)[0], x.std((0, 2, 3), keepdim=True)[0] + 1e-6
        self.out_mean, self.out_std = y.mean((0, 2, 3), keepdim=True)[0], y.std((0, 2, 3), keepdim=True)[0] + 1e-6
        xs, ys = (x - self.in_mean) / self.in_std, (y - self.out_mean) / self.out_std
        opt = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        g = torch.Generator().manual_seed(0)
        self.train()
        for epoch in range(epochs):
            order = torch.randperm(len(xs), generator=g)
            for start in range(0, len(xs), batch):
                idx = order[start:start + batch]
                loss = ((self.net(xs[idx]) - ys[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
            if progress:
                progress((epoch + 1) / epochs)
        self.eval()
        with torch.no_grad():
            self.err_mean = torch.cat([self.errors(torch.as_tensor(np.asarray(maps[i:i + 64], dtype=np.float32)))
                                       for i in range(0, len(maps), 64)]).mean(0) + 1e-6
        return self


@register
class StudentDetector(Detector):
    """A fitted `FeatureStudent` as a detector part: score = mean relative error over the lung field."""

    kind = "student"
    cam_layer = 21  # conv4_3: the teacher's layer

    def __init__(self, name: str = "site_student", config: dict | None = None):
        super().__init__(name, config)
        self.config.setdefault("hidden", 128)
        self.config.setdefault("region", {})
        self.net = FeatureStudent(self.config["hidden"])

    def _score(self, err: torch.Tensor) -> torch.Tensor:
        mask = torch.from_numpy(region_mask(**self.config["region"]))
        return (err / self.net.err_mean)[:, mask].mean(dim=1)

    @torch.no_grad()
    def signals(self, maps: np.ndarray) -> dict[str, np.ndarray]:
        err = torch.cat([self.net.errors(torch.as_tensor(np.asarray(maps[i:i + 64], dtype=np.float32)))
                         for i in range(0, len(maps), 64)])
        return {"score": self._score(err).double().numpy()}

    def torch_signals(self, taps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable `signals()` from backbone taps (for Grad-CAM)."""
        return {"score": self._score(self.net.errors(maps_from_taps(taps)))}

    def torch_score(self, taps: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.torch_signals(taps)["score"]

    @classmethod
    def fit(cls, fit_maps: np.ndarray, name: str = "site_student", epochs: int = 30, progress=None, **config):
        det = cls(name, config)
        det.net.fit(fit_maps, epochs=epochs, progress=progress)
        return det

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().contiguous() for k, v in self.net.state_dict().items()}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        state = {k: v.float() for k, v in tensors.items()}
        for name, _ in list(self.net.named_buffers()):  # sized by the fit: take the stored shapes first
            setattr(self.net, name, state[name])
        self.net.load_state_dict(state)
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
