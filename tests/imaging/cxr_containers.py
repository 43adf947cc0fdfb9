"""Write the same 8-bit pixels in every container the loader reads: PNG 8/16-bit, TIFF 8/16-bit, JPEG, GIF, and DICOM
(8, 12 and 16 bits stored; uncompressed, RLE, JPEG-LS, JPEG Lossless, JPEG 2000; with or without the preamble).

Used by tests/imaging and scripts/bench_inputs.py. Encoders are the field's: Pillow, pydicom's own encoders (RLE, and
JPEG-LS through pyjpegls, JPEG 2000 through pylibjpeg-openjpeg) and, for JPEG Lossless (pydicom has no encoder for it),
libjpeg-turbo's lossless mode through imagecodecs.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def raster(pixels: np.ndarray, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **save)
    return buf.getvalue()


def png8(g: np.ndarray) -> bytes:
    return raster(g, "PNG")


def png16(g: np.ndarray) -> bytes:
    """The 8-bit values scaled to the full 16-bit range (v * 257), as the PNG specification asks."""
    return raster(g.astype(np.uint16) * 257, "PNG")


def tiff8(g: np.ndarray) -> bytes:
    return raster(g, "TIFF")


def tiff16(g: np.ndarray) -> bytes:
    return raster(g.astype(np.uint16) * 257, "TIFF")


def to_bits(g: np.ndarray, bits: int) -> np.ndarray:
    """8-bit values -> the same intensities at `bits` bits (round(v * (2^bits - 1) / 255)), uint8 or uint16."""
    if bits == 8:
        return g.astype(np.uint8)
    top = 2**bits - 1
    return np.floor(g.astype(np.float64) * top / 255 + 0.5).astype(np.uint16)


# Transfer syntaxes by short name (pydicom.uid names).
SYNTAXES = {
    "explicit": "ExplicitVRLittleEndian",
    "implicit": "ImplicitVRLittleEndian",
    "rle": "RLELossless",
    "jpeg-ls": "JPEGLSLossless",
    "jpeg-lossless": "JPEGLosslessSV1",
    "jpeg-lossless-p14": "JPEGLossless",
    "j2k": "JPEG2000Lossless",
}


def dicom(stored: np.ndarray, bits_stored: int | None = None, photometric: str = "MONOCHROME2", syntax: str = "explicit",
          headerless: str | None = None, window: tuple[float, float] | None = None, slope: float | None = None,
          intercept: float | None = None, frames: int = 1, identifying: bool = True) -> bytes:
    """A DX DICOM of `stored` (uint8, uint16 or int16 (signed), HxW or HxWx3 RGB); `frames` > 1 repeats it as a multi-frame image.
    `headerless` drops the 128-byte preamble and DICM prefix: "0002" keeps the file meta group (the bytes start with
    group 0002), "0008" writes the bare dataset (implicit or explicit VR, starting with group 0008)."""
    import pydicom.uid as uids
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import generate_uid

    ts = getattr(uids, SYNTAXES[syntax])
    colour = stored.ndim == 3
    bits_alloc = 8 if stored.dtype == np.uint8 else 16
    bits_stored = bits_stored or bits_alloc
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts if syntax == "implicit" else uids.ExplicitVRLittleEndian  # compress() sets the rest
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if identifying:
        ds.PatientName = "Doe^Jane"
        ds.PatientID = "SECRET-123"
    ds.Modality = "DX"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = stored.shape[:2]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB" if colour else photometric
    ds.BitsAllocated = bits_alloc
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if stored.dtype.kind == "i" else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    frame_stack = np.stack([stored] * frames) if frames > 1 else stored
    ds.PixelData = np.ascontiguousarray(frame_stack).tobytes()
    if syntax in ("jpeg-lossless", "jpeg-lossless-p14"):
        import imagecodecs

        predictor = 1 if syntax == "jpeg-lossless" else 6
        enc = [imagecodecs.jpeg8_encode(stored, lossless=True, predictor=predictor, bitspersample=bits_stored)] * frames
        ds.PixelData = encapsulate(enc)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = ts
    elif ts.is_compressed:
        ds.compress(ts)
    buf = io.BytesIO()
    if headerless is None:
        ds.save_as(buf, enforce_file_format=True)
    elif headerless == "0002":
        ds.preamble = None
        ds.save_as(buf, enforce_file_format=False)
        assert buf.getvalue()[:2] == b"\x02\x00"
    else:
        del ds.file_meta
        ds.save_as(buf, implicit_vr=syntax == "implicit", little_endian=True)
        assert buf.getvalue()[:2] == b"\x08\x00"
    return buf.getvalue()


def containers(g: np.ndarray) -> dict[str, bytes]:
    """The same 8-bit grayscale pixels in every lossless container (name -> file bytes)."""
    return {
        "png8": png8(g),
        "png16": png16(g),
        "tiff8": tiff8(g),
        "tiff16": tiff16(g),
        "dicom8": dicom(g),
        "dicom12": dicom(to_bits(g, 12), bits_stored=12),
        "dicom16": dicom(to_bits(g, 16)),
        "dicom12-jpeg-lossless": dicom(to_bits(g, 12), bits_stored=12, syntax="jpeg-lossless"),
        "dicom16-jpeg-lossless": dicom(to_bits(g, 16), bits_stored=16, syntax="jpeg-lossless"),
        "dicom12-jpeg-ls": dicom(to_bits(g, 12), bits_stored=12, syntax="jpeg-ls"),
        "dicom16-rle": dicom(to_bits(g, 16), syntax="rle"),
        "dicom12-j2k": dicom(to_bits(g, 12), bits_stored=12, syntax="j2k"),
        "dicom8-headerless": dicom(g, headerless="0008", syntax="implicit"),
        "dicom16-headerless-meta": dicom(to_bits(g, 16), headerless="0002"),
    }
