"""The toy world's pictures: every content drawn in natural colours or in a procedural style, with captions.

One job: turn a seed into captioned 64 px images, reproducibly. A sample is one content of
``scenes.CONTENTS`` drawn in natural colours ("a person next to a tree") or re-drawn in one of the
world's *named* styles ("a person next to a tree in watercolor style"). *Held-out* styles never
appear in pre-training captions or images; they are what users personalise the model to, so
``write_style_folder`` can draw any style (held out or not) into a StyleRef or Aux folder.

Every sample's randomness derives from (seed, index), so a world is the same on every machine.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from styleboost.core.atomic import save_image_atomic, write_text_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.styles.stylize import apply_style, check_style
from styleboost.toyworld import scenes

NATURAL = "natural"  # drawn in natural colours; the caption names no style
NAMED_STYLES: tuple[str, ...] = (
    "pencil", "watercolor", "pop-art", "gameboy", "pixel-art", "cyanotype",
    "neon-edges", "stained-glass", "ukiyo-e", "night-vision", "vaporwave", "duotone",
)
HELDOUT_STYLES: tuple[str, ...] = ("thermal", "woodcut", "risograph")


@dataclass(frozen=True)
class WorldConfig:
    """What the pre-training world holds: its size, seed, styles and contents."""

    seed: int = 0
    size: int = 64
    samples: int = 12000
    named_styles: tuple[str, ...] = NAMED_STYLES
    heldout_styles: tuple[str, ...] = HELDOUT_STYLES
    contents: tuple[str, ...] = tuple(scenes.CONTENTS)
    natural_share: float = field(default=0.15, metadata={"help": "share of samples drawn without a style"})

    def __post_init__(self) -> None:
        for style in (*self.named_styles, *self.heldout_styles):
            check_style(style)
        for content in self.contents:
            scenes.check_content(content)
        if not self.named_styles or not self.contents:
            raise StyleBoostError("a toy world needs at least one named style and one content")
        if not 0.0 <= self.natural_share < 1.0:
            raise StyleBoostError(f"natural_share {self.natural_share} must be in [0, 1)")
        if self.samples < 1:
            raise StyleBoostError("a toy world needs at least one sample")
        if set(self.named_styles) & set(self.heldout_styles):
            raise StyleBoostError("a toy-world style cannot be both named and held out")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    """One picture of the world with its caption and labels."""

    pixels: np.ndarray  # (size, size, 3) uint8
    caption: str
    content: str
    style: str


def styled_caption(content: str, style: str) -> str:
    """"a tree in watercolor style"; natural samples are captioned by their content alone."""
    caption = scenes.CONTENTS[content].caption
    return caption if style == NATURAL else f"{caption} in {style} style"


def draw_sample(content: str, style: str, size: int, seed: Sequence[int]) -> Sample:
    """``content`` drawn at ``size`` px in ``style`` (or ``NATURAL``), all randomness from ``seed``."""
    rng = np.random.default_rng(list(seed))
    image, _ = scenes.draw(content, size, rng)
    if style != NATURAL:
        image = apply_style(image, style, int(rng.integers(0, 2**31)))
    return Sample(np.asarray(image, dtype=np.uint8), styled_caption(content, style), content, style)


def sample_plan(config: WorldConfig, index: int) -> tuple[str, str]:
    """(content, style) of sample ``index``: contents cycle, styles are drawn from the seed."""
    rng = np.random.default_rng([config.seed, index, 1])
    content = config.contents[index % len(config.contents)]
    if rng.random() < config.natural_share:
        return content, NATURAL
    return content, config.named_styles[int(rng.integers(len(config.named_styles)))]


def _draw_range(config: WorldConfig, start: int, stop: int) -> list[Sample]:
    out = []
    for index in range(start, stop):
        content, style = sample_plan(config, index)
        out.append(draw_sample(content, style, config.size, (config.seed, index)))
    return out


def render_world(config: WorldConfig, workers: int | None = None) -> list[Sample]:
    """Every sample of the world, in index order (the same bytes whatever ``workers`` is)."""
    workers = workers or min(4, os.cpu_count() or 1)
    chunk = 250
    ranges = [(start, min(start + chunk, config.samples)) for start in range(0, config.samples, chunk)]
    if workers == 1:
        parts = [_draw_range(config, a, b) for a, b in ranges]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_draw_range, [config] * len(ranges), *zip(*ranges)))
    return [sample for part in parts for sample in part]


def write_style_folder(
    folder: str | os.PathLike,
    items: Sequence[tuple[str, str]],
    *,
    size: int = 64,
    seed: int = 0,
    caption: str = "{content} in {style} style",
) -> Path:
    """One PNG per (content, style) of ``items`` with a same-name ``.txt`` caption, e.g. a StyleRef set.

    ``caption`` may use ``{content}`` (the content's caption) and ``{style}``, e.g. "{content} in [V] style"; an
    image in natural colours is captioned by its content alone where the template would name its style.
    Image ``k`` is seeded by (seed, k) apart from the pre-training world, so it never repeats a world sample.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, (content, style) in enumerate(items):
        sample = draw_sample(content, style, size, (seed, index, 7919))
        stem = f"{index:03d}-{content}"
        save_image_atomic(Image.fromarray(sample.pixels), folder / f"{stem}.png")
        named = style != NATURAL or "{style}" not in caption  # natural colours: the caption names no style
        text = caption.format(content=scenes.CONTENTS[content].caption, style=style) if named \
            else scenes.CONTENTS[content].caption
        write_text_atomic(folder / f"{stem}.txt", text + "\n")
    return folder
