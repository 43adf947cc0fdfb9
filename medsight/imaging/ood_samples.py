"""Images that are not frontal chest radiographs, to measure the out-of-distribution gate on.

Real non-CXR images come from sample data that ships inside installed packages: scikit-image's `skimage.data`
(photographs, microscopy, scanned text, a CT phantom; a dev/test dependency) and pydicom's bundled test files
(real CT, MR and nuclear-medicine slices and ultrasound frames, read through our own DICOM loader). The rest are
transforms of real radiographs (blank, inverted, rotated, a lateral-like hemithorax stretch); we have no real
lateral films, so that kind is only a stand-in. Nothing here is written to disk.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from medsight.imaging.load import LoadedImage, load_image

# skimage.data names by kind (only images shipped in the wheel: no download needed)
_SKIMAGE_COLOUR = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "logo")
_SKIMAGE_GRAY = ("camera", "moon", "coins", "clock", "brick", "grass", "gravel", "cell", "microaneurysms")
_SKIMAGE_DOCUMENT = ("page", "text")
# pydicom test files that hold one real greyscale cross-sectional / nuclear-medicine slice, and colour ultrasound
_PYDICOM_SLICES = ("CT_small.dcm", "693_J2KI.dcm", "J2K_pixelrep_mismatch.dcm", "MR_small.dcm", "examples_overlay.dcm",
                   "JPEG2000.dcm")
_PYDICOM_ULTRASOUND = ("examples_rgb_color.dcm", "examples_palette.dcm", "examples_jpeg2k.dcm")


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _skimage(name: str) -> np.ndarray:
    from skimage import data

    arr = getattr(data, name)()
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    return arr


def _pydicom_file(name: str) -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files" / name


def _screenshots(n: int = 3) -> list[np.ndarray]:
    """Rendered text pages with a title bar, like a screenshot of a document or report (synthetic)."""
    from medsight import config

    words = (config.REPO_ROOT / "medsight" / "imaging" / "load.py").read_text().split()
    out = []
    for k in range(n):
        img = Image.new("RGB", (800, 600), (255, 255, 255))
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, 800, 28], fill=(60, 60, 70))
        d.text((10, 8), f"report_{k}.pdf - Viewer", fill=(255, 255, 255))
        y, i = 40, 40 * k
        while y < 590:
            d.text((20, y), " ".join(words[i : i + 14]), fill=(20, 20, 20))
            y, i = y + 14, i + 14
        out.append(np.asarray(img.convert("L")) if k % 2 else np.asarray(img))
    return out


def package_samples() -> dict[str, list[tuple[str, LoadedImage]]]:
    """Real non-CXR images by kind: {kind: [(name, LoadedImage)]}. Kinds whose package is missing are empty."""
    kinds: dict[str, list[tuple[str, LoadedImage]]] = {"colour_photo": [], "gray_photo": [], "ct_mr_slice": [],
                                                       "ultrasound": [], "document": []}
    try:
        import skimage.data  # noqa: F401

        for n in _SKIMAGE_COLOUR:
            kinds["colour_photo"].append((n, load_image(_png_bytes(_skimage(n)), n)))
        for n in _SKIMAGE_GRAY:
            kinds["gray_photo"].append((n, load_image(_png_bytes(_skimage(n)), n)))
        for n in ("astronaut", "chelsea", "coffee", "rocket"):  # colour photos saved as grayscale: no colour cue
            g = np.asarray(Image.fromarray(_skimage(n)).convert("L"))
            kinds["gray_photo"].append((f"{n}_gray", load_image(_png_bytes(g), n)))
        phantom = (np.clip(_skimage("shepp_logan_phantom"), 0, 1) * 255).astype(np.uint8)
        kinds["ct_mr_slice"].append(("shepp_logan_phantom", load_image(_png_bytes(phantom), "phantom")))
        for n in _SKIMAGE_DOCUMENT:
            kinds["document"].append((n, load_image(_png_bytes(_skimage(n)), n)))
    except ImportError:
        pass
    for n in _PYDICOM_SLICES:
        if _pydicom_file(n).exists():
            kinds["ct_mr_slice"].append((n, load_image(_pydicom_file(n))))
    for n in _PYDICOM_ULTRASOUND:
        if _pydicom_file(n).exists():
            try:
                kinds["ultrasound"].append((n, load_image(_pydicom_file(n))))
            except ValueError:  # multi-frame or undecodable here: not part of the set
                pass
    for i, s in enumerate(_screenshots()):
        kinds["document"].append((f"screenshot_{i}", load_image(_png_bytes(s), f"screenshot_{i}")))
    return kinds


# -- transforms of real radiographs --------------------------------------------------------------------------

def blank(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A nearly uniform image at the film's mean grey level, with a little noise (an empty or failed exposure)."""
    noise = rng.normal(0, 3, g.shape)
    return np.clip(g.mean() + noise, 0, 255).astype(np.uint8)


def inverted(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (255 - g).astype(np.uint8)


def rotated(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotated by 90 degrees either way (a film saved on its side)."""
    return np.ascontiguousarray(np.rot90(g, 1 if rng.random() < 0.5 else -1))


def upside_down(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(g[::-1])


def lateral_like(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One hemithorax stretched to full width: one lung field with the spine at an edge (a stand-in for a lateral
    view; we have no real lateral films)."""
    h, w = g.shape
    half = g[:, : w // 2] if rng.random() < 0.5 else g[:, w // 2 :][:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(half)).resize((w, h), Image.BICUBIC))


TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "blank": blank, "inverted": inverted, "rotated_90": rotated, "upside_down": upside_down, "lateral_like": lateral_like,
}


def transformed(images: list[LoadedImage], kind: str, seed: int = 0) -> list[LoadedImage]:
    rng = np.random.default_rng(seed)
    fn = TRANSFORMS[kind]
    out = []
    for im in images:
        g = fn(im.pixels, rng)
        out.append(LoadedImage(g, im.source_format, g.shape, 8, 0.0, {"transform": kind}))
    return out
