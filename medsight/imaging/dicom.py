"""DICOM -> `LoadedImage` with pydicom, under the rules of `intensity`: window / VOI LUT honoured, MONOCHROME1
inverted, any bit depth; compressed transfer syntaxes through pydicom's pixel-data plugins (pylibjpeg with
pylibjpeg-libjpeg for JPEG Lossless / JPEG-LS / JPEG, pylibjpeg-openjpeg for JPEG 2000, pydicom itself for RLE).

Files without the 128-byte preamble and DICM prefix are read too: a bare dataset starting with group 0002 (file meta)
or 0008, the transfer syntax taken from the encoding pydicom found. A multi-frame image gives its first frame, with a
note. Identifying tags are never read into the result.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np

from medsight.imaging.intensity import effective_bits, map_rows, reduce_gray, size_note
from medsight.imaging.loaded import ImageLoadError, LoadedImage, exception_sentence
from medsight.imaging.raster import check_pixels, colour_to_gray

SAFE_TAGS = ("Modality", "ViewPosition", "PhotometricInterpretation", "BodyPartExamined", "BitsStored")
PLUGINS_HINT = "pip install -r requirements.txt adds pylibjpeg, pylibjpeg-libjpeg and pylibjpeg-openjpeg"


def looks_like_dicom(data: bytes) -> bool:
    """DICM after the preamble, DICM at the start (prefix without preamble), or a bare dataset whose first element is
    a group 0002 or 0008 tag in little-endian order (explicit VR: two capital letters follow; implicit: a length)."""
    if data[128:132] == b"DICM" or data[:4] == b"DICM":
        return True
    if len(data) < 8:
        return False
    group, _ = struct.unpack("<HH", data[:4])
    if group not in (0x0002, 0x0008):
        return False
    vr = data[4:6]
    return (vr.isalpha() and vr.isupper()) or struct.unpack("<I", data[4:8])[0] < len(data)


def read_dicom(data: bytes, name: str) -> LoadedImage:
    import pydicom

    if data[:4] == b"DICM":
        data = data[4:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about malformed files; the error below says it once
        return _read(pydicom, data, name)


def _read(pydicom, data: bytes, name: str) -> LoadedImage:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as exc:  # pydicom raises many types for malformed files
        raise ImageLoadError(f"{name}: not a readable DICOM file ({exception_sentence(exc)}).") from None
    _ensure_transfer_syntax(ds)
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        if b"\xe0\x7f\x10\x00" in data:  # the (7FE0,0010) Pixel Data tag is there, its value is not
            raise ImageLoadError(f"{name}: the DICOM file is cut short inside its pixel data, so the image cannot be read.")
        if len(ds) == 0:
            raise ImageLoadError(f"{name}: not a readable DICOM file: no DICOM elements could be read after its header.")
        raise ImageLoadError(f"{name}: the DICOM file holds no image: it has no Pixel Data (it may be a report, "
                             f"a presentation state or a DICOMDIR, or be cut short before its pixels).")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        raise ImageLoadError(f"{name}: the DICOM file does not say how many rows and columns its image has.") from None
    check_pixels(name, cols, rows)
    notes = []
    frames = _int(ds.get("NumberOfFrames", 1), 1)
    if frames > 1:
        notes.append(f"The DICOM file holds {frames} frames; only the first was read.")
        ds.pixel_array_options(index=0)
    _check_length(ds, name, rows, cols)
    try:
        raw = ds.pixel_array
    except MemoryError:
        raise ImageLoadError(f"{name}: the DICOM image is too large to decode in the memory available.") from None
    except Exception as exc:
        raise _decode_error(ds, name, exc) from None
    info = {tag: str(ds.get(tag)) for tag in SAFE_TAGS if tag in ds}
    bits = _int(ds.get("BitsStored"), raw.dtype.itemsize * 8)
    if raw.ndim == 3:  # colour (pydicom gives RGB): a secondary capture, not a radiograph; the gate judges it
        rgb = raw if raw.dtype == np.uint8 else _colour_to_uint8(raw, bits)
        gray_img, colourfulness = colour_to_gray(_rgb_image(rgb))
        gray = np.asarray(gray_img)
    elif raw.ndim == 2:
        colourfulness = 0.0
        gray = _mono_to_uint8(raw, ds, bits)
        del raw
        if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper() == "MONOCHROME1":
            np.subtract(255, gray, out=gray)
        gray = reduce_gray(gray)
    else:
        raise ImageLoadError(f"{name}: the DICOM pixel data has an unexpected shape {raw.shape}.")
    gray = np.ascontiguousarray(gray)
    note = size_note((rows, cols), gray.shape)
    return LoadedImage(gray, "DICOM", (rows, cols), bits, colourfulness, info, notes + ([note] if note else []))


def _int(value, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _ensure_transfer_syntax(ds) -> None:
    """A bare dataset has no file meta: give it the transfer syntax matching the encoding pydicom read it with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding if ds.original_encoding[0] is not None else (True, True)
    ds.file_meta = meta if meta is not None else FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                      ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _check_length(ds, name: str, rows: int, cols: int) -> None:
    """Uncompressed pixel data shorter than one frame: a file cut short."""
    ts = ds.file_meta.TransferSyntaxUID
    if ts.is_compressed or "PixelData" not in ds:
        return
    spp = _int(ds.get("SamplesPerPixel"), 1)
    need = rows * cols * spp * _int(ds.get("BitsAllocated"), 16) // 8
    have = len(ds.PixelData or b"")
    if have < need:
        raise ImageLoadError(f"{name}: the DICOM file is cut short: its pixel data holds {have} bytes, but one "
                             f"{cols}x{rows} frame needs {need}.")


def _decode_error(ds, name: str, exc: BaseException) -> ImageLoadError:
    from pydicom.pixels import get_decoder

    ts = ds.file_meta.TransferSyntaxUID
    label = ts.name if ts.is_valid and ts.name != ts else f"transfer syntax {ts}"
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        return ImageLoadError(f"{name}: the DICOM image is stored as {label}, which pydicom cannot decode.")
    if ts.is_compressed and not decoder.is_available:
        return ImageLoadError(f"{name}: the DICOM image is compressed as {label}, which needs a pixel-data plugin that "
                              f"is not installed ({PLUGINS_HINT}).")
    if ts.is_compressed:
        return ImageLoadError(f"{name}: the DICOM image's {label} data is damaged or cut short, so it cannot be "
                              f"decoded ({exception_sentence(exc)}).")
    return ImageLoadError(f"{name}: the DICOM pixel data cannot be read ({exception_sentence(exc)}).")


def _mono_to_uint8(raw: np.ndarray, ds, bits: int) -> np.ndarray:
    """Rules 2 and 3 of `intensity`: window or VOI LUT when the file has one, else the stored depth."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    h, w = raw.shape
    rows = lambda y0, y1: raw[y0:y1]  # noqa: E731
    if "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds):
        lo, hi = _voi_range(ds, bits)
        return map_rows(rows, h, w, lo, hi, lambda band: apply_voi_lut(apply_modality_lut(band, ds), ds, index=0))
    if "ModalityLUTSequence" in ds:
        lo, hi = 0, 2 ** _lut_bits(ds.ModalityLUTSequence[0]) - 1
        return map_rows(rows, h, w, lo, hi, lambda band: apply_modality_lut(band, ds))
    if _int(ds.get("PixelRepresentation"), 0) == 1 and raw.size:
        signed_bits = effective_bits(bits, int(raw.max()), min(0, int(raw.min())))
        lo, hi = -(2 ** (signed_bits - 1)), 2 ** (signed_bits - 1) - 1
    else:
        lo, hi = 0, 2 ** effective_bits(bits, int(raw.max()) if raw.size else 0) - 1
    gray = map_rows(rows, h, w, lo, hi)
    if float(ds.get("RescaleSlope", 1) or 1) < 0:  # a linear rescale only matters through its sign
        np.subtract(255, gray, out=gray)
    return gray


def _lut_bits(item) -> int:
    desc = list(item.LUTDescriptor)
    data = np.asarray(item.LUTData if "LUTData" in item else [2 ** int(desc[2]) - 1])
    return effective_bits(int(desc[2]), int(data.max()))


def _voi_range(ds, bits: int) -> tuple[float, float]:
    """The output range of pydicom's `apply_voi_lut` (a VOI LUT is preferred over a window, as pydicom does)."""
    if "VOILUTSequence" in ds:
        return 0.0, float(2 ** _lut_bits(ds.VOILUTSequence[0]) - 1)
    if "ModalityLUTSequence" in ds:
        y = (0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1))
    elif _int(ds.get("PixelRepresentation"), 0) == 0:
        y = (0.0, float(2**bits - 1))
    else:
        y = (-float(2 ** (bits - 1)), float(2 ** (bits - 1) - 1))
    if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        y = (y[0] * slope + intercept, y[1] * slope + intercept)
    return min(y), max(y)


def _colour_to_uint8(raw: np.ndarray, bits: int) -> np.ndarray:
    h, w, c = raw.shape
    top = 2 ** effective_bits(bits, int(raw.max())) - 1
    return map_rows(lambda y0, y1: raw[y0:y1].reshape(y1 - y0, w * c), h, w * c, 0, top).reshape(h, w, c)


def _rgb_image(rgb: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB")
