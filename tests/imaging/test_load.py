"""Loading PNG / JPEG / DICOM variants made here, and bad files getting one clear error."""

import io

import numpy as np
import pytest
from PIL import Image

from medsight.imaging.load import ImageLoadError, load_image


def _dicom_bytes(pixels: np.ndarray, photometric="MONOCHROME2", bits=16, slope=None, intercept=None, window=None,
                 preamble=True) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-123"
    ds.Modality = "DX"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=preamble)
    return buf.getvalue()


def _gradient(h=64, w=48, hi=4095):
    return (np.linspace(0, hi, h * w).reshape(h, w)).astype(np.uint16)


def test_dicom_16bit_monochrome2_is_rescaled_to_8bit():
    img = load_image(_dicom_bytes(_gradient()))
    assert img.source_format == "DICOM" and img.pixels.dtype == np.uint8 and img.pixels.shape == (64, 48)
    assert img.pixels[0, 0] < 5 and img.pixels[-1, -1] > 250  # dark top-left, bright bottom-right
    assert img.bit_depth == 12


def test_dicom_monochrome1_is_inverted():
    m2 = load_image(_dicom_bytes(_gradient())).pixels
    m1 = load_image(_dicom_bytes(_gradient(), photometric="MONOCHROME1")).pixels
    assert m1[0, 0] > 250 and m1[-1, -1] < 5
    assert np.abs(m1.astype(int) + m2.astype(int) - 255).max() <= 1


def test_dicom_window_restricts_range():
    full = load_image(_dicom_bytes(_gradient())).pixels
    windowed = load_image(_dicom_bytes(_gradient(), window=(2048, 400))).pixels
    # a narrow window saturates more pixels at both ends
    assert (windowed == 0).mean() > (full == 0).mean() + 0.2
    assert (windowed == 255).mean() > (full == 255).mean() + 0.2


def test_dicom_modality_lut_and_identifying_tags_not_kept():
    img = load_image(_dicom_bytes(_gradient(), slope=2.0, intercept=-1024))
    assert img.pixels[-1, -1] > 250
    text = repr(img.info)
    assert "SECRET-123" not in text and "Doe" not in text
    assert img.info["Modality"] == "DX" and img.info["ViewPosition"] == "PA"


def test_dicom_8bit_and_without_preamble():
    px = (np.arange(64 * 64) % 256).reshape(64, 64).astype(np.uint8)
    img = load_image(_dicom_bytes(px, bits=8, preamble=False))
    assert img.source_format == "DICOM" and img.pixels.shape == (64, 64)


def _png(arr, mode=None, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(buf, format=fmt)
    return buf.getvalue()


def test_png_16bit_grayscale():
    img = load_image(_png(_gradient(hi=65535).astype(np.uint16)))
    assert img.pixels.dtype == np.uint8 and img.pixels.max() > 250 and img.bit_depth == 16


def test_rgb_and_rgba_become_grayscale_with_colourfulness():
    gray_rgb = np.repeat(np.linspace(0, 255, 32 * 32).reshape(32, 32, 1).astype(np.uint8), 3, axis=2)
    assert load_image(_png(gray_rgb)).colourfulness < 0.01
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 0] = 200
    assert load_image(_png(colour, fmt="JPEG"), "photo.jpg").colourfulness > 0.5
    rgba = np.dstack([gray_rgb, np.full((32, 32), 255, np.uint8)])
    img = load_image(_png(rgba))
    assert img.pixels.shape == (32, 32) and img.pixels[-1, -1] > 240


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is not an image at all" * 10, "text file"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a readable"),
])
def test_bad_files_get_one_clear_error(data, message):
    with pytest.raises(ImageLoadError, match=message):
        load_image(data, "bad.png")


def test_truncated_jpeg_and_missing_file(tmp_path):
    good = _png(np.full((64, 64), 128, np.uint8), fmt="JPEG")
    with pytest.raises(ImageLoadError):
        load_image(good[: len(good) // 3], "cut.jpg")
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused(monkeypatch):
    from medsight import config

    monkeypatch.setattr(config, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ImageLoadError, match="safety limit"):
        load_image(_png(np.zeros((200, 200), np.uint8)), "big.png")
    with pytest.raises(ImageLoadError, match="safety limit"):
        load_image(_dicom_bytes(np.zeros((200, 200), np.uint16)), "big.dcm")


def test_oversized_file_is_refused(monkeypatch, tmp_path):
    from medsight import config

    monkeypatch.setattr(config, "MAX_FILE_BYTES", 100)
    p = tmp_path / "x.png"
    p.write_bytes(_png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)))
    with pytest.raises(ImageLoadError, match="limit"):
        load_image(p)


def test_real_radiograph_loads(real_radiographs):
    path, _ = real_radiographs[0]
    img = load_image(path)
    assert img.pixels.shape == (224, 224) and img.source_format == "JPEG"
