"""Image-space transforms of training normals: the paper's augmentations (plus simulated acquisition chains)
and synthetic local anomalies, so the scorer can be trained without a single pathology image.

Every transform is deterministic given an integer seed, so a resumed extraction reproduces the same views.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

SYNTHETIC_KINDS = ("opacity", "cutpaste", "texture")


def augment(gray: np.ndarray, seed: int) -> np.ndarray:
    """Paper 3.2 (flip p=0.5, rotation +-10 deg, brightness/contrast +-0.2) plus an acquisition chain:
    down/up-sampling, gamma (re-windowing) and JPEG re-encoding. uint8 HxW -> uint8 HxW."""
    rng = np.random.default_rng(seed)
    img = gray.astype(np.float32)
    h, w = img.shape
    if rng.random() < 0.5:
        img = img[:, ::-1]
    angle = rng.uniform(-10, 10)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    brightness, contrast = rng.uniform(-0.2, 0.2), rng.uniform(0.8, 1.2)
    mean = img.mean()
    img = (img - mean) * contrast + mean + brightness * 255 * 0.5
    gamma = rng.uniform(0.75, 1.33)
    img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:  # resample through a lower resolution, as a different scanner chain would
        s = int(rng.integers(96, 200))
        out = cv2.resize(cv2.resize(out, (s, s), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(30, 95)))
        out = np.asarray(Image.open(buf).convert("L"))
    return np.ascontiguousarray(out)


def _lung_box(h: int, w: int) -> tuple[int, int, int, int]:
    """Rough lung-field bounding box of a centred frontal film: rows 20-85 %, columns 12-88 %."""
    return int(0.20 * h), int(0.85 * h), int(0.12 * w), int(0.88 * w)


def _ellipse_mask(h: int, w: int, rng: np.random.Generator, min_r: float, max_r: float) -> np.ndarray:
    top, bottom, left, right = _lung_box(h, w)
    cy, cx = rng.integers(top, bottom), rng.integers(left, right)
    ry, rx = rng.uniform(min_r, max_r) * h, rng.uniform(min_r, max_r) * w
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    mask = np.clip(1.0 - d, 0, 1) ** 0.7
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=max(1.0, 0.15 * min(rx, ry)))


def synthesize(gray: np.ndarray, seed: int, donor: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """A local synthetic anomaly on a normal film. Returns (image, kind).

    - opacity: a soft, textured brightening inside the lung box (consolidation-like);
    - cutpaste: a patch from another normal film (or this one) pasted elsewhere in the lung box;
    - texture: local blur or speckle that destroys the normal lung texture.
    """
    rng = np.random.default_rng(seed)
    kind = SYNTHETIC_KINDS[int(rng.integers(len(SYNTHETIC_KINDS)))]
    img = gray.astype(np.float32)
    h, w = img.shape
    if kind == "opacity":
        n = int(rng.integers(1, 3))
        mask = np.zeros_like(img)
        for _ in range(n):
            mask = np.maximum(mask, _ellipse_mask(h, w, rng, 0.06, 0.18))
        noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 3)
        strength = rng.uniform(40, 110)
        target = np.maximum(img, 150 + 30 * noise)  # opacities whiten towards soft-tissue density
        img = img + mask * ((target - img) * 0.6 + 0.25 * strength)
    elif kind == "cutpaste":
        src = donor if donor is not None else gray
        src = src.astype(np.float32)
        ph, pw = int(rng.uniform(0.12, 0.3) * h), int(rng.uniform(0.12, 0.3) * w)
        sy, sx = rng.integers(0, h - ph), rng.integers(0, w - pw)
        patch = src[sy : sy + ph, sx : sx + pw]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        top, bottom, left, right = _lung_box(h, w)
        ty, tx = rng.integers(top, max(top + 1, bottom - ph)), rng.integers(left, max(left + 1, right - pw))
        img[ty : ty + ph, tx : tx + pw] = patch
    else:
        mask = _ellipse_mask(h, w, rng, 0.08, 0.2)
        if rng.random() < 0.5:
            alt = cv2.GaussianBlur(img, (0, 0), sigmaX=rng.uniform(3, 7))
        else:
            alt = img + rng.normal(0, rng.uniform(20, 45), img.shape).astype(np.float32)
        img = img * (1 - mask) + alt * mask
    return np.clip(img, 0, 255).astype(np.uint8), kind
