"""Validation images during training: prompts with the token filled in, fixed seeds, a grid per step.

Images go under ``<output>/validation/step-<N>/`` with a grid beside them and to the trackers;
the final grid is also ``samples.png``, shown in the model card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from styleboost.prompts import read_prompt_file
from styleboost.tokens import fill_placeholders

DEFAULT_VALIDATION_PROMPTS = ("a portrait of a person in [V] style", "a house and a tree in [V] style")


def validation_prompts(cfg, tokens: list[str]) -> list[str]:
    templates = read_prompt_file(cfg.validation_prompts) if cfg.validation_prompts else list(DEFAULT_VALIDATION_PROMPTS)
    return [fill_placeholders(t, tokens, source=cfg.validation_prompts or "validation prompt") for t in templates]


def inference_pipeline(run):
    """A pipeline over the run's current (unwrapped) weights, sharing their memory."""
    models, unwrap = run.models, run.accelerator.unwrap_model
    pipe = models.pipeline_class(
        vae=models.vae,
        text_encoder=unwrap(run.nets["text_encoder"]),
        tokenizer=models.tokenizer,
        unet=unwrap(run.nets["unet"]),
        scheduler=models.inference_scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def run_validation(run, step: int, *, final: bool = False) -> Path | None:
    """Draw the validation images at ``step``; returns the grid's path on the main process."""
    from diffusers.utils import make_image_grid

    if not run.accelerator.is_main_process:
        return None
    cfg = run.cfg
    prompts = validation_prompts(cfg, run.models.tokens)
    pipe = inference_pipeline(run)
    folder = run.output_dir / "validation" / f"step-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    with run.accelerator.autocast():
        for index, prompt in enumerate(prompts):
            generators = [torch.Generator().manual_seed(cfg.seed + k) for k in range(cfg.num_validation_images)]
            out = pipe(
                [prompt] * cfg.num_validation_images,
                height=run.resolution,
                width=run.resolution,
                num_inference_steps=cfg.validation_inference_steps,
                guidance_scale=cfg.guidance_scale,
                generator=generators,
            ).images
            for k, image in enumerate(out):
                image.save(folder / f"p{index:02d}_s{cfg.seed + k}.png")
            images += out
    grid = make_image_grid(images, rows=len(prompts), cols=cfg.num_validation_images)
    grid_path = run.output_dir / "validation" / f"step-{step}.png"
    grid.save(grid_path)
    if final:
        grid.save(run.output_dir / "samples.png")
    log_images(run, images, prompts, step)
    return run.output_dir / "samples.png" if final else grid_path


def log_images(run, images, prompts: list[str], step: int) -> None:
    """Send validation images to every tracker that can show them."""
    for tracker in run.accelerator.trackers:
        if tracker.name == "tensorboard":
            stacked = np.stack([np.asarray(im) for im in images])
            tracker.writer.add_images("validation", stacked, step, dataformats="NHWC")
        elif tracker.name == "wandb":
            import wandb

            per = len(images) // len(prompts)
            captions = [prompts[i // per] for i in range(len(images))]
            tracker.log({"validation": [wandb.Image(im, caption=c) for im, c in zip(images, captions)]}, step=step)
