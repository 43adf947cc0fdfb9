"""Load a radiograph from a path or bytes into an 8-bit grayscale array, with one clear error for bad input.

One door for every container: the bytes are sniffed (DICOM with or without its preamble, else anything Pillow reads),
read by `medsight.imaging.dicom` or `medsight.imaging.raster`, and mapped to uint8 by the single intensity and size
rule of `medsight.imaging.intensity` (no percentile stretch; deeper samples by their bit depth; DICOM windows honoured;
images reduced to `config.MAX_LOADED_SIDE` on reading). What reading changed (transparency, extra frames, reduction)
is in `LoadedImage.notes`. Every failure is an `ImageLoadError` whose message is one whole sentence.
"""

from __future__ import annotations

from pathlib import Path

from medsight import config
from medsight.imaging.loaded import ImageLoadError, LoadedImage

__all__ = ["ImageLoadError", "LoadedImage", "load_image", "read_source"]


def read_source(source: str | Path | bytes, name: str | None = None) -> tuple[bytes, str]:
    """The file's bytes and a display name, with the size limit checked before anything is read."""
    limit = f"{config.MAX_FILE_BYTES / 1e6:.0f} MB"
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name or str(path)
        if path.is_dir():
            raise ImageLoadError(f"{name}: this is a folder, not an image file; give the path of a PNG, JPEG or DICOM file.")
        if not path.exists():
            raise ImageLoadError(f"{name}: no such file.")
        if not path.is_file():
            raise ImageLoadError(f"{name}: not a regular file (a device, pipe or socket), so it cannot be read as an image.")
        size = path.stat().st_size
        if size > config.MAX_FILE_BYTES:
            raise ImageLoadError(f"{name}: the file is {size / 1e6:.0f} MB, larger than the {limit} limit.")
        try:
            data = path.read_bytes()
        except PermissionError:
            raise ImageLoadError(f"{name}: permission denied, so the file cannot be read.") from None
        except OSError as exc:
            raise ImageLoadError(f"{name}: the file cannot be read ({exc.strerror or exc}).") from None
    else:
        data = bytes(source)
        name = name or "upload"
        if len(data) > config.MAX_FILE_BYTES:
            raise ImageLoadError(f"{name}: the file is {len(data) / 1e6:.0f} MB, larger than the {limit} limit.")
    if len(data) == 0:
        raise ImageLoadError(f"{name}: the file is empty (0 bytes).")
    return data, name


def load_image(source: str | Path | bytes, name: str | None = None) -> LoadedImage:
    """Read PNG / JPEG / TIFF / GIF / BMP / other Pillow formats or DICOM from a path or raw bytes."""
    from medsight.imaging.dicom import looks_like_dicom, read_dicom
    from medsight.imaging.raster import read_raster

    data, name = read_source(source, name)
    try:
        return read_dicom(data, name) if looks_like_dicom(data) else read_raster(data, name)
    except MemoryError:
        raise ImageLoadError(f"{name}: the image is too large to decode in the memory available.") from None
