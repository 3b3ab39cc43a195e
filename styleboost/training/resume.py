"""Resuming with other settings: refuse what a checkpoint cannot continue, apply and name the rest.

A checkpoint records the settings it was trained with. Settings that define what is being trained
(the model, the method and its shapes, the tokens, the data and its order) cannot change on resume:
a change is refused in one line naming the setting. Every other change is applied from the resumed
step on and named in a notice; ``accelerator.load_state`` would otherwise silently bring back the old
optimizer settings (learning rate, betas, epsilon, weight decay), so they are set again after loading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice

FIXED_ON_RESUME = (
    "pretrained_model_name_or_path", "single_file_config", "method", "rank", "lora_alpha", "train_text_encoder",
    "token", "new_token", "initializer_token", "styleref_dir", "styleref_prompt", "aux_dir", "aux_prompt",
    "aux_mode", "num_aux_images", "seed", "train_batch_size", "gradient_accumulation_steps", "resolution",
    "center_crop", "random_flip", "cache_latents", "image_background", "use_8bit_adam",
    "pretrained_vae_model_name_or_path", "caption_dropout",
    "use_dora", "lora_conv", "conv_rank", "conv_alpha", "lora_blocks", "styleref_repeats", "aux_repeats",
)
NOT_SETTINGS = ("output_dir", "overwrite", "resume_from_checkpoint")
OPTIMIZER_SETTINGS = ("initial_lr", "betas", "eps", "weight_decay")


def _same(name: str, old: Any, new: Any) -> bool:
    if old == new:
        return True
    if isinstance(old, str) and isinstance(new, str) and (name.endswith("_dir") or name.endswith("_path")):
        return Path(old).resolve() == Path(new).resolve()  # one folder, written relative and absolute
    return False


def changed_settings(recorded: dict[str, Any], config: dict[str, Any], checkpoint: Path) -> dict[str, tuple]:
    """The settings that differ from those ``checkpoint`` was trained with, as (old, new); a one-line
    error for one that cannot change. Settings the record does not know (older versions) are skipped."""
    config = json.loads(json.dumps(config, default=str))  # as the record holds it: lists, not tuples
    changed = {
        name: (recorded[name], value) for name, value in config.items()
        if name in recorded and name not in NOT_SETTINGS and not _same(name, recorded[name], value)
    }
    for name, (old, new) in changed.items():
        if name in FIXED_ON_RESUME:
            raise StyleBoostError(
                f"--{name} {new} differs from the {old} that {checkpoint} was trained with, and a resumed run "
                f"cannot change it: resume with --{name} {old}, or start a new run (--overwrite)"
            )
    return changed


def announce_changes(changed: dict[str, tuple], step: int, *, main_process: bool = True) -> None:
    if changed:
        listed = ", ".join(f"--{name} {old} -> {new}" for name, (old, new) in changed.items())
        notice(f"resuming with changed settings, applied from step {step} on: {listed}", main_process=main_process)


def optimizer_settings(optimizer) -> list[dict[str, Any]]:
    """The hyperparameters of each parameter group, as the optimizer was built for this run."""
    return [{k: group[k] for k in OPTIMIZER_SETTINGS if k in group} for group in optimizer.param_groups]


def restore_optimizer_settings(optimizer, lr_scheduler, settings: list[dict[str, Any]]) -> None:
    """Put this run's hyperparameters back after ``load_state``; a new learning rate keeps the schedule's
    position (the current LR is scaled by new base / old base)."""
    for group, fresh in zip(optimizer.param_groups, settings):
        old_base, new_base = group.get("initial_lr"), fresh.get("initial_lr")
        if old_base and new_base is not None and old_base != new_base:
            group["lr"] = group["lr"] * new_base / old_base
        group.update(fresh)
    scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate wraps the torch scheduler
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        if hasattr(scheduler, "_last_lr"):
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
