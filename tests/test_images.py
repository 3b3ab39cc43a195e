"""Decoding image files to 8-bit RGB: high bit depths scaled, transparency composited on a background,
the image formats a folder holds but training does not read named, and bad colours refused in one line."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import list_images, open_rgb, parse_background

BLACK = (0, 0, 0)
RED_TRANSPARENT = (255, 0, 0, 0)
BLUE = (0, 0, 255, 255)


def saved(image: Image.Image, path: Path, expected_mode: str) -> Path:
    """``image`` written to ``path``; checks the file reads back in the mode the test is about."""
    image.save(path)
    with Image.open(path) as back:
        assert back.mode == expected_mode
    return path


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path):
    values = np.array([[0, 32768], [65535, 1000]], np.uint16)
    path = saved(Image.fromarray(values), tmp_path / "deep.png", "I;16")
    rgb = open_rgb(path)
    assert rgb.mode == "RGB"
    assert [rgb.getpixel(xy) for xy in ((0, 0), (1, 0), (0, 1), (1, 1))] == [BLACK, (128,) * 3, (255,) * 3, (4,) * 3]


@pytest.mark.parametrize("mode, values, expected", [
    ("I;16B", np.array([[0, 32768]], np.uint16), [0, 128]),  # big-endian 16-bit: full range, /257
    ("I", np.array([[0, 32768]], np.int32), [0, 128]),  # 32-bit int holding 16-bit values
    ("I", np.array([[0, 200]], np.int32), [0, 200]),  # 32-bit int holding 8-bit values: kept
    ("I", np.array([[100_000, 200_000]], np.int32), [0, 255]),  # beyond 16 bits: stretched min..max
    ("F", np.array([[0.0, 0.5]], np.float32), [0, 128]),  # float in 0..1
    ("F", np.array([[0.0, 100.0]], np.float32), [0, 100]),  # float in 0..255
])
def test_32_bit_and_float_images_are_scaled_by_their_value_range(tmp_path, mode, values, expected):
    if mode == "I;16B":  # PIL's convert("I;16B") clips to 255, so the bytes are laid out by hand
        image = Image.frombytes(mode, values.shape[::-1], values.astype(">u2").tobytes())
    else:
        image = Image.fromarray(values).convert(mode)
    path = saved(image, tmp_path / "deep.tif", mode)
    rgb = open_rgb(path)
    assert [rgb.getpixel((x, 0)) for x in range(2)] == [(v,) * 3 for v in expected]


def test_transparent_rgba_pixels_take_the_background_not_the_colour_they_store(tmp_path):
    image = Image.new("RGBA", (2, 1), RED_TRANSPARENT)
    image.putpixel((1, 0), BLUE)
    path = saved(image, tmp_path / "cutout.png", "RGBA")
    assert [open_rgb(path).getpixel((x, 0)) for x in range(2)] == [(255, 255, 255), (0, 0, 255)]
    assert [open_rgb(path, background=BLACK).getpixel((x, 0)) for x in range(2)] == [BLACK, (0, 0, 255)]
    half = saved(Image.new("LA", (1, 1), (200, 128)), tmp_path / "half.png", "LA")
    assert open_rgb(half, background=BLACK).getpixel((0, 0)) == (100,) * 3  # alpha-blended


def test_a_palette_png_with_a_transparent_index_is_composited_without_a_pil_warning(tmp_path):
    image = Image.new("P", (3, 1), 0)
    image.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 759)
    image.putpixel((1, 0), 1)
    image.putpixel((2, 0), 2)
    image.info["transparency"] = bytes([0, 255, 128])  # per index: red transparent, blue opaque, green half
    path = saved(image, tmp_path / "palette.png", "P")
    with Image.open(path) as back:
        assert isinstance(back.info["transparency"], bytes)  # the case PIL warns about
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb = open_rgb(path)
    assert [str(w.message) for w in caught] == []
    assert [rgb.getpixel((x, 0)) for x in range(3)] == [(255, 255, 255), (0, 0, 255), (127, 255, 127)]
    assert open_rgb(path, background=(10, 20, 30)).getpixel((0, 0)) == (10, 20, 30)


def test_image_files_training_does_not_read_are_named_once_and_other_files_are_not(tmp_path, capsys):
    for name in ("a.png", "b.png", "c.gif", "d.TIFF"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    for name in ("a.txt", "notes.md"):
        (tmp_path / name).write_text("a caption")
    assert [p.name for p in list_images(tmp_path, flag="--styleref_dir")] == ["a.png", "b.png"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "c.gif" in lines[0] and "d.TIFF" in lines[0] and "--styleref_dir" in lines[0]
    assert "a.txt" not in lines[0] and "notes.md" not in lines[0]


def test_a_bad_background_colour_is_one_line_naming_the_flag():
    assert parse_background("white", "--image_background") == (255, 255, 255)
    assert parse_background("#102030", "--image_background") == (16, 32, 48)
    with pytest.raises(StyleBoostError) as err:
        parse_background("whit", "--image_background")
    assert str(err.value).startswith("--image_background 'whit'") and "\n" not in str(err.value)


def test_what_decoded_before_still_decodes_cmyk_webp_grey_exif_rotated_and_misnamed(tmp_path):
    """Regression guard: these decoded before the bit-depth and transparency handling, and still do."""
    Image.new("CMYK", (4, 2), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("RGB", (4, 2), (0, 0, 255)).save(tmp_path / "blue.webp", lossless=True)
    Image.new("L", (4, 2), 77).save(tmp_path / "grey.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees to display
    Image.new("RGB", (4, 2), (0, 255, 0)).save(tmp_path / "rotated.jpg", exif=exif)
    Image.new("RGB", (4, 2), (255, 255, 0)).save(tmp_path / "jpeg-named.png", format="JPEG")
    decoded = {path.name: open_rgb(path) for path in sorted(tmp_path.iterdir())}
    assert {name: image.mode for name, image in decoded.items()} == dict.fromkeys(decoded, "RGB")
    assert decoded["rotated.jpg"].size == (2, 4)
    assert decoded["blue.webp"].getpixel((0, 0)) == (0, 0, 255)
    assert decoded["grey.png"].getpixel((0, 0)) == (77, 77, 77)
    assert max(abs(a - b) for a, b in zip(decoded["cmyk.jpg"].getpixel((1, 1)), (255, 0, 0))) < 8
    assert max(abs(a - b) for a, b in zip(decoded["jpeg-named.png"].getpixel((1, 1)), (255, 255, 0))) < 8
