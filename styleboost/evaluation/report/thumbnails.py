"""Thumbnails of the report's images: small JPEG data URIs, so the HTML page embeds every image it shows."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from PIL import Image, ImageOps

THUMB_SIZE = 96
THUMB_QUALITY = 80


def thumbnail_data_uri(path: str | Path, size: int = THUMB_SIZE, quality: int = THUMB_QUALITY) -> str | None:
    """A JPEG data URI of the image, ``size`` px on its long side; None when it is missing or unreadable."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            image = ImageOps.exif_transpose(image)
            image.thumbnail((size, size))
            rgb = on_white(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def on_white(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited over white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


@dataclass(frozen=True)
class StyleRefThumb:
    file: str
    css_class: str
    data_uri: str | None


def styleref_thumbnails(report: Mapping[str, Any]) -> list[StyleRefThumb]:
    styleref = report.get("styleref") or {}
    folder = Path(styleref.get("dir", "."))
    return [StyleRefThumb(str(name), f"sr{i}", thumbnail_data_uri(folder / name))
            for i, name in enumerate(styleref.get("files") or [])]
