"""Load a radiograph from a path or bytes into an 8-bit grayscale array, with one clear error for bad input.

DICOM is read in one function (`_read_dicom`): modality LUT, VOI LUT / window, MONOCHROME1 inverted, any bit depth.
Identifying DICOM tags are never read into the result.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medsight import config


class ImageLoadError(ValueError):
    """A file the user supplied cannot be read as a radiograph. The message is one sentence for the user."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # uint8, HxW, grayscale, 0 = black
    source_format: str  # "PNG", "JPEG", "DICOM", ...
    original_shape: tuple[int, int]
    bit_depth: int
    #: mean HSV saturation (0-1) of the original when it was colour; 0 for grayscale. Used by the OOD gate.
    colourfulness: float = 0.0
    #: non-identifying acquisition facts (modality, view position, photometric interpretation)
    info: dict = field(default_factory=dict)


_DICOM_SAFE_TAGS = ("Modality", "ViewPosition", "PhotometricInterpretation", "BodyPartExamined", "BitsStored")


def load_image(source: str | Path | bytes, name: str | None = None) -> LoadedImage:
    """Read PNG / JPEG / other PIL formats or DICOM from a path or raw bytes."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise ImageLoadError(f"{name}: no such file.")
        size = path.stat().st_size
        if size > config.MAX_FILE_BYTES:
            raise ImageLoadError(f"{name}: file is {size / 1e6:.0f} MB, larger than the {config.MAX_FILE_BYTES / 1e6:.0f} MB limit.")
        data = path.read_bytes()
    else:
        data = bytes(source)
        name = name or "upload"
        if len(data) > config.MAX_FILE_BYTES:
            raise ImageLoadError(f"{name}: file is larger than the {config.MAX_FILE_BYTES / 1e6:.0f} MB limit.")
    if len(data) == 0:
        raise ImageLoadError(f"{name}: the file is empty.")
    if _looks_like_dicom(data):
        return _read_dicom(data, name)
    return _read_raster(data, name)


def _looks_like_dicom(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _read_raster(data: bytes, name: str) -> LoadedImage:
    Image.MAX_IMAGE_PIXELS = config.MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "image"
            w, h = img.size
            if w * h > config.MAX_IMAGE_PIXELS:
                raise ImageLoadError(f"{name}: image is {w}x{h} pixels, larger than the supported maximum.")
            img.load()
            return _from_pil(img, fmt)
    except ImageLoadError:
        raise
    except Image.DecompressionBombError:
        raise ImageLoadError(f"{name}: image is too large to process safely.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if _maybe_headerless_dicom(data):
            return _read_dicom(data, name)
        raise ImageLoadError(f"{name}: not a readable PNG, JPEG or DICOM image ({type(exc).__name__}).") from None


def _maybe_headerless_dicom(data: bytes) -> bool:
    # Some DICOM files omit the 128-byte preamble; they start with group 0x0008 or 0x0002 little-endian.
    return data[:2] in (b"\x08\x00", b"\x02\x00")


def _from_pil(img: Image.Image, fmt: str) -> LoadedImage:
    mode = img.mode
    colourfulness = 0.0
    bit_depth = 8
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        bit_depth = 16 if mode.startswith("I;16") else 32
        gray = _rescale_to_uint8(arr)
    else:
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
            img = _flatten_alpha(img)
        if mode not in ("L", "1"):
            rgb = img.convert("RGB")
            hsv = np.asarray(rgb.convert("HSV"), dtype=np.float32)
            colourfulness = float(hsv[..., 1].mean() / 255.0)
            gray = np.asarray(rgb.convert("L"), dtype=np.uint8)
        else:
            gray = np.asarray(img.convert("L"), dtype=np.uint8)
    return LoadedImage(np.ascontiguousarray(gray), fmt, gray.shape, bit_depth, colourfulness, {"mode": mode})


def _flatten_alpha(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _rescale_to_uint8(arr: np.ndarray) -> np.ndarray:
    arr = np.nan_to_num(arr.astype(np.float64))
    lo, hi = np.percentile(arr, [0.5, 99.5]) if arr.size > 16 else (arr.min(), arr.max())
    if hi <= lo:
        lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    out = (np.clip(arr, lo, hi) - lo) / (hi - lo) * 255.0
    return np.round(out).astype(np.uint8)


def _read_dicom(data: bytes, name: str) -> LoadedImage:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError as exc:  # pragma: no cover - pydicom is a declared dependency
        raise ImageLoadError("Reading DICOM needs the `pydicom` package (pip install pydicom).") from exc
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        rows, cols = int(ds.Rows), int(ds.Columns)
        if rows * cols > config.MAX_IMAGE_PIXELS:
            raise ImageLoadError(f"{name}: DICOM image is {cols}x{rows} pixels, larger than the supported maximum.")
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if frames > 1:
            raise ImageLoadError(f"{name}: multi-frame DICOM ({frames} frames) is not a single radiograph.")
        raw = ds.pixel_array
        photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
        if raw.ndim == 3:  # colour DICOM (RGB / YBR): a secondary capture, not a radiograph
            rgb = Image.fromarray(_rescale_to_uint8(raw) if raw.dtype != np.uint8 else raw).convert("RGB")
            loaded = _from_pil(rgb, "DICOM")
            loaded.info.update(_safe_dicom_info(ds))
            return loaded
        arr = apply_modality_lut(raw, ds)
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            arr = apply_voi_lut(arr, ds, index=0)
        arr = np.asarray(arr, dtype=np.float64)
        if photometric == "MONOCHROME1":
            arr = arr.max() - arr
        gray = _rescale_to_uint8(arr)
    except ImageLoadError:
        raise
    except Exception as exc:  # pydicom raises many types for malformed files
        raise ImageLoadError(f"{name}: not a readable DICOM image ({type(exc).__name__}: {str(exc)[:120]}).") from None
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    return LoadedImage(gray, "DICOM", gray.shape, bits, 0.0, _safe_dicom_info(ds))


def _safe_dicom_info(ds) -> dict:
    return {tag: str(getattr(ds, tag)) for tag in _DICOM_SAFE_TAGS if tag in ds}
