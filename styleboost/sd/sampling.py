"""Drawing images of a list of prompts with one seeded generator per image.

Each image gets its own CPU ``torch.Generator`` seeded with its own seed, so an image does not depend on
the batch it is drawn in nor on the device the model runs on. Training's class images and validation
samples, ``styleboost generate`` and the toy world's quality bar all draw through ``draw_images``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence, TypeVar

import torch

T = TypeVar("T")


def draw_images(pipe, prompts: Sequence[str], seeds: Sequence[int], **call_kwargs: Any) -> list:
    """One pipeline call: image ``i`` shows ``prompts[i]``, drawn from a generator seeded with ``seeds[i]``.
    ``call_kwargs`` (steps, guidance, size, ...) go to the pipeline as they are. A float32 VAE decodes in
    float32 even under autocast (``vae_decodes_in_float32``)."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    with vae_decodes_in_float32(pipe):
        return pipe(prompt=list(prompts), generator=generators, **call_kwargs).images


@contextmanager
def vae_decodes_in_float32(pipe) -> Iterator[None]:
    """Run a float32 VAE's ``decode`` with autocast off. Training keeps the VAE in float32 and draws its
    validation and class images under the run's autocast, which would decode in fp16: SDXL's VAE overflows
    there (NaN, black images). The pipelines upcast an fp16 VAE themselves, but not float32 weights under
    autocast; a VAE in another dtype is left alone."""
    vae = getattr(pipe, "vae", None)
    if vae is None or vae.dtype != torch.float32:
        yield
        return
    decode = vae.decode

    def decode_in_float32(latents: torch.Tensor, *args: Any, **kwargs: Any):
        with torch.autocast(latents.device.type, enabled=False):
            return decode(latents.float(), *args, **kwargs)

    vae.decode = decode_in_float32
    try:
        yield
    finally:
        del vae.decode  # the class's own method again


def batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
