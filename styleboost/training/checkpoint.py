"""Resumable checkpoints: accelerate's save_state written under a temporary name, then renamed.

Only trainable weights go into a checkpoint (a LoRA run does not copy the frozen UNet each
time); optimizer, LR schedule and RNG states are accelerate's own files. A folder is a
checkpoint only once it has its final name and its ``checkpoint.json`` marker, so ``latest``
never picks a half-written one. The files are flushed to disk before the marker is written, and
the marker lists each file's size (and the run's settings), so a damaged checkpoint is recognised
and ``latest`` falls back to the previous whole one. Weights that are not finite are never saved.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from styleboost.core.atomic import fsync_folder, fsync_tree, move_into_place, write_json_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice

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


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """Where the checkpoint of ``step`` goes."""
    return Path(output_dir) / f"checkpoint-{step}"


def completed_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every finished checkpoint in ``output_dir``, oldest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        match = CHECKPOINT.match(path.name)
        if match and path.is_dir() and (path / MARKER).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_marker(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))


def damage(checkpoint: Path) -> str | None:
    """What is wrong with a checkpoint's files (missing, or another size than when written), or None."""
    for name, size in read_marker(checkpoint).get("files", {}).items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} is {path.stat().st_size} bytes, {size} when written"
    return None


def resume_candidates(output_dir: str | Path, resume: str, *, main_process: bool = True) -> list[tuple[int, Path]]:
    """The whole checkpoints ``--resume_from_checkpoint`` may take, best first: for 'latest' every finished
    one in ``output_dir``, newest first, a damaged one skipped with a notice; else the folder it names."""
    if resume != "latest":
        path = Path(resume)
        if not (path / MARKER).is_file():
            raise StyleBoostError(f"--resume_from_checkpoint {resume}: not a finished checkpoint folder")
        problem = damage(path)
        if problem:
            raise StyleBoostError(f"--resume_from_checkpoint {resume}: the checkpoint is damaged ({problem})")
        return [(int(read_marker(path)["step"]), path)]
    whole = []
    for step, path in reversed(completed_checkpoints(output_dir)):
        problem = damage(path)
        if problem:
            notice(f"skipping {path}: the checkpoint is damaged ({problem})", main_process=main_process)
        else:
            whole.append((step, path))
    return whole


def resolve_resume(output_dir: str | Path, resume: str) -> tuple[int, Path] | None:
    """The checkpoint ``--resume_from_checkpoint`` names: the newest whole one for 'latest' (None if there
    is none), or the folder given."""
    found = resume_candidates(output_dir, resume)
    return found[0] if found else None


def finite(modules) -> bool:
    """Whether every trainable weight of ``modules`` is a finite number."""
    return all(torch.isfinite(p).all().item() for m in modules for p in m.parameters() if p.requires_grad)


def remove_checkpoints_from(output_dir: str | Path, step: int) -> list[Path]:
    """Delete the checkpoints of ``step`` and later (weights that diverged); returns what was removed."""
    removed = [path for s, path in completed_checkpoints(output_dir) if s >= step]
    for path in removed:
        shutil.rmtree(path)
    return removed


def write_marker(folder: Path, step: int, record: dict[str, Any]) -> None:
    """Flush the checkpoint's files, then write the marker naming each file's size, then flush that too."""
    fsync_tree(folder)
    files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    write_json_atomic(folder / MARKER, {"step": step, "files": files, **record})
    fsync_folder(folder)


def save_checkpoint(accelerator, output_dir: str | Path, step: int, limit: int | None,
                    record: dict[str, Any] | None = None) -> Path | None:
    """Write checkpoint-<step> atomically and durably, then prune the oldest beyond ``limit``.
    ``record`` (the run's settings) goes into the marker, for checks on resume."""
    output_dir = Path(output_dir)
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(f"{final.name}.tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process has written its RNG state before the folder is renamed
    if not accelerator.is_main_process:
        return None
    write_marker(tmp, step, record or {})
    move_into_place(tmp, final)
    fsync_folder(output_dir)
    if limit is not None:
        for _, old in completed_checkpoints(output_dir)[:-limit]:
            shutil.rmtree(old)
    return final
