"""PNG, JPEG, TIFF, GIF, BMP and the other formats Pillow reads -> `LoadedImage`, under the rules of `intensity`.

Transparency: a radiograph has no "transparent": the areas are composited onto black, which on a radiograph means no
attenuation (air outside the body, or empty film), the way a radiology viewer shows pixels without signal. Composited
onto white, an empty area would read as dense bone or metal. The image's `notes` say how much was transparent.

Extra frames (an animated GIF / PNG / WebP, a multi-page TIFF): the first frame is read, and the notes say so.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from medsight import config
from medsight.imaging.intensity import effective_bits, map_rows, reduce_image, size_note, target_size
from medsight.imaging.loaded import ImageLoadError, LoadedImage, exception_sentence

_INT_MODES = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"II*\x00": "TIFF",
               b"MM\x00*": "TIFF", b"BM": "BMP", b"RIFF": "WebP"}
_OTHER_FILES = {b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive (or an Office document)",
                b"\x1f\x8b": "a gzip archive", b"\x7fELF": "a program", b"MZ": "a Windows program"}


def too_many_pixels(name: str, width: int | None, height: int | None, pixels: int | None = None) -> ImageLoadError:
    limit = config.MAX_IMAGE_PIXELS
    pixels = pixels if pixels is not None else (width or 0) * (height or 0)
    size = (f"{width}x{height} pixels ({pixels / 1e6:.0f} megapixels), over" if width and height else
            f"{pixels / 1e6:.0f} megapixels, over" if pixels else "more pixels than")
    return ImageLoadError(f"{name}: the image declares {size} the {limit / 1e6:.0f}-megapixel safety limit, "
                          f"so it was not decoded (it may be a decompression bomb).")


def check_pixels(name: str, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageLoadError(f"{name}: the file declares an empty image ({width}x{height} pixels).")
    if width * height > config.MAX_IMAGE_PIXELS:
        raise too_many_pixels(name, width, height)


def not_an_image(data: bytes, name: str) -> ImageLoadError:
    """The error for bytes no reader accepted: say what they look like."""
    for magic, fmt in _SIGNATURES.items():
        if data.startswith(magic):
            return ImageLoadError(f"{name}: not a readable {fmt} image: its header is damaged or cut short.")
    for magic, what in _OTHER_FILES.items():
        if data.startswith(magic):
            return ImageLoadError(f"{name}: this is {what}, not an image; MedSight reads PNG, JPEG, TIFF, GIF, BMP and DICOM files.")
    if _looks_like_text(data):
        return ImageLoadError(f"{name}: this is a text file (perhaps renamed), not an image; MedSight reads PNG, JPEG, "
                              f"TIFF, GIF, BMP and DICOM files.")
    return ImageLoadError(f"{name}: not a readable image: the file is not PNG, JPEG, TIFF, GIF, BMP or DICOM, or it is damaged.")


def _looks_like_text(data: bytes) -> bool:
    head = data[:2048]
    for enc in ("utf-8", "utf-16"):
        try:
            text = head.decode(enc)
        except UnicodeDecodeError:
            # a multi-byte character cut at the sample's end
            try:
                text = head[:-3].decode(enc)
            except UnicodeDecodeError:
                continue
        if text and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text):
            return True
    return False


def _damaged(fmt: str, name: str, exc: BaseException) -> ImageLoadError:
    detail = exception_sentence(exc)
    if "MAX_TEXT_CHUNK" in detail or "too large" in detail.lower():
        return ImageLoadError(f"{name}: the {fmt} file holds a compressed block that expands beyond the safety limit, "
                              f"so it was not read (it may be a decompression bomb).")
    return ImageLoadError(f"{name}: the {fmt} file is damaged or cut short, so its pixels cannot be read ({detail}).")


def read_raster(data: bytes, name: str) -> LoadedImage:
    Image.MAX_IMAGE_PIXELS = config.MAX_IMAGE_PIXELS  # Pillow's own guard, at twice this, stops decoding bigger ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with a clearer message
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise _bomb(name, exc) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            if "MAX_TEXT_CHUNK" in str(exc):
                raise _damaged("PNG", name, exc) from None
            raise not_an_image(data, name) from None
        with img:
            fmt = img.format or "image"
            check_pixels(name, *img.size)
            try:
                return _decode(img, fmt)
            except Image.DecompressionBombError as exc:
                raise _bomb(name, exc) from None
            except MemoryError:
                raise ImageLoadError(f"{name}: the image is too large to decode in the memory available.") from None
            except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, ArithmeticError) as exc:
                raise _damaged(fmt, name, exc) from None


def _bomb(name: str, exc: BaseException) -> ImageLoadError:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return too_many_pixels(name, None, None, int(found.group(1)) if found else None)


def _frames_note(img: Image.Image, fmt: str) -> str | None:
    if fmt in ("TIFF", "MPO"):
        n = int(getattr(img, "n_frames", 1) or 1)
        if n > 1:
            return f"The {fmt} file holds {n} pages (frames); only the first was read."
        return None
    if getattr(img, "is_animated", False):  # GIF / APNG / WebP: one seek, without counting every frame
        img.seek(0)
        return f"The {fmt} file is animated (several frames); only the first frame was read."
    return None


def _decode(img: Image.Image, fmt: str) -> LoadedImage:
    notes = [n for n in [_frames_note(img, fmt)] if n]
    mode = img.mode
    original = (img.size[1], img.size[0])
    if fmt == "JPEG" and target_size(*img.size) != img.size:
        img.draft(mode, target_size(*img.size))  # DCT scaling: decode a huge JPEG at 1/2, 1/4 or 1/8 size
    img.load()
    colourfulness, bit_depth = 0.0, 8
    if mode in _INT_MODES or mode == "F":
        gray, bit_depth, note = _deep_gray(img, mode)
        notes += [note] if note else []
        reduced = reduce_image(Image.fromarray(gray))
    elif mode in ("1", "L"):
        reduced = reduce_image(img.convert("L"))
    else:
        img, note = _flatten_alpha(img) if _has_transparency(img) else (img, None)
        notes += [note] if note else []
        reduced, colourfulness = colour_to_gray(img)
    gray = np.ascontiguousarray(np.asarray(reduced, dtype=np.uint8))
    note = size_note(original, gray.shape)
    notes += [note] if note else []
    return LoadedImage(gray, fmt, original, bit_depth, colourfulness, {"mode": mode}, notes)


def _deep_gray(img: Image.Image, mode: str) -> tuple[np.ndarray, int, str | None]:
    """16/32-bit integer or float samples -> uint8 (rules 2 and 4 of `intensity`), a band of rows at a time."""
    w, h = img.size
    lo, hi = img.getextrema()
    note = None
    if mode == "F" or lo < 0:
        kind = "floating-point" if mode == "F" else "signed"
        note = f"The image holds {kind} samples without a declared range; they were stretched from their minimum to their maximum."
        bits = 32
    else:
        bits = effective_bits(_INT_MODES[mode], hi)
        lo, hi = 0, 2**bits - 1
    return map_rows(lambda y0, y1: np.asarray(img.crop((0, y0, w, y1))), h, w, lo, hi), min(bits, _INT_MODES.get(mode, 32)), note


def _has_transparency(img: Image.Image) -> bool:
    if img.mode in _ALPHA_MODES:
        return True
    return img.mode in ("P", "L", "RGB") and "transparency" in img.info


def _flatten_alpha(img: Image.Image) -> tuple[Image.Image, str | None]:
    """Composite onto black (see the module docstring), after the size rule (Pillow resizes RGBA premultiplied)."""
    rgba = reduce_image(img.convert("RGBA"))
    alpha = np.asarray(rgba.getchannel("A"))
    share = float((alpha < 255).mean())
    flat = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    flat.alpha_composite(rgba)
    if share == 0:
        return flat.convert("RGB"), None
    pct = f"{100 * share:.0f}%" if share >= 0.005 else "under 1%"
    return flat.convert("RGB"), (f"{pct} of the image was transparent or partly transparent; those pixels were laid "
                                 f"on black, which on a radiograph means no attenuation (air or empty film).")


def colour_to_gray(img: Image.Image) -> tuple[Image.Image, float]:
    """Any colour mode -> (reduced "L" image, mean HSV saturation 0-1 for the gate)."""
    rgb = reduce_image(img.convert("RGB"))
    saturation = np.asarray(rgb.convert("HSV"))[..., 1]
    return rgb.convert("L"), float(saturation.mean(dtype=np.float64) / 255.0)
