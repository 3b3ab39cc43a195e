"""Image files: which suffixes count, listing a folder of them, decoding, and hashing a file's bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageOps, UnidentifiedImageError

from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")



def list_images(folder: str | Path, *, flag: str) -> list[Path]:
    """Image files directly inside ``folder``, sorted; one-line errors for missing or empty folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StyleBoostError(f"{flag} {folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise StyleBoostError(f"{flag} {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def open_rgb(path: Path) -> Image.Image:
    """Decode an image as RGB, applying its EXIF orientation."""
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


def decodable(files: Sequence[Path], *, flag: str) -> list[Path]:
    """Keep the images that decode; name each one skipped; fail if none is left."""
    good = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
            good.append(path)
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            notice(f"skipping {path}: it does not decode as an image ({type(err).__name__})")
    if not good:
        raise StyleBoostError(f"{flag}: none of the {len(files)} image(s) could be decoded")
    return good


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, for the run manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
