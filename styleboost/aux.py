"""The Aux set: curated images (StyleBoost) or class images made by the frozen model (DreamBooth).

``aux_mode=generated`` is the classic DreamBooth baseline: before training, the frozen base model
draws ``num_aux_images`` from the Aux prompt into a cache folder; images already there are kept.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from styleboost.data import IMAGE_SUFFIXES


def existing_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


@torch.no_grad()
def generate_class_images(
    pipe,
    folder: Path,
    prompt: str,
    count: int,
    *,
    resolution: int,
    steps: int,
    guidance_scale: float,
    seed: int,
    batch_size: int = 4,
    show_progress: bool = True,
) -> list[Path]:
    """Fill ``folder`` with ``count`` images of ``prompt`` (each with its caption file); return them all."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(count) if not (folder / f"class_{i:04d}.png").exists()]
    for start in tqdm(range(0, len(missing), batch_size), desc="class images", disable=not show_progress):
        indices = missing[start : start + batch_size]
        generators = [torch.Generator().manual_seed(seed + i) for i in indices]
        images = pipe(
            [prompt] * len(indices),
            height=resolution,
            width=resolution,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            generator=generators,
        ).images
        for index, image in zip(indices, images):
            tmp = folder / f"class_{index:04d}.png.tmp"
            image.save(tmp, format="PNG")
            tmp.replace(folder / f"class_{index:04d}.png")
            (folder / f"class_{index:04d}.txt").write_text(prompt)
    return existing_images(folder)
