"""Trained heads on the frozen patch features, fitted on normal films only (issue 13).

- `PatchFlow`: a normalising flow over the lung-field patch features (CFlow/FastFlow style, without the image
  backbone): the PatchCore patch features (locally averaged relu3_3 + relu4_3, L2-normalised) reduced by a whitening
  PCA fitted on the normals, then affine coupling blocks conditioned on a learned embedding of the patch position.
  Trained by maximum likelihood; a patch's anomaly is its negative log-likelihood, a film's the mean over the lung
  field (or the mean of its highest `top` patches).
- `FeatureStudent`: a student-teacher feature regressor: a small convolutional net that predicts the frozen relu4_3
  map from the relu3_3 map of normal films; a film's anomaly is the mean squared regression error over the lung
  field, in units of the normals' own per-position error.

Both are small (a few hundred thousand parameters) and train in seconds to a minute on a CPU from a site's normal
films. They are measured against the site profile's PatchCore bank in docs/sites.md (`scripts/site_heads_probe.py`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medsight.vision.features import LAYERS


class _Coupling(nn.Module):
    def __init__(self, dim: int, cond: int, hidden: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("perm", torch.randperm(dim, generator=g))
        self.half = dim // 2
        self.net = nn.Sequential(nn.Linear(self.half + cond, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, 2 * (dim - self.half)))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x[:, self.perm]
        a, b = x[:, :self.half], x[:, self.half:]
        s, t = self.net(torch.cat([a, c], dim=1)).chunk(2, dim=1)
        s = 2.0 * torch.tanh(s / 2.0)  # bounded log-scales keep training stable
        return torch.cat([a, b * torch.exp(s) + t], dim=1), s.sum(dim=1)


class PatchFlow(nn.Module):
    """Conditional normalising flow on whitened lung-field patch features. `fit` then `film_scores`."""

    def __init__(self, dim: int = 64, blocks: int = 8, hidden: int = 128, cond: int = 16, positions: int = 196,
                 seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.dim = dim
        self.pos = nn.Embedding(positions, cond)
        self.blocks = nn.ModuleList(_Coupling(dim, cond, hidden, seed + i) for i in range(blocks))
        self.register_buffer("mean", torch.zeros(0))
        self.register_buffer("proj", torch.zeros(0))

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) @ self.proj

    def nll(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per patch (nats, up to the constant of the whitening)."""
        z, logdet = self._whiten(x), torch.zeros(len(x))
        c = self.pos(pos)
        for block in self.blocks:
            z, ld = block(z, c)
            logdet = logdet + ld
        return 0.5 * (z * z).sum(dim=1) + 0.5 * self.dim * np.log(2 * np.pi) - logdet

    def fit(self, patches: torch.Tensor, epochs: int = 30, batch: int = 512, lr: float = 1e-3, progress=None):
        """`patches`: films x positions x D, with positions the lung-field indices (all films the same)."""
        n, p, d = patches.shape
        flat = patches.reshape(-1, d).float()
        pos = torch.arange(p).repeat(n)
        mean = flat.mean(0)
        u, sv, vt = torch.linalg.svd(flat - mean, full_matrices=False)
        scale = sv[:self.dim] / np.sqrt(len(flat) - 1)
        self.mean, self.proj = mean, (vt[:self.dim].T / (scale + 1e-6))
        opt = torch.optim.Adam([q for name, q in self.named_parameters()], lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        g = torch.Generator().manual_seed(0)
        self.train()
        for epoch in range(epochs):
            order = torch.randperm(len(flat), generator=g)
            total = 0.0
            for start in range(0, len(flat), batch):
                idx = order[start:start + batch]
                loss = self.nll(flat[idx], pos[idx]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            sched.step()
            if progress:
                progress(f"flow epoch {epoch + 1}/{epochs}: nll {total / len(flat):.2f}")
        self.eval()
        return self

    @torch.no_grad()
    def patch_nll(self, patches: torch.Tensor) -> torch.Tensor:
        n, p, d = patches.shape
        return self.nll(patches.reshape(-1, d).float(), torch.arange(p).repeat(n)).reshape(n, p)

    def film_scores(self, patches: torch.Tensor, top: int = 0) -> np.ndarray:
        nll = self.patch_nll(patches)
        if top:
            nll = torch.topk(nll, min(top, nll.shape[1]), dim=1).values
        return nll.mean(dim=1).numpy()


class FeatureStudent(nn.Module):
    """relu3_3 -> relu4_3 regressor on the 14x14 grid (per-channel standardised targets)."""

    def __init__(self, hidden: int = 256, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        c_in = LAYERS["relu3_3"][1] - LAYERS["relu3_3"][0]
        c_out = LAYERS["relu4_3"][1] - LAYERS["relu4_3"][0]
        self.net = nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, hidden, 3, padding=1),
                                 nn.GELU(), nn.Conv2d(hidden, c_out, 1))
        for name in ("in_mean", "in_std", "out_mean", "out_std", "err_mean"):
            self.register_buffer(name, torch.zeros(0))

    @staticmethod
    def _split(maps) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(np.asarray(maps, dtype=np.float32))
        (a0, a1), (b0, b1) = LAYERS["relu3_3"], LAYERS["relu4_3"]
        return torch.log1p(t[:, a0:a1]), torch.log1p(t[:, b0:b1])

    def _errors(self, maps) -> torch.Tensor:
        x, y = self._split(maps)
        pred = self.net((x - self.in_mean) / self.in_std)
        return ((pred - (y - self.out_mean) / self.out_std) ** 2).mean(dim=1)  # n x 14 x 14

    def fit(self, maps, epochs: int = 60, batch: int = 16, lr: float = 1e-3, progress=None):
        x, y = self._split(maps)
        self.in_mean, self.in_std = x.mean((0, 2, 3), keepdim=True)[0], x.std((0, 2, 3), keepdim=True)[0] + 1e-6
        self.out_mean, self.out_std = y.mean((0, 2, 3), keepdim=True)[0], y.std((0, 2, 3), keepdim=True)[0] + 1e-6
        xs, ys = (x - self.in_mean) / self.in_std, (y - self.out_mean) / self.out_std
        opt = torch.optim.Adam(self.net.parameters(), lr=lr, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        g = torch.Generator().manual_seed(0)
        self.train()
        for epoch in range(epochs):
            order = torch.randperm(len(xs), generator=g)
            total = 0.0
            for start in range(0, len(xs), batch):
                idx = order[start:start + batch]
                loss = ((self.net(xs[idx]) - ys[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            sched.step()
            if progress:
                progress(f"student epoch {epoch + 1}/{epochs}: mse {total / len(xs):.3f}")
        self.eval()
        with torch.no_grad():
            self.err_mean = self._errors(maps).mean(0) + 1e-6
        return self

    @torch.no_grad()
    def film_scores(self, maps, mask: np.ndarray, top: int = 0) -> np.ndarray:
        err = (self._errors(maps) / self.err_mean)[:, torch.from_numpy(mask)]
        if top:
            err = torch.topk(err, min(top, err.shape[1]), dim=1).values
        return err.mean(dim=1).numpy()
