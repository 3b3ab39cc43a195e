"""A reproducible synthetic style data set (WikiArt layout) for training and judging a style encoder.

One job: render many contents in the procedural styles of ``styleboost.styles.stylize`` and write them
as one folder per style. Contents are square crops of the sample photographs that scikit-image
ships in its wheel (no download) and the procedural scenes of ``styleboost.styles.scenes`` painted in
natural colours with shading and noise. Held-out contents are honestly unseen: they come only from
photos that no training content uses and from scenes drawn from their own seed stream.

Layout written by ``build_style_set(root)``::

    train/<style>/<content id>.png              seen styles x training contents
    heldout_contents/<style>/<content id>.png   seen styles x held-out contents
    heldout_styles/<style>/<content id>.png     held-out styles x held-out contents
    <each of the three>/metadata.csv            path,style,content (path relative to that folder)
    synthstyle.json                             settings, styles, contents, package versions

Every image's randomness derives from (seed, content id, style), so a set is reproducible byte
for byte and can be resumed: re-running with the same settings skips files already written.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

from styleboost.core.atomic import save_image_atomic, write_bytes_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import package_versions
from styleboost.core.settings import option
from styleboost.styles import scenes
from styleboost.styles.stylize import MIN_SIZE, STYLES, StyleRecipe, apply_recipe, apply_style, check_style

FORMAT = "styleboost-synthstyle/1"
MANIFEST_NAME = "synthstyle.json"
METADATA_NAME = "metadata.csv"
SPLITS = ("train", "heldout_contents", "heldout_styles")

# skimage.data loader name for each photo (all ship inside the scikit-image wheel).
PHOTOS: dict[str, str] = {
    "astronaut": "astronaut", "coffee": "coffee", "camera": "camera", "moon": "moon",
    "brick": "brick", "grass": "grass", "page": "page", "clock": "clock",
    "immunohistochemistry": "immunohistochemistry", "hubble": "hubble_deep_field",
    "retina": "retina", "motorcycle": "stereo_motorcycle",
    "chelsea": "chelsea", "rocket": "rocket", "coins": "coins", "gravel": "gravel",
}
HELDOUT_PHOTOS: tuple[str, ...] = ("chelsea", "rocket", "coins", "gravel")
TRAIN_PHOTOS: tuple[str, ...] = tuple(name for name in PHOTOS if name not in HELDOUT_PHOTOS)
SCENES: tuple[str, ...] = tuple(scenes.CONTENTS)

DEFAULT_HELDOUT_STYLES: tuple[str, ...] = ("ink-wash", "risograph", "cga", "woodcut", "thermal", "mosaic")
DEFAULT_SEED, DEFAULT_SIZE = 0, 128
DEFAULT_TRAIN_CONTENTS, DEFAULT_HELDOUT_CONTENTS = 80, 24


@dataclasses.dataclass(frozen=True)
class Content:
    """One picture to be stylized: a unique id, where it came from ("photo:coffee"), the RGB image."""

    id: str
    source: str
    image: Image.Image


# --------------------------------------------------------------------------- randomness


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from any values (the same values give the same seed on every machine)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def content_rng(seed: int, content_id: str) -> np.random.Generator:
    return np.random.default_rng(derived_seed(seed, "content", content_id))


def style_seed(seed: int, content_id: str, style: str) -> int:
    """The seed of one styled image: different for every (content, style) pair."""
    return derived_seed(seed, "style", content_id, style)


# --------------------------------------------------------------------------- contents


@functools.lru_cache(maxsize=None)
def photo(name: str) -> Image.Image:
    """A scikit-image sample photograph as RGB (grey ones get three equal channels)."""
    pixels = getattr(skimage.data, PHOTOS[name])()
    pixels = pixels[0] if isinstance(pixels, tuple) else pixels  # stereo_motorcycle: (left, right, disparity)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]).astype(np.uint8), "RGB")


def photo_crop(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A random square crop of 35-100 % of the photo's short side, maybe mirrored, resized to ``size``."""
    image = photo(name)
    side = max(8, round(min(image.size) * rng.uniform(0.35, 1.0)))
    left = int(rng.integers(0, image.width - side + 1))
    top = int(rng.integers(0, image.height - side + 1))
    crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def scene_image(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A procedural scene in natural colours, lit from the top left, darker near part boundaries, with noise."""
    return scenes.natural_image(scenes.draw_scene(kind, size, rng), size, rng)


def make_content(split: str, index: int, size: int, seed: int) -> Content:
    """Content ``index`` of ``split`` ("train" or "heldout"): even indices photos, odd ones scenes."""
    photos = TRAIN_PHOTOS if split == "train" else HELDOUT_PHOTOS
    if index % 2 == 0:
        name, kind = photos[(index // 2) % len(photos)], "photo"
    else:
        name, kind = SCENES[(index // 2) % len(SCENES)], "scene"
    content_id = f"{split}-{index:03d}-{name}"
    rng = content_rng(seed, content_id)
    image = photo_crop(name, size, rng) if kind == "photo" else scene_image(name, size, rng)
    return Content(content_id, f"{kind}:{name}", image)


def make_contents(split: str, count: int, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Content]:
    """``count`` contents of ``split`` ("train" or "heldout"), alternating photo crops and scenes."""
    if split not in ("train", "heldout"):
        raise StyleBoostError(f"unknown content split {split!r}; choose train or heldout")
    return [make_content(split, index, size, seed) for index in range(count)]


# --------------------------------------------------------------------------- settings


def resolve_styles(styles: Sequence[str] | None, heldout_styles: Sequence[str]) -> tuple[list[str], list[str]]:
    """(seen styles, held-out styles): every name checked, none in both, at least one of each."""
    heldout = list(dict.fromkeys(heldout_styles))
    for name in heldout:
        check_style(name)
    seen = [s for s in STYLES if s not in heldout] if styles is None else list(dict.fromkeys(styles))
    for name in seen:
        check_style(name)
    both = sorted(set(seen) & set(heldout))
    if both:
        raise StyleBoostError(f"styles {', '.join(both)} are both seen and held out; a style can only be one")
    if not seen or not heldout:
        raise StyleBoostError("a style set needs at least one seen and one held-out style")
    return seen, heldout


def check_settings(seed: int, size: int, train_contents: int, heldout_contents: int) -> None:
    if seed < 0:
        raise StyleBoostError(f"style set seed must be 0 or more, got {seed}")
    if size < MIN_SIZE:
        raise StyleBoostError(f"style set image size {size} is too small; use at least {MIN_SIZE} px")
    for name, count in (("train_contents", train_contents), ("heldout_contents", heldout_contents)):
        if count < 2:
            raise StyleBoostError(f"{name} must be at least 2, got {count}")


def recipes_digest(names: Sequence[str]) -> str:
    """A hash of the recipes used, so that a set made by other recipe code is never mixed in."""
    text = json.dumps([[n, STYLES[n].steps] for n in names], sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# the packages whose code draws the set (recorded in synthstyle.json)
PACKAGES: tuple[str, ...] = ("numpy", "pillow", "scikit-image", "scipy")


# --------------------------------------------------------------------------- writing


def prepare_root(root: Path, settings: dict[str, Any], overwrite: bool, manifest_name: str = MANIFEST_NAME,
                 splits: Sequence[str] = SPLITS) -> None:
    """Refuse a non-empty ``root`` that holds another set (or anything else) unless ``overwrite``, which removes
    the ``splits`` folders first."""
    if root.exists() and not root.is_dir():
        raise StyleBoostError(f"{root} exists and is not a folder")
    manifest = root / manifest_name
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        existing = json.loads(manifest.read_text()).get("settings") if manifest.is_file() else None
        if existing != settings:
            raise StyleBoostError(f"{root} already holds other files or a style set with other settings; "
                                  "choose an empty folder or pass overwrite=True (--overwrite)")
    if overwrite:
        for split in splits:
            shutil.rmtree(root / split, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)


def write_split(folder: Path, styles: Sequence[str], contents: Sequence[Content], seed: int) -> int:
    """Every named style x content image (existing files are kept) and the folder's metadata.csv."""
    return write_styled(folder, [(check_style(style), contents) for style in styles], seed)


def write_styled(folder: Path, jobs: Sequence[tuple[StyleRecipe, Sequence[Content]]], seed: int) -> int:
    """Each recipe's contents in ``folder/<recipe name>/<content id>.png`` (existing files are kept) and the
    folder's metadata.csv; returns the number of images."""
    rows = []
    for recipe, contents in jobs:
        (folder / recipe.name).mkdir(parents=True, exist_ok=True)
        for content in contents:
            relative = f"{recipe.name}/{content.id}.png"
            if not (folder / relative).is_file():
                image = apply_recipe(content.image, recipe, style_seed(seed, content.id, recipe.name))
                save_image_atomic(image, folder / relative, compress_level=6)
            rows.append((relative, recipe.name, content.id))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("path", "style", "content"))
    writer.writerows(rows)
    write_bytes_atomic(folder / METADATA_NAME, buffer.getvalue().encode())
    return len(rows)


def build_style_set(
    root: str | os.PathLike,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    train_contents: int = DEFAULT_TRAIN_CONTENTS,
    heldout_contents: int = DEFAULT_HELDOUT_CONTENTS,
    heldout_styles: Sequence[str] = DEFAULT_HELDOUT_STYLES,
    styles: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the synthetic style set under ``root`` (layout in the module docstring); returns ``root``.

    ``styles`` are the seen styles (default: every style that is not held out). An existing
    non-empty ``root`` must hold a set with the same settings (its missing files are then added)
    unless ``overwrite``, which deletes the three split folders first.
    """
    check_settings(seed, size, train_contents, heldout_contents)
    seen, heldout = resolve_styles(styles, heldout_styles)
    root = Path(root)
    settings = {
        "format": FORMAT, "seed": seed, "size": size, "train_contents": train_contents,
        "heldout_contents": heldout_contents, "seen_styles": seen, "heldout_styles": heldout,
        "heldout_photos": list(HELDOUT_PHOTOS), "recipes": recipes_digest(seen + heldout),
    }
    prepare_root(root, settings, overwrite)
    train = make_contents("train", train_contents, size, seed)
    held = make_contents("heldout", heldout_contents, size, seed)
    manifest = {
        "settings": settings,
        "counts": {"train": len(seen) * len(train), "heldout_contents": len(seen) * len(held),
                   "heldout_styles": len(heldout) * len(held)},
        "styles": {name: STYLES[name].description for name in seen + heldout},
        "train_photos": list(TRAIN_PHOTOS),
        "contents": {split: [{"id": c.id, "source": c.source} for c in group]
                     for split, group in (("train", train), ("heldout", held))},
        "versions": package_versions(PACKAGES),
    }
    write_bytes_atomic(root / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
    write_split(root / "train", seen, train, seed)
    write_split(root / "heldout_contents", seen, held, seed)
    write_split(root / "heldout_styles", heldout, held, seed)
    return root


# --------------------------------------------------------------------------- looking at it


def contact_sheet_of_styles(
    contents: Sequence[Content | Image.Image],
    styles: Sequence[str] | None = None,
    seed: int = 0,
    label_width: int = 110,
) -> Image.Image:
    """One row per style (its name on the left), one column per content, all at the first content's size."""
    if not contents:
        raise StyleBoostError("no contents for the style contact sheet")
    images = [c.image if isinstance(c, Content) else c.convert("RGB") for c in contents]
    names = list(STYLES) if styles is None else list(styles)
    width, height = images[0].size
    sheet = Image.new("RGB", (label_width + width * len(images), height * (len(names) + 1)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, height // 2), "original", fill=(0, 0, 0))
    for column, image in enumerate(images):
        sheet.paste(image.resize((width, height)), (label_width + column * width, 0))
    for row, name in enumerate(names, start=1):
        draw.text((4, row * height + height // 2), name, fill=(0, 0, 0))
        for column, image in enumerate(images):
            styled = apply_style(image.resize((width, height)), name, seed + column)
            sheet.paste(styled, (label_width + column * width, row * height))
    return sheet


# --------------------------------------------------------------------------- command line


@dataclasses.dataclass
class StyleSetConfig:
    """The settings of ``styleboost make-style-set``."""

    out: str = option(help="Folder for the set (train/, heldout_contents/, heldout_styles/, synthstyle.json).",
                      positional=True)
    seed: int = option(DEFAULT_SEED, "Seed of every content and styled image.")
    size: int = option(DEFAULT_SIZE, f"Image side in pixels (at least {MIN_SIZE}).")
    train_contents: int = option(DEFAULT_TRAIN_CONTENTS, "Training contents (photo crops and scenes).")
    heldout_contents: int = option(DEFAULT_HELDOUT_CONTENTS, "Held-out contents (unseen photos and scenes).")
    overwrite: bool = option(False, "Replace a set with other settings in OUT.")


def run(cfg: StyleSetConfig) -> int:
    """``styleboost make-style-set``: build the set and say what is where."""
    root = build_style_set(cfg.out, seed=cfg.seed, size=cfg.size, train_contents=cfg.train_contents,
                           heldout_contents=cfg.heldout_contents, overwrite=cfg.overwrite)
    counts = json.loads((root / MANIFEST_NAME).read_text())["counts"]
    summary = ", ".join(f"{split} {counts[split]}" for split in SPLITS)
    print(f"{sum(counts.values())} images in {root} ({summary}; metadata.csv in each, {MANIFEST_NAME})")
    return 0

