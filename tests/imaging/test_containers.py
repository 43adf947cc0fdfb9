"""One intensity rule for every container: the same 8-bit pixels of real radiographs, written as PNG 8/16-bit, TIFF
8/16-bit and DICOM (8, 12, 16 bits; JPEG Lossless, JPEG-LS, RLE, JPEG 2000; headerless), load to the same array."""

import numpy as np
import pytest
from PIL import Image

from cxr_containers import containers, dicom, png8, png16, raster, tiff16, to_bits
from medsight import config
from medsight.imaging import load_image


def _gray(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


@pytest.fixture(scope="module")
def films(real_radiographs):
    return [(path.name, _gray(path)) for path, _ in real_radiographs]


def test_same_pixels_same_array_in_every_container(films):
    for film, g in films:
        for kind, data in containers(g).items():
            img = load_image(data, f"{film}:{kind}")
            assert img.pixels.dtype == np.uint8 and img.notes == [], (film, kind, img.notes)
            assert np.array_equal(img.pixels, g), f"{film} as {kind}: max |diff| {np.abs(img.pixels.astype(int) - g).max()}"


@pytest.mark.parametrize("kind, expected", [
    ("dicom12-jpeg-lossless", "JPEG Lossless"), ("dicom16-jpeg-lossless", "JPEG Lossless"),
    ("dicom12-jpeg-lossless-p14", "JPEG Lossless"), ("dicom12-jpeg-ls", "JPEG-LS"), ("dicom16-rle", "RLE"),
    ("dicom12-j2k", "JPEG 2000"),
])
def test_compressed_dicom_decodes_to_the_uncompressed_pixels(films, kind, expected):
    import io

    import pydicom

    film, g = films[0]
    bits = int(kind[5:7])
    syntax = kind.split("-", 1)[1]
    data = dicom(to_bits(g, bits), bits_stored=bits, syntax=syntax)
    assert expected in pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID.name
    assert np.array_equal(load_image(data, kind).pixels, g)


def test_full_range_window_and_monochrome1_keep_the_pixels(films):
    _, g = films[0]
    stored = to_bits(g, 12)
    windowed = load_image(dicom(stored, bits_stored=12, window=(2048, 4096))).pixels
    assert np.array_equal(windowed, g)
    inverted = load_image(dicom(4095 - stored, bits_stored=12, photometric="MONOCHROME1")).pixels
    assert np.array_equal(inverted, g)
    # a linear rescale without a window does not change the picture
    assert np.array_equal(load_image(dicom(stored, bits_stored=12, slope=2.0, intercept=-1024)).pixels, g)


def test_signed_dicom_maps_by_its_bit_depth(films):
    _, g = films[0]
    signed = (to_bits(g, 12).astype(np.int32) - 2048).astype(np.int16)  # -2048..2047, Pixel Representation 1
    assert np.array_equal(load_image(dicom(signed, bits_stored=16)).pixels, g)


def test_dicom_window_is_honoured(films):
    _, g = films[0]
    stored = to_bits(g, 12)
    narrow = load_image(dicom(stored, bits_stored=12, window=(2048, 1024))).pixels.astype(int)
    # DICOM's linear window (PS3.3 C.11.2.1.2.1): a quarter of the range spread over 0..255, the rest saturated
    expected = np.clip(np.floor(((stored - 2047.5) / 1023 + 0.5) * 255 + 0.5), 0, 255)
    assert np.abs(narrow - expected).max() <= 1
    assert (narrow[stored < 1500] == 0).all() and (narrow[stored > 2600] == 255).all()


def test_jpeg_is_close_but_lossy(films):
    _, g = films[0]
    px = load_image(raster(g, "JPEG", quality=100)).pixels.astype(int)
    assert px.shape == g.shape and np.abs(px - g).mean() < 1.5


def test_large_images_are_reduced_identically_in_every_container(films):
    _, g = films[0]
    big = np.asarray(Image.fromarray(g).resize((2600, 3000), Image.BILINEAR))  # 3000 rows x 2600 columns
    arrays = {kind: load_image(data, kind) for kind, data in [
        ("png8", png8(big)), ("png16", png16(big)), ("tiff16", tiff16(big)),
        ("dicom16", dicom(to_bits(big, 16))), ("dicom12-jpeg-lossless", dicom(to_bits(big, 12), 12, syntax="jpeg-lossless"))]}
    ref = arrays["png8"]
    assert ref.pixels.shape == (config.MAX_LOADED_SIDE, round(2600 * config.MAX_LOADED_SIDE / 3000))
    assert ref.original_shape == (3000, 2600)
    assert any("reduced to" in n for n in ref.notes)
    for kind, img in arrays.items():
        assert np.array_equal(img.pixels, ref.pixels), kind
    # the reduction is a Lanczos resize of the same pixels: close to what Pillow gives directly
    direct = np.asarray(Image.fromarray(big).resize(ref.pixels.shape[::-1], Image.LANCZOS)).astype(int)
    assert np.abs(direct - ref.pixels).mean() < 1.0


def test_huge_jpeg_is_decoded_at_reduced_size(films):
    _, g = films[0]
    big = np.asarray(Image.fromarray(g).resize((6000, 6000), Image.BILINEAR))
    img = load_image(raster(big, "JPEG", quality=90), "big.jpg")
    assert img.pixels.shape == (2048, 2048) and img.original_shape == (6000, 6000)
    small = np.asarray(Image.fromarray(big).resize((2048, 2048), Image.LANCZOS)).astype(int)
    assert np.abs(small - img.pixels).mean() < 3


def test_short_side_is_not_reduced_below_the_backbone_input():
    wide = np.tile(np.arange(256, dtype=np.uint8), (300, 40))  # 300 x 10240
    img = load_image(png8(wide), "wide.png")
    assert min(img.pixels.shape) == 224
