"""The feature-map layout every detector reads: the frozen backbone's ReLU maps of blocks 3-5 average-pooled to a
common 14x14 grid and stacked (relu3_3 256 ch, relu4_3 512 ch, relu5_3 512 ch = 1280 channels). From those we
derive exactly: global averages of each layer, the paper's pool5 global average (2x2 max-pool of relu5_3, then
mean), and patch features for patch-level detectors. `medsight.training.features` caches these maps on disk.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

GRID = 14
LAYERS = {"relu3_3": (0, 256), "relu4_3": (256, 768), "relu5_3": (768, 1280)}
CHANNELS = 1280


def maps_from_taps(taps: dict[str, torch.Tensor]) -> torch.Tensor:
    """Backbone tap outputs -> N x 1280 x 14 x 14 (adaptive average pooling to the common grid)."""
    return torch.cat([F.adaptive_avg_pool2d(taps[name], GRID) for name in LAYERS], dim=1)


def layer(maps: np.ndarray | torch.Tensor, name: str):
    lo, hi = LAYERS[name]
    return maps[:, lo:hi]


def pooled(maps: np.ndarray, name: str) -> np.ndarray:
    """Global average of one layer (exact: the 14x14 grid is an average pooling of the full map)."""
    return np.asarray(layer(maps, name), dtype=np.float32).mean(axis=(2, 3))


def pool5_gap(maps: np.ndarray) -> np.ndarray:
    """The paper's 512-d input: VGG16 `features` (ending in pool5) then global average pooling."""
    t = torch.from_numpy(np.asarray(layer(maps, "relu5_3"), dtype=np.float32))
    return F.max_pool2d(t, 2).mean(dim=(2, 3)).numpy()


