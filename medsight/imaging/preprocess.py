"""The backbone's input contract, written down in one place.

The VGG16 weights are Oxford's original ImageNet model (Simonyan & Zisserman, Caffe). They were trained on
RGB images in the 0-255 range minus the per-channel ImageNet means, without division by a standard deviation.
Our converter flips conv1_1 to RGB order, so the tensor we feed is RGB 0-255 minus `MEAN_RGB`.

A radiograph is grayscale: it is replicated into three channels. Geometry follows the development data's
re-encoding: shorter side scaled to 224 with Lanczos, centre crop to 224x224.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

INPUT_SIZE = 224
MEAN_RGB = (123.68, 116.779, 103.939)

INPUT_CONTRACT = {
    "size": INPUT_SIZE,
    "resize": "shorter side to 224 (Lanczos), centre crop 224x224",
    "channels": "grayscale replicated to RGB",
    "range": "0-255",
    "mean_rgb": list(MEAN_RGB),
    "std": None,
    "weights": "VGG16 ImageNet, Oxford/Caffe original, conv1_1 flipped BGR->RGB",
}


def to_square(gray: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Shorter side to `size` (Lanczos), centre crop: uint8 HxW -> uint8 size x size."""
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"the backbone expects uint8 0-255 HxW grayscale images, got {gray.dtype} {gray.shape}")
    h, w = gray.shape
    if (h, w) != (size, size):
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        img = Image.fromarray(gray).resize((nw, nh), Image.LANCZOS)
        top, left = (nh - size) // 2, (nw - size) // 2
        gray = np.asarray(img.crop((left, top, left + size, top + size)))
    return gray


def to_backbone_tensor(images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 grayscale images (each HxW, any size) -> float tensor Nx3x224x224, RGB 0-255 minus the means."""
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    batch = np.stack([to_square(np.asarray(g)) for g in images]).astype(np.float32)
    x = torch.from_numpy(batch)[:, None].expand(-1, 3, -1, -1).clone()
    x -= torch.tensor(MEAN_RGB).view(1, 3, 1, 1)
    return x
