"""What a transfer run reads: the content images (one image, a folder, or a ``styleboost generate`` run whose
prompts carry over), the style set, and images as tensors at the run's size.

A content folder with a ``metadata.jsonl`` is a generated run: its records name the images (under
``images/``) and their prompts, so a restyled run keeps each image's file name, prompt, prompt set and seed,
and ``styleboost evaluate`` groups and scores it like the run it came from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import IMAGE_SUFFIXES, file_sha256, list_images, open_rgb, survey
from styleboost.generation.records import read_metadata

# fields of a generated image's record that a restyled copy keeps (what evaluate groups and scores by)
PROMPT_FIELDS = ("prompt", "prompt_as_written", "prompt_template", "prompt_set", "prompt_index", "seed", "tokens")
CONTENT_SET = "content"  # the prompt set of content images that come without a generate record


@dataclass(frozen=True)
class ContentImage:
    """One content image and where its restyled copy goes."""

    path: Path
    file: str  # output file, relative to --out
    prompt: dict[str, Any] = field(default_factory=dict)  # PROMPT_FIELDS of its generate record, if any


def image_paths(source: str | Path, flag: str) -> list[Path]:
    """The images ``source`` names (a file, or the images directly inside a folder) that decode."""
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise StyleBoostError(f"{flag} {path}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
        files = [path]
    elif path.is_dir():
        files = list_images(path, flag=flag)
    else:
        raise StyleBoostError(f"{flag} {path}: no such file or folder")
    return [info.path for info in survey(files, flag=f"{flag} {path}")]


def style_set_record(folder: str | Path, files: list[Path]) -> dict[str, Any]:
    """The record fields naming a style set: its folder, files and one hash of all their bytes."""
    digest = hashlib.sha256("".join(file_sha256(p) for p in files).encode()).hexdigest()
    return {"style": str(Path(folder).expanduser()), "style_files": [p.name for p in files], "style_sha256": digest}


def content_images(source: str | Path) -> list[ContentImage]:
    """The content images of ``--content``: a generated run's recorded images, else the images it names."""
    root = Path(source).expanduser()
    records = read_metadata(root) if root.is_dir() else {}
    if not records:
        return [ContentImage(p, f"images/{p.stem}.png", {"prompt_set": CONTENT_SET, "prompt_index": i})
                for i, p in enumerate(image_paths(root, "--content"))]
    present = [root / file for file in records if (root / file).is_file()]
    if not present:
        raise StyleBoostError(f"--content {root}: metadata.jsonl names no image that exists in the folder")
    decoded = {info.path for info in survey(present, flag=f"--content {root}")}
    return [ContentImage(root / file, str(Path(file).with_suffix(".png").as_posix()),
                         {k: record[k] for k in PROMPT_FIELDS if k in record})
            for file, record in records.items() if root / file in decoded]


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the short side ``size`` and both sides multiples of 8 (the decoders upsample 8x)."""
    scale = size / min(width, height)
    return max(8, round(width * scale / 8) * 8), max(8, round(height * scale / 8) * 8)


def load_tensor(path: Path, size: int, square: bool = False) -> torch.Tensor:
    """``(1, 3, H, W)`` floats in 0..1: the image with its short side at ``size`` (centre-cropped to a square)."""
    image = open_rgb(path)
    if square:
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    image = image.resize(fit_size(*image.size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float().contiguous() / 255


def to_image(tensor: torch.Tensor) -> Image.Image:
    """A ``(1, 3, H, W)`` 0..1 tensor as an 8-bit RGB image (values outside 0..1 clipped)."""
    array = (tensor[0].detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)
