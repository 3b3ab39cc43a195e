"""Image sets for training: StyleRef and Aux folders, captions, transforms and the paired dataset.

An image's caption is a same-name ``.txt`` beside it; otherwise the set's prompt is used. Loading a
set says once what is odd about it (files skipped, transparent images and their background, images
far below the training resolution). The dataset yields one StyleRef example and, when an Aux set is
used, one Aux example per index, and draws its augmentation (crop, flip, caption dropout) from a
per-draw seed so that a resumed run sees exactly the same batches. Each example carries SDXL's size
ids of the crop it got.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from styleboost.core.images import (
    RGB,
    WHITE,
    ImageInfo,
    list_images,
    open_rgb,
    small_images_note,
    survey,
    transparency_note,
)
from styleboost.core.notice import notice
from styleboost.core.text import read_text
from styleboost.sd.tokens import fill_placeholders, require_token


@dataclass(frozen=True)
class Example:
    """One training image, the prompt it is trained with, and where that prompt comes from (for messages)."""

    path: Path
    caption: str
    source: str


def load_examples(
    folder: str | Path, default_prompt: str, tokens: list[str], *, flag: str, needs_token: bool,
    resolution: int | None = None, background: RGB = WHITE, main_process: bool = True,
) -> list[Example]:
    """The examples of one image folder, captions filled in and checked for the bound tokens.

    Notices name the files skipped; one notice says how many images are transparent and the
    ``background`` they are composited on, one how many have a short side under half ``resolution``."""
    infos = survey(list_images(folder, flag=flag, main_process=main_process), flag=flag, main_process=main_process)
    note_image_set(infos, f"{flag} {folder}", resolution, background, main_process)
    examples = []
    for path in (info.path for info in infos):
        caption_file = path.with_suffix(".txt")
        if caption_file.is_file():
            raw, source = read_text(caption_file, what="caption").strip(), str(caption_file)
        else:
            raw, source = default_prompt, f"{flag} prompt"
        caption = fill_placeholders(raw, tokens, source=source)
        if needs_token:
            require_token(caption, tokens, source=source)
        examples.append(Example(path, caption, source))
    return examples


def note_image_set(infos: list[ImageInfo], where: str, resolution: int | None, background: RGB,
                   main_process: bool) -> None:
    """The once-per-set notices: transparency and its background, images far below the resolution."""
    for note in (transparency_note(infos, background, "--image_background"), small_images_note(infos, resolution)):
        if note:
            notice(f"{where}: {note}", main_process=main_process)


@dataclass(frozen=True)
class ImageTransform:
    """Decode (transparency on ``background``), resize the short side, crop to a square (center or
    random), optionally flip; scale to [-1, 1]."""

    resolution: int
    center_crop: bool = False
    random_flip: bool = False
    background: RGB = WHITE

    def open(self, path: Path) -> Image.Image:
        """The image file as 8-bit RGB, transparent pixels on ``background``."""
        return open_rgb(path, self.background)

    def crop_box(self, size: tuple[int, int], rng: np.random.Generator) -> tuple[int, int, int, int]:
        width, height = size
        if self.center_crop:
            left, top = (width - self.resolution) // 2, (height - self.resolution) // 2
        else:
            left = int(rng.integers(0, width - self.resolution + 1))
            top = int(rng.integers(0, height - self.resolution + 1))
        return left, top, left + self.resolution, top + self.resolution

    def __call__(self, image: Image.Image, rng: np.random.Generator, *, flip: bool | None = None) -> torch.Tensor:
        return self.apply(image, rng, flip=flip)[0]

    def apply(self, image: Image.Image, rng: np.random.Generator, *, flip: bool | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pixels, and SDXL's size ids of the crop made: (original height, width, crop top, left, target
        height, width), the crop measured in the resized image and mirrored with a flip, so that it is the
        crop of a flip-then-crop, as diffusers' ``train_dreambooth_lora_sdxl.py`` records it."""
        original = (image.height, image.width)
        scale = self.resolution / min(image.size)
        new_size = (max(self.resolution, round(image.width * scale)), max(self.resolution, round(image.height * scale)))
        image = image.resize(new_size, Image.Resampling.BICUBIC)
        left, top, right, bottom = self.crop_box(image.size, rng)
        image = image.crop((left, top, right, bottom))
        if flip is None:
            flip = self.random_flip and bool(rng.random() < 0.5)
        if flip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            left = new_size[0] - right
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)
        size_ids = torch.tensor([*original, top, left, self.resolution, self.resolution], dtype=torch.float32)
        return pixels / 127.5 - 1.0, size_ids


class DrawSampler(Sampler):
    """An endless shuffled stream of (index, draw seed), cut to the draws a run still needs.

    Epoch ``e`` is the permutation seeded by (seed, e); each draw's seed is derived from its
    position in the stream. Starting at ``start`` yields exactly what the uninterrupted run
    would have yielded from there, which makes resuming exact.
    """

    def __init__(self, length: int, *, seed: int, total: int, start: int = 0):
        self.length, self.seed, self.total, self.start = length, seed, total, start

    def __len__(self) -> int:
        return self.total - self.start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, order = -1, None
        for position in range(self.start, self.total):
            if position // self.length != epoch:
                epoch = position // self.length
                order = np.random.default_rng([self.seed, epoch]).permutation(self.length)
            yield int(order[position % self.length]), position


class StyleBoostDataset(Dataset):
    """Pairs each StyleRef example with an Aux example (cycled); Aux is optional.

    Items are keyed by ``(index, draw)``; with ``latent_cache`` the images are replaced by
    cached VAE latent distributions (see ``LatentCache``). An epoch (``len``) is the longer of the
    StyleRef set times ``styleref_repeats`` and the Aux set times ``aux_repeats``: index ``i`` is StyleRef
    image ``i % len(styleref)`` and Aux image ``i % len(aux)``, so over one epoch (one permutation of the
    indices) the set that fills it shows each image exactly its repeats.
    """

    def __init__(
        self,
        styleref: list[Example],
        aux: list[Example] | None,
        transform: ImageTransform,
        *,
        seed: int,
        latent_cache: "LatentCache | None" = None,
        caption_dropout: float = 0.0,
        styleref_repeats: int = 1,
        aux_repeats: int = 1,
    ):
        self.styleref, self.aux, self.transform = styleref, aux or [], transform
        self.seed, self.latent_cache, self.caption_dropout = seed, latent_cache, caption_dropout
        self.repeats = (styleref_repeats, aux_repeats)

    def __len__(self) -> int:
        return max(len(self.styleref) * self.repeats[0], len(self.aux) * self.repeats[1])

    def _one(self, example: Example, rng: np.random.Generator) -> dict:
        if self.latent_cache is not None:
            flip = self.transform.random_flip and bool(rng.random() < 0.5)
            latent_dist, size_ids = self.latent_cache.get(example.path, flip)
            item = {"latent_dist": latent_dist, "size_ids": size_ids}
        else:
            pixels, size_ids = self.transform.apply(self.transform.open(example.path), rng)
            item = {"pixel_values": pixels, "size_ids": size_ids}
        dropped = self.caption_dropout > 0 and rng.random() < self.caption_dropout  # no draw when off: same crops
        return item | {"caption": "" if dropped else example.caption}

    def __getitem__(self, key: tuple[int, int] | int) -> dict:
        index, draw = key if isinstance(key, tuple) else (key, key)
        rng = np.random.default_rng([self.seed, draw])
        item = {"instance": self._one(self.styleref[index % len(self.styleref)], rng), "draw": draw}
        if self.aux:
            item["prior"] = self._one(self.aux[index % len(self.aux)], rng)
        return item


def _stack(parts: list[dict]) -> dict:
    key = "latent_dist" if "latent_dist" in parts[0] else "pixel_values"
    stacked = {name: torch.stack([p[name] for p in parts]) for name in (key, "size_ids")}
    return stacked | {"captions": [p["caption"] for p in parts]}


def collate(items: list[dict]) -> dict:
    """Batch of StyleRef examples and, when present, as many Aux examples; ``draws`` key their randomness."""
    batch = {"instance": _stack([i["instance"] for i in items]), "draws": [int(i["draw"]) for i in items]}
    if "prior" in items[0]:
        batch["prior"] = _stack([i["prior"] for i in items])
    return batch


class LatentCache:
    """VAE latent distributions (mean and log-variance) of every image, computed once.

    Crops are fixed to the center when caching; with ``random_flip`` both orientations are
    cached, so augmentation still varies between epochs. A fresh latent is sampled each step.
    """

    def __init__(self, transform: ImageTransform):
        self.transform = replace(transform, center_crop=True)
        self.params: dict[tuple[Path, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def fill(self, examples: Sequence[Example], vae, *, device: torch.device, dtype: torch.dtype) -> None:
        rng = np.random.default_rng(0)
        flips = (False, True) if self.transform.random_flip else (False,)
        for example in examples:
            for flip in flips:
                if (example.path, flip) in self.params:
                    continue
                pixels, size_ids = self.transform.apply(self.transform.open(example.path), rng, flip=flip)
                dist = vae.encode(pixels[None].to(device, dtype)).latent_dist
                self.params[(example.path, flip)] = dist.parameters[0].float().cpu(), size_ids

    def get(self, path: Path, flip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The latent distribution's parameters and the size ids of the cached crop."""
        return self.params[(path, flip)]
