"""The one intensity rule and the one size rule every container goes through (PNG, JPEG, TIFF, GIF, BMP, DICOM).

Intensity, so that the same pixels give the same uint8 array (and so the same score) in any container:

1. 8-bit samples are kept as they are. Nothing is stretched to percentiles or to the image's own min-max.
2. Integer samples deeper than 8 bits are mapped linearly from 0..2^b-1 onto 0..255 (rounded half up), where b is
   the depth the container declares (16 for a 16-bit PNG or TIFF, BitsStored for DICOM), lowered to the smallest
   even depth >= 8 that holds the image's largest value: 12-bit data stored in 16-bit words reads as 12-bit, and
   8-bit values stored as v * 257 (the PNG rule) or v * 4095 / 255 come back exactly as v. Signed samples (DICOM
   Pixel Representation 1) map -2^(b-1)..2^(b-1)-1 the same way, b counting the sign bit.
3. DICOM: a window in the file (Window Center / Width, or a VOI LUT Sequence) is applied after the modality LUT with
   pydicom, and the window's output range is mapped onto 0..255: the window is the display the acquiring site chose.
   Without a window, a linear rescale (slope / intercept) does not change the picture and is skipped (a negative
   slope inverts it); a Modality LUT Sequence is applied and its output range mapped. MONOCHROME1 is inverted last.
4. Floating-point samples (32-bit float TIFF) have no declared range: they alone are stretched from their minimum to
   their maximum, and the image says so in its notes.
5. Colour becomes gray with ITU-R 601 luma (Pillow's "L"), after transparency is composited (see `raster`).

Size: the detector reads 224 pixels on the short side, the gate and the app's viewer far fewer than 2048. Images
whose long side exceeds `config.MAX_LOADED_SIDE` (2048 by default) are reduced on reading (JPEG through the decoder's
DCT scaling, everything else after the intensity mapping, with Lanczos), so a 10000x10000 film costs 4 MB once loaded
instead of a float copy of 800 MB. The short side is never taken below 224. Mapping before resizing keeps rule 1
exact at every size: containers holding the same pixels give the same reduced array too.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from medsight import config

#: pixels mapped per step: keeps the float64 working copy of a 10000x10000 image at 8 MB instead of 800 MB
CHUNK_PIXELS = 1 << 20
#: never reduce the short side below the backbone's input size
MIN_SHORT_SIDE = 224


def effective_bits(declared: int, largest: int, smallest: int = 0) -> int:
    """Rule 2: the declared depth, lowered to the smallest even depth >= 8 that holds `largest` (and, for signed
    samples, `smallest`, with a sign bit)."""
    needed = int(largest).bit_length() if smallest >= 0 else max(int(largest), -int(smallest) - 1).bit_length() + 1
    needed = max(8, needed)
    needed += needed % 2
    return max(8, min(int(declared), needed))


def map_rows(rows: Callable[[int, int], np.ndarray], height: int, width: int, lo: float, hi: float,
             transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Map an image onto uint8, a band of rows at a time: `rows(y0, y1)` gives the stored samples of rows y0..y1,
    `transform` (optional) turns them into values whose range is lo..hi, mapped linearly onto 0..255."""
    out = np.empty((height, width), dtype=np.uint8)
    step = max(1, CHUNK_PIXELS // max(width, 1))
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    for y0 in range(0, height, step):
        y1 = min(height, y0 + step)
        band = np.asarray(rows(y0, y1))
        band = transform(band) if transform is not None else band
        band = np.nan_to_num(np.asarray(band, dtype=np.float64), nan=lo, posinf=hi, neginf=lo)
        out[y0:y1] = np.clip(np.floor((band - lo) * scale + 0.5), 0, 255).astype(np.uint8)
    return out


def target_size(width: int, height: int, max_side: int | None = None) -> tuple[int, int]:
    """(width, height) after the size rule: long side at most `max_side`, short side not below 224 (or the original)."""
    max_side = int(max_side or config.MAX_LOADED_SIDE)
    long, short = max(width, height), min(width, height)
    if long <= max_side:
        return width, height
    scale = max(max_side / long, min(1.0, MIN_SHORT_SIDE / max(short, 1)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def reduce_image(img: Image.Image) -> Image.Image:
    """The size rule on a Pillow image (any mode Pillow resizes: L, RGB, RGBA with alpha premultiplied, ...)."""
    size = target_size(*img.size)
    if size == img.size:
        return img
    return img.resize(size, Image.LANCZOS, reducing_gap=3.0)


def reduce_gray(gray: np.ndarray) -> np.ndarray:
    """The size rule on a uint8 HxW array."""
    h, w = gray.shape
    if target_size(w, h) == (w, h):
        return gray
    return np.asarray(reduce_image(Image.fromarray(gray)))


def size_note(original: tuple[int, int], loaded: tuple[int, int]) -> str | None:
    """A plain sentence when the size rule reduced the image (shapes are (rows, columns))."""
    if tuple(original) == tuple(loaded):
        return None
    return (f"The image ({original[1]}x{original[0]} pixels) was reduced to {loaded[1]}x{loaded[0]} when read; "
            f"the detector itself reads 224 pixels on the short side.")
