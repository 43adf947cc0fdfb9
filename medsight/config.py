"""Paths and settings, with environment overrides. Nothing else lives here."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Shipped artefacts (trained heads, calibration, model cards) and, git-ignored, built ones (the VGG16 weights).
WEIGHTS_DIR = Path(os.environ.get("MEDSIGHT_WEIGHTS", REPO_ROOT / "weights"))

#: Weights built on this machine from verified sources (the VGG16 conversion). Git-ignored.
BUILT_WEIGHTS_DIR = Path(os.environ.get("MEDSIGHT_BUILT_WEIGHTS", REPO_ROOT / "weights" / "built"))

#: Caches that can be rebuilt (feature caches, downloaded wheels, vector stores). Git-ignored.
CACHE_DIR = Path(os.environ.get("MEDSIGHT_CACHE", REPO_ROOT / ".cache"))

#: Largest file the loaders accept, in bytes, and most pixels an image may declare (decompression-bomb guard: a
#: file declaring more is refused before it is decoded; 10000x10000 is the largest square accepted).
MAX_FILE_BYTES = int(os.environ.get("MEDSIGHT_MAX_FILE_BYTES", 200 * 1024 * 1024))
MAX_IMAGE_PIXELS = int(os.environ.get("MEDSIGHT_MAX_IMAGE_PIXELS", 100_000_000))
#: Longest side of a loaded image: larger ones are reduced on reading (the detector reads 224 px on the short side,
#: the gate and the viewer less than this), so a 10000x10000 film costs 4 MB once loaded. See medsight/imaging/intensity.py.
MAX_LOADED_SIDE = int(os.environ.get("MEDSIGHT_MAX_LOADED_SIDE", 2048))


def device_name() -> str:
    """`cuda` when a GPU is usable, else `cpu`; `MEDSIGHT_DEVICE` overrides."""
    forced = os.environ.get("MEDSIGHT_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
