"""The Aux set: curated images (StyleBoost) or class images made by the frozen model (DreamBooth).

``aux_mode=generated`` is the classic DreamBooth baseline: before training, the frozen base model
draws ``num_aux_images`` from the Aux prompt into a cache folder. The folder records the settings the
images were drawn with (``class_images.json``); a later run reuses the images only when its settings
match, and refuses a folder that holds other images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from styleboost.core.atomic import save_image_atomic, write_json_atomic, write_text_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.images import IMAGE_SUFFIXES
from styleboost.core.notice import notice
from styleboost.sd.sampling import batches, draw_images

SETTINGS_FILE = "class_images.json"


def existing_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def check_class_image_cache(folder: Path, settings: dict[str, Any], *, flag: str = "--aux_dir") -> None:
    """Refuse a cache folder whose images were drawn with other settings, or that holds images of its own."""
    record_file = folder / SETTINGS_FILE
    images = existing_images(folder)
    if record_file.is_file():
        recorded = json.loads(record_file.read_text(encoding="utf-8"))
        changed = [k for k in settings if recorded.get(k) != settings[k]]
        if changed:
            key = changed[0]
            raise StyleBoostError(
                f"{flag} {folder} holds class images drawn with {key}={recorded.get(key)!r}, not {settings[key]!r}; "
                "use another folder or empty it"
            )
    elif images:
        raise StyleBoostError(
            f"{flag} {folder} already holds {len(images)} image(s) that this run did not generate "
            f"(no {SETTINGS_FILE}); with --aux_mode generated give an empty or new folder, or use --aux_mode curated"
        )


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
    model: str,
    batch_size: int = 4,
    show_progress: bool = True,
) -> list[Path]:
    """Fill ``folder`` with ``count`` images of ``prompt`` (each with its caption file); return them all.

    Runs on the pipeline's device; call it from one process only (the caller synchronises)."""
    settings = {"model": model, "prompt": prompt, "resolution": resolution, "steps": steps,
                "guidance_scale": guidance_scale, "seed": seed}
    check_class_image_cache(folder, settings)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / SETTINGS_FILE, settings)
    missing = [i for i in range(count) if not (folder / f"class_{i:04d}.png").exists()]
    if missing:
        notice(f"drawing {len(missing)} class images of {prompt!r} on {pipe.device} into {folder}")
    with tqdm(total=len(missing), desc="class images", unit="img", disable=not show_progress) as bar:
        for indices in batches(missing, batch_size):
            images = draw_images(pipe, [prompt] * len(indices), [seed + i for i in indices], height=resolution,
                                 width=resolution, num_inference_steps=steps, guidance_scale=guidance_scale)
            for index, image in zip(indices, images):
                write_text_atomic(folder / f"class_{index:04d}.txt", prompt)
                save_image_atomic(image, folder / f"class_{index:04d}.png")
            bar.update(len(indices))
    return existing_images(folder)
