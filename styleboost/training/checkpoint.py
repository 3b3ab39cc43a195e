"""Resumable checkpoints: accelerate's save_state written under a temporary name, then renamed.

Only trainable weights go into a checkpoint (a LoRA run does not copy the frozen UNet each
time); optimizer, LR schedule and RNG states are accelerate's own files. A folder is a
checkpoint only once it has its final name and its ``checkpoint.json`` marker, so ``latest``
never picks a half-written one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from styleboost.core.atomic import move_into_place
from styleboost.core.errors import StyleBoostError

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
MARKER = "checkpoint.json"


def trainable_state(model) -> dict:
    """Parameters that take gradients, by name, as contiguous CPU tensors."""
    return {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}


def register_trainable_hooks(accelerator) -> None:
    """Make save_state/load_state store just the trainable weights of each prepared model."""

    def save_hook(models, weights, output_dir):
        for index, model in enumerate(models):
            if accelerator.is_main_process:  # the hook runs on every process; the weights are the same
                state = trainable_state(accelerator.unwrap_model(model))
                save_file(state, str(Path(output_dir) / f"trainable_{index}.safetensors"))
            if weights:
                weights.pop()

    def load_hook(models, input_dir):
        while models:
            model = accelerator.unwrap_model(models.pop())
            state = load_file(str(Path(input_dir) / f"trainable_{len(models)}.safetensors"))
            missing = set(state) - {n for n, _ in model.named_parameters()}
            if missing:
                raise StyleBoostError(f"{input_dir}: checkpoint weights do not match this run's model")
            model.load_state_dict(state, strict=False)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)


def completed_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every finished checkpoint in ``output_dir``, oldest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT.match(path.name)
        if match and path.is_dir() and (path / MARKER).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def resolve_resume(output_dir: str | Path, resume: str) -> tuple[int, Path] | None:
    """The checkpoint ``--resume_from_checkpoint`` names: 'latest' (None if there is none) or a folder."""
    if resume == "latest":
        found = completed_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / MARKER).is_file():
        raise StyleBoostError(f"--resume_from_checkpoint {resume}: not a finished checkpoint folder")
    return int(json.loads((path / MARKER).read_text())["step"]), path


def save_checkpoint(accelerator, output_dir: str | Path, step: int, limit: int | None) -> Path | None:
    """Write checkpoint-<step> atomically, then prune the oldest beyond ``limit``."""
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f"checkpoint-{step}.tmp"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process has written its RNG state before the folder is renamed
    if not accelerator.is_main_process:
        return None
    (tmp / MARKER).write_text(json.dumps({"step": step}))
    move_into_place(tmp, final)
    if limit is not None:
        for _, old in completed_checkpoints(output_dir)[:-limit]:
            shutil.rmtree(old)
    return final
