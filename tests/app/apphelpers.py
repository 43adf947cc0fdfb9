"""Helpers shared by the app tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsight import config

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds per AppTest run: the first one loads the backbone on a busy 2-core machine
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(200)


def page(name: str) -> str:
    return str(REPO / name)


def rendered_text(at) -> str:
    """Everything a user can read on the page (markdown, captions, alerts, metrics, image captions)."""
    parts = [e.value for e in list(at.markdown) + list(at.caption) + list(at.error) + list(at.warning) + list(at.info)
             + list(at.success)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [str(c) for img in at.image for c in (img.captions or [])]
    return "\n".join(str(p) for p in parts)


# -- fixtures (imported by tests/app/conftest.py and tests/browser/conftest.py) --------------------------------
@pytest.fixture(scope="session")
def weights_ready():
    from medsight.vision.backbone import weights_path

    if not (config.WEIGHTS_DIR / "paper.json").is_file():
        pytest.skip(f"the shipped detector weights are not there yet ({config.WEIGHTS_DIR}/paper.json): run `medsight train`")
    if not weights_path().is_file():
        pytest.skip(f"VGG16 weights not built ({weights_path()}): run `bash scripts/setup.sh`")
    return config.WEIGHTS_DIR


@pytest.fixture(scope="session")
def radiograph(cxr_manifest) -> tuple[Path, bytes]:
    """A real normal frontal radiograph from the dev split."""
    import pandas as pd

    df = pd.read_csv(cxr_manifest)
    row = df[(df["split"] == "dev") & (df["label"] == "normal")].iloc[0]
    path = cxr_manifest.parent / row["file"]
    return path, path.read_bytes()


@pytest.fixture(scope="session")
def dicom_bytes(radiograph) -> bytes:
    """A 12-bit MONOCHROME2 DICOM of the real radiograph, with identifying tags that must never be shown."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    pixels = np.asarray(Image.open(io.BytesIO(radiograph[1])).convert("L"), dtype=np.uint16) * 16
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("test.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "SECRET-1234", "19500101"
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = "DX", "PA", "CHEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture(scope="session")
def colour_photo() -> bytes:
    """A colourful synthetic 'photo' (sky, grass, a red disc): not a radiograph."""
    h, w = 300, 400
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[: h // 2] = (90, 160, 235)
    rgb[h // 2:] = (60, 170, 60)
    rgb[(yy - 120) ** 2 + (xx - 280) ** 2 < 45 ** 2] = (220, 40, 40)
    rgb = np.clip(rgb.astype(int) + np.random.default_rng(0).integers(-15, 15, rgb.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def reference_pipeline(weights_ready):
    from medsight.vision import DEFAULT_DETECTOR, AnomalyPipeline

    return AnomalyPipeline.load(DEFAULT_DETECTOR)


def _first_scoring(cxr_manifest, reference_pipeline, label: str, wanted) -> Path:
    """The first dev film of `label` (manifest order) whose default-detector result satisfies `wanted`."""
    import pandas as pd

    df = pd.read_csv(cxr_manifest)
    rows = df[(df["split"] == "dev") & (df["label"] == label)].head(40)
    for f in rows["file"]:
        path = cxr_manifest.parent / f
        if wanted(reference_pipeline.score(path)):
            return path
    pytest.skip(f"no {label} film among the first 40 of dev gives the wanted score")


@pytest.fixture(scope="session")
def high_film(cxr_manifest, reference_pipeline) -> Path:
    """A real pediatric pneumonia film the default detector scores HIGH (raw score far above 1)."""
    return _first_scoring(cxr_manifest, reference_pipeline, "bacterial_pneumonia", lambda r: r.risk == "HIGH" and r.anomaly_score > 1)


@pytest.fixture(scope="session")
def negative_film(cxr_manifest, reference_pipeline) -> Path:
    """A real normal film with a negative raw score (LOW): the other side of the scale the note page must read."""
    return _first_scoring(cxr_manifest, reference_pipeline, "normal", lambda r: r.scored and r.anomaly_score < 0)


def scored_case(path: Path, pipeline):
    from medsight.case import Case

    case = Case.from_file(path, detector=pipeline.detector.name)
    case.score(pipeline)
    case.digest = f"test:{path.name}"
    return case
