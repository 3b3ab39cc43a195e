"""Image files: which suffixes count, listing a folder of them, decoding to 8-bit RGB, and hashing a file's bytes.

Decoding (``to_rgb``) scales high bit depths to 8 bits instead of clipping them, and composites
transparent pixels on a background (white unless the caller names another). ``survey`` decodes a set
once, keeping the files that decode, and the notes say once per set what was odd about it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# common image formats PIL cannot open: named as not used, like the ones it opens that we do not read (.gif, .tiff)
OTHER_IMAGE_SUFFIXES = (".heic", ".heif", ".jxl", ".svg", ".exr", ".hdr", ".dng", ".raw")
WHITE = (255, 255, 255)
HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
NAMES_LISTED = 8  # a notice lists this many files, then says how many more

RGB = tuple[int, int, int]


def parse_background(text: str, flag: str) -> RGB:
    """The RGB colour ``text`` names (``white``, ``#rrggbb``...); one-line error naming ``flag`` otherwise."""
    try:
        return ImageColor.getcolor(text, "RGB")
    except ValueError:
        raise StyleBoostError(f"{flag} {text!r}: not a colour (a name such as white or black, or #rrggbb)") from None


def hex_colour(rgb: RGB) -> str:
    """``#rrggbb``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def listed(names: Sequence[str]) -> str:
    """``a, b, c`` (the first ``NAMES_LISTED``, then "and N more")."""
    more = len(names) - NAMES_LISTED
    return ", ".join(names[:NAMES_LISTED]) + (f" and {more} more" if more > 0 else "")


def image_like(path: Path) -> bool:
    """Whether the suffix is an image format (one PIL knows, or a common one it cannot open)."""
    suffix = path.suffix.lower()
    return suffix in Image.registered_extensions() or suffix in OTHER_IMAGE_SUFFIXES


def list_images(folder: str | Path, *, flag: str, main_process: bool = True) -> list[Path]:
    """Image files directly inside ``folder``, sorted; one-line errors for missing or empty folders.

    Files of other image formats (.gif, .tiff...) are not used; one notice names them. Captions and
    other non-image files are passed over without a word."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StyleBoostError(f"{flag} {folder}: folder not found")
    entries = sorted(p for p in folder.iterdir() if p.is_file())
    files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    other = [p.name for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES and image_like(p)]
    if other:
        notice(f"{flag} {folder}: not using {len(other)} file(s) of an image format styleboost does not read "
               f"(it reads {', '.join(IMAGE_SUFFIXES)}): {listed(other)}", main_process=main_process)
    if not files:
        raise StyleBoostError(f"{flag} {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def eight_bit_levels(values: np.ndarray, mode: str) -> np.ndarray:
    """Grey levels 0..255 of a 16-bit, 32-bit int or float image, chosen by the mode and the value range.

    ``I;16*``: the full 16-bit range (``/257``). ``I`` and ``F``: values within 0..255 are taken as
    8-bit, within 0..65535 as 16-bit, and ``F`` within 0..1 as a unit range; anything else (negative
    values, or beyond 16 bits) is stretched from its minimum to its maximum."""
    if mode.startswith("I;16"):
        return values / 257
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if low >= 0:
        for top in ((1.0,) if mode == "F" else ()) + (255.0, 65535.0):
            if high <= top:
                return values * (255 / top)
    return (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)


def to_eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float image as 8-bit ``L`` (``LA`` when it names a transparent value); others as they are."""
    if image.mode not in HIGH_BIT_MODES:
        return image
    values = np.nan_to_num(np.asarray(image).astype(np.float64))
    grey = Image.fromarray(np.clip(np.rint(eight_bit_levels(values, image.mode)), 0, 255).astype(np.uint8))
    key = image.info.get("transparency")
    if isinstance(key, (int, float)):
        grey.putalpha(Image.fromarray(np.where(values == key, 0, 255).astype(np.uint8)))
    return grey


def with_alpha(image: Image.Image) -> Image.Image | None:
    """The image as RGBA when it has an alpha channel or a transparent colour/index, else None.

    Palette transparency goes straight to RGBA, which is what PIL's warning about it asks for."""
    image = to_eight_bit(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA")
    return None


def to_rgb(image: Image.Image, background: RGB = WHITE) -> Image.Image:
    """8-bit RGB: high bit depths scaled (``eight_bit_levels``), transparent pixels composited on ``background``."""
    rgba = with_alpha(image)
    if rgba is None:
        return to_eight_bit(image).convert("RGB")
    return Image.alpha_composite(Image.new("RGBA", image.size, (*background, 255)), rgba).convert("RGB")


def open_rgb(path: Path, background: RGB = WHITE) -> Image.Image:
    """Decode an image as 8-bit RGB (see ``to_rgb``), applying its EXIF orientation."""
    with Image.open(path) as img:
        return to_rgb(ImageOps.exif_transpose(img), background)


def has_transparency(image: Image.Image) -> bool:
    """Whether some pixel is not fully opaque."""
    rgba = with_alpha(image)
    return rgba is not None and rgba.getchannel("A").getextrema()[0] < 255


@dataclass(frozen=True)
class ImageInfo:
    """What decoding a file once tells about it."""

    path: Path
    size: tuple[int, int]  # (width, height) as stored
    transparent: bool  # some pixel is not fully opaque


def survey(files: Sequence[Path], *, flag: str, main_process: bool = True) -> list[ImageInfo]:
    """Decode every file once: keep those that decode, naming each one skipped; fail if none is left."""
    good = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                good.append(ImageInfo(path, img.size, has_transparency(img)))
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            notice(f"skipping {path}: it does not decode as an image ({type(err).__name__})", main_process=main_process)
    if not good:
        raise StyleBoostError(f"{flag}: none of the {len(files)} image(s) could be decoded")
    return good


def transparency_note(infos: Sequence[ImageInfo], background: RGB = WHITE, setting: str | None = None) -> str | None:
    """One sentence on the images with transparent pixels and the background they are composited on."""
    count = sum(info.transparent for info in infos)
    if not count:
        return None
    how = f" (set by {setting})" if setting else ""
    return f"{count} of {len(infos)} image(s) have transparent pixels: composited on {hex_colour(background)}{how}"


def small_images_note(infos: Sequence[ImageInfo], resolution: int | None) -> str | None:
    """One sentence on the images whose short side is under half of ``resolution``: upscaled more than 2x."""
    small = [info for info in infos if resolution and 2 * min(info.size) < resolution]
    if not small:
        return None
    smallest = min(small, key=lambda info: min(info.size))
    width, height = smallest.size
    return (f"{len(small)} of {len(infos)} image(s) have a short side under {resolution / 2:g} px, half the "
            f"training resolution {resolution}, and are upscaled more than 2x (smallest: {smallest.path.name}, "
            f"{width}x{height})")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, for the run manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
