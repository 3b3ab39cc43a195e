"""Drawing images of a list of prompts with one seeded generator per image.

Each image gets its own CPU ``torch.Generator`` seeded with its own seed, so an image does not depend on
the batch it is drawn in nor on the device the model runs on. Training's class images and validation
samples, ``styleboost generate`` and the toy world's quality bar all draw through ``draw_images``.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence, TypeVar

import torch

T = TypeVar("T")


def draw_images(pipe, prompts: Sequence[str], seeds: Sequence[int], **call_kwargs: Any) -> list:
    """One pipeline call: image ``i`` shows ``prompts[i]``, drawn from a generator seeded with ``seeds[i]``.
    ``call_kwargs`` (steps, guidance, size, ...) go to the pipeline as they are."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    return pipe(prompt=list(prompts), generator=generators, **call_kwargs).images


def batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
