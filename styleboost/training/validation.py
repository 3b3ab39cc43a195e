"""Validation images during training: prompts with the token filled in, fixed seeds, a grid per step.

Images go under ``<output>/validation/step-<N>/`` with a grid beside them and to the trackers;
the final grid is also ``samples.png``, shown in the model card. With ``--validation_metrics`` each
validation's images are then scored (``validation_metrics``). ``--skip_final_samples`` draws no
final images (then there is no ``samples.png`` and the card shows none). The final samples get a
progress bar over their denoising steps (main process only).

How many images and denoising steps: the user's ``--num_validation_images`` and
``--validation_inference_steps``; where unset, 2 images per prompt and 25 steps, or 1 image and
10 steps when the run is on the CPU (announced with one notice). The numbers used are recorded
in ``run.json`` under ``validation``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from styleboost.core.manifest import update_manifest
from styleboost.core.notice import notice
from styleboost.sd.prompts import fit_prompt, read_prompt_file
from styleboost.sd.sampling import draw_images
from styleboost.sd.tokens import fill_placeholders
from styleboost.training.validation_metrics import score_validation

DEFAULT_VALIDATION_PROMPTS = ("a portrait of a person in [V] style", "a house and a tree in [V] style")
DEFAULT_IMAGES_PER_PROMPT = 2
DEFAULT_INFERENCE_STEPS = 25
CPU_IMAGES_PER_PROMPT = 1
CPU_INFERENCE_STEPS = 10


@dataclass(frozen=True)
class SampleSettings:
    """How many images each validation prompt gets and how many denoising steps each takes."""

    images_per_prompt: int
    inference_steps: int


def sample_settings(cfg, device: torch.device | str) -> SampleSettings:
    """The user's validation image count and steps; unset ones take the defaults, smaller on a CPU."""
    on_cpu = torch.device(device).type == "cpu"
    images, steps = cfg.num_validation_images, cfg.validation_inference_steps
    taken = []
    if images is None:
        images = CPU_IMAGES_PER_PROMPT if on_cpu else DEFAULT_IMAGES_PER_PROMPT
        taken.append(f"{images} image{'s' if images > 1 else ''} per prompt")
    if steps is None:
        steps = CPU_INFERENCE_STEPS if on_cpu else DEFAULT_INFERENCE_STEPS
        taken.append(f"{steps} denoising steps")
    if on_cpu and taken:
        notice(
            f"training on the CPU: validation images use {' and '.join(taken)} "
            "(set --num_validation_images / --validation_inference_steps to change)"
        )
    return SampleSettings(images, steps)


def validation_prompts(cfg, tokens: list[str], tokenizer=None) -> list[str]:
    """The validation prompts with the tokens filled in; with ``tokenizer``, fitted to its window (``fit_prompt``)."""
    source = cfg.validation_prompts or "validation prompt"
    templates = read_prompt_file(cfg.validation_prompts) if cfg.validation_prompts else list(DEFAULT_VALIDATION_PROMPTS)
    prompts = [fill_placeholders(t, tokens, source=source) for t in templates]
    if tokenizer is None:
        return prompts
    return [fit_prompt(tokenizer, prompt, tokens, source=source) for prompt in prompts]


def inference_pipeline(run):
    """A pipeline over the run's current (unwrapped) weights, sharing their memory."""
    unwrap = run.accelerator.unwrap_model
    names = ("unet", *run.models.text_encoder_names)
    pipe = run.models.pipeline(**{name: unwrap(run.nets[name]) for name in names})
    pipe.set_progress_bar_config(disable=True)
    return pipe


class DenoisingBar:
    """A tqdm bar over every denoising step of several pipeline calls, fed by ``callback_on_step_end``."""

    def __init__(self, calls: int, desc: str, enabled: bool):
        self.calls, self.desc, self.enabled = calls, desc, enabled
        self.bar: tqdm | None = None

    def __call__(self, pipe, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        if self.bar is None:  # the step count is the scheduler's, known once the first call runs
            self.bar = tqdm(total=self.calls * pipe.num_timesteps, desc=self.desc, unit="step", disable=not self.enabled)
        self.bar.update(1)
        return callback_kwargs

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def run_validation(run, step: int, *, final: bool = False) -> Path | None:
    """Draw the validation images at ``step``; returns the grid's path on the main process.

    ``final=True`` (the end of the run) also writes ``samples.png``, with a progress bar, and draws
    nothing under ``--skip_final_samples`` (returns None)."""
    from diffusers.utils import make_image_grid  # deferred: diffusers takes seconds to import

    cfg = run.cfg
    if not run.accelerator.is_main_process or (final and cfg.skip_final_samples):
        return None
    settings = sample_settings(cfg, run.accelerator.device)
    update_manifest(run.output_dir, validation=asdict(settings))
    count = settings.images_per_prompt
    prompts = validation_prompts(cfg, run.models.tokens, run.models.tokenizer)
    pipe = inference_pipeline(run)
    folder = run.output_dir / "validation" / f"step-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    images, paths = [], []
    bar = DenoisingBar(len(prompts), f"final samples ({len(prompts)} prompts x {count})", enabled=final)
    try:
        with run.accelerator.autocast():
            for index, prompt in enumerate(prompts):
                out = draw_images(pipe, [prompt] * count, [cfg.seed + k for k in range(count)],
                                  height=run.resolution, width=run.resolution,
                                  num_inference_steps=settings.inference_steps, guidance_scale=cfg.guidance_scale,
                                  callback_on_step_end=bar)
                for k, image in enumerate(out):
                    paths.append(folder / f"p{index:02d}_s{cfg.seed + k}.png")
                    image.save(paths[-1])
                images += out
    finally:
        bar.close()
    grid = make_image_grid(images, rows=len(prompts), cols=count)
    grid_path = run.output_dir / "validation" / f"step-{step}.png"
    grid.save(grid_path)
    if final:
        grid.save(run.output_dir / "samples.png")
    log_images(run, images, prompts, step)
    if run.scorer is not None:
        score_validation(run, step, paths, [p for p in prompts for _ in range(count)])
    return run.output_dir / "samples.png" if final else grid_path


def log_images(run, images, prompts: list[str], step: int) -> None:
    """Send validation images to every tracker that can show them."""
    for tracker in run.accelerator.trackers:
        if tracker.name == "tensorboard":
            stacked = np.stack([np.asarray(im) for im in images])
            tracker.writer.add_images("validation", stacked, step, dataformats="NHWC")
        elif tracker.name == "wandb":
            import wandb  # optional: only runs that report to wandb have it

            per = len(images) // len(prompts)
            captions = [prompts[i // per] for i in range(len(images))]
            tracker.log({"validation": [wandb.Image(im, caption=c) for im, c in zip(images, captions)]}, step=step)
