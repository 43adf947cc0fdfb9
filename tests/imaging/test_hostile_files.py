"""A corpus of hostile and unusual files, generated here from a real radiograph (nothing from ../shared is written
into the repo): each either loads with the right pixels and a note saying what was done, or gives one
`ImageLoadError` whose whole message is one readable sentence containing the expected words."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cxr_containers import dicom, png8, raster, to_bits
from medsight.imaging import ImageLoadError, load_image


@pytest.fixture(scope="module")
def film(real_radiographs):
    with Image.open(real_radiographs[0][0]) as im:
        return np.asarray(im.convert("L"))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png(width: int, height: int, idat: bytes, bit_depth: int = 8, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_bomb(side: int = 12_000) -> bytes:
    """A valid 8-bit PNG of side x side black pixels (144 megapixels): 600 KB that inflate to 144 MB."""
    comp = zlib.compressobj(1)
    row = b"\x00" * (side + 1)
    body = b"".join(comp.compress(row * 500) for _ in range(side // 500)) + comp.flush()
    return _png(side, side, body)


def huge_header_png() -> bytes:
    """An IHDR declaring 100000 x 100000 16-bit pixels over a few bytes of data."""
    return _png(100_000, 100_000, zlib.compress(b"\x00" * 1000), bit_depth=16)


def text_chunk_bomb(g) -> bytes:
    """A real radiograph PNG with a zTXt chunk that inflates to 64 MB (Pillow's text limit is 1 MB)."""
    good = png8(g)
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (64 << 20), 9))
    return good[:33] + ztxt + good[33:]


def half_transparent(g) -> bytes:
    alpha = np.full(g.shape, 255, np.uint8)
    alpha[:, : g.shape[1] // 2] = 128
    return raster(np.dstack([g, g, g, alpha]), "PNG")


def animated_gif(g) -> bytes:
    buf = io.BytesIO()
    frames = [Image.fromarray(g), Image.fromarray(255 - g), Image.fromarray(g[::-1].copy())]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def multipage_tiff(g) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(g).save(buf, "TIFF", save_all=True, append_images=[Image.fromarray(255 - g)])
    return buf.getvalue()


def dicom_without_pixels(g) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom(g)))
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def dicom_huge_header(g) -> bytes:
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom(g)))
    ds.Rows, ds.Columns = 60_000, 60_000
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def dicom_mpeg2(g) -> bytes:
    """Pixel data labelled with a video transfer syntax (MPEG2) that no pixel-data plugin decodes."""
    import pydicom
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(io.BytesIO(dicom(g)))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 64])
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


ERRORS = {  # name -> (bytes from the film, words the message must hold)
    "zero_bytes.png": (lambda g: b"", "empty"),
    "notes_renamed.png": (lambda g: "Patient reports cough and fever for three days.\n".encode() * 20, "text file"),
    "utf16_note_renamed.jpg": (lambda g: "Chest pain on exertion.\r\n".encode("utf-16") * 20, "text file"),
    "report_renamed.png": (lambda g: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n" + bytes(range(256)) * 4, "PDF document"),
    "random_bytes.png": (lambda g: np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a readable image"),
    "png_header_only.png": (lambda g: png8(g)[:40], "not a readable PNG"),
    "truncated.png": (lambda g: png8(g)[: len(png8(g)) // 2], "damaged or cut short"),
    "truncated.jpg": (lambda g: raster(g, "JPEG", quality=95)[:3000], "damaged or cut short"),
    "truncated.tif": (lambda g: raster(g, "TIFF")[: 20_000], "damaged or cut short"),
    "bomb.png": (lambda g: png_bomb(), "safety limit"),
    "huge_header.png": (lambda g: huge_header_png(), "safety limit"),
    "text_chunk_bomb.png": (text_chunk_bomb, "expands beyond the safety limit"),
    "truncated.dcm": (lambda g: dicom(to_bits(g, 16))[:60_000], "cut short"),
    "truncated_jpeg_lossless.dcm": (lambda g: dicom(to_bits(g, 12), 12, syntax="jpeg-lossless")[:20_000], "cut short"),
    "no_pixels.dcm": (dicom_without_pixels, "holds no image"),
    "huge_header.dcm": (dicom_huge_header, "safety limit"),
    "mpeg2.dcm": (dicom_mpeg2, "cannot decode"),
    "garbage_after_preamble.dcm": (lambda g: b"\x00" * 128 + b"DICM" + b"\xff" * 64, "DICOM"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_hostile_file_gives_one_clear_sentence(film, name):
    make, words = ERRORS[name]
    with pytest.raises(ImageLoadError) as info:
        load_image(make(film), name)
    msg = str(info.value)
    assert words in msg, msg
    assert msg.startswith(f"{name}: ") and msg.endswith((".", ")")) and "\n" not in msg
    assert "Traceback" not in msg and not msg.rstrip(".").endswith(("...", "…")), msg


def test_paths_that_are_not_files(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageLoadError, match="folder, not an image file"):
        load_image(tmp_path)


def test_half_transparent_png_is_laid_on_black_and_says_so(film):
    img = load_image(half_transparent(film), "alpha.png")
    half = film.shape[1] // 2
    # alpha 128 over black: about half the value; the opaque half is untouched
    assert np.array_equal(img.pixels[:, half:], film[:, half:])
    assert np.abs(img.pixels[:, :half].astype(int) - film[:, :half].astype(int) * 128 / 255).max() <= 1
    assert len(img.notes) == 1 and "transparent" in img.notes[0] and "black" in img.notes[0] and "50%" in img.notes[0]


def test_fully_opaque_alpha_needs_no_note(film):
    img = load_image(raster(np.dstack([film, np.full(film.shape, 255, np.uint8)]), "PNG"), "opaque.png")
    assert img.notes == [] and np.array_equal(img.pixels, film)


@pytest.mark.parametrize("make, fmt, words", [(animated_gif, "GIF", "only the first frame"),
                                              (multipage_tiff, "TIFF", "2 pages")])
def test_extra_frames_first_one_is_read_and_noted(film, make, fmt, words):
    img = load_image(make(film), f"frames.{fmt.lower()}")
    assert img.source_format == fmt and any(words in n for n in img.notes), img.notes
    assert np.abs(img.pixels.astype(int) - film).mean() < 2  # the first frame (GIF's palette may round a little)


def test_multiframe_dicom_first_frame(film):
    img = load_image(dicom(to_bits(film, 12), 12, frames=3), "cine.dcm")
    assert np.array_equal(img.pixels, film) and any("3 frames" in n for n in img.notes)


def test_16bit_monochrome1_dicom_loads_inverted(film):
    img = load_image(dicom(65535 - to_bits(film, 16), photometric="MONOCHROME1"), "m1.dcm")
    assert np.array_equal(img.pixels, film) and img.bit_depth == 16


@pytest.mark.parametrize("headerless", ["0002", "0008"])
def test_headerless_dicom(film, headerless):
    data = dicom(to_bits(film, 16), headerless=headerless, syntax="implicit" if headerless == "0008" else "explicit")
    assert data[128:132] != b"DICM"
    img = load_image(data, "bare.dcm")
    assert img.source_format == "DICOM" and np.array_equal(img.pixels, film)
