"""Shared test fixtures. Development data is read from ../shared (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MEDSIGHT_SHARED_DATA", REPO.parent / "shared" / "data"))
CXR_MANIFEST = SHARED_DATA / "cxr" / "manifest.csv"


@pytest.fixture(scope="session")
def cxr_manifest() -> Path:
    if not CXR_MANIFEST.exists():
        pytest.skip(f"development data not found at {CXR_MANIFEST}")
    return CXR_MANIFEST


@pytest.fixture(scope="session")
def real_radiographs(cxr_manifest):
    """A few real dev radiographs: (path, label) for one normal and one of each abnormal label."""
    import pandas as pd

    df = pd.read_csv(cxr_manifest)
    dev = df[df["split"] == "dev"]
    picks = dev.groupby("label").head(1)
    return [(cxr_manifest.parent / f, label) for f, label in zip(picks["file"], picks["label"])]


@pytest.fixture(scope="session")
def cpu_backbone():
    """The VGG16 backbone on the CPU, loaded once for every test that needs real feature maps."""
    from medsight.vision.backbone import WeightsError, load_backbone

    try:
        return load_backbone("auto", "cpu")
    except WeightsError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def train_normal_maps(cxr_manifest, cpu_backbone):
    """`maps(n, seed)`: backbone feature maps of n random training normals."""
    import pandas as pd

    from medsight.training.gate_eval import _maps
    from medsight.imaging.load import load_image

    df = pd.read_csv(cxr_manifest)
    normals = df[(df["split"] == "train") & (df["is_normal"] == 1)]

    def maps(n: int, seed: int):
        files = normals.sample(n=n, random_state=seed)["file"]
        return _maps(cpu_backbone, [load_image(cxr_manifest.parent / f) for f in files])
    return maps
