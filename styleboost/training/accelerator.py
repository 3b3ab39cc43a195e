"""A fresh accelerate ``Accelerator`` for one training run: devices, mixed precision, trackers, state."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from styleboost.core.notice import notice

# --report_to tracker -> the package it needs (imported and pip-installed under the same name)
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def make_accelerator(output_dir: Path, mixed_precision: str | None, report_to: str,
                     gradient_accumulation_steps: int = 1):
    """An Accelerator logging to ``output_dir/logs``; a tracker that is not installed falls back to no
    tracker with a notice."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import ProjectConfiguration

    # accelerate keeps its settings in process-wide singletons; a second run in one process (tests,
    # method comparisons) may ask for other ones. The distributed PartialState is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()

    package = TRACKER_PACKAGES.get(report_to)
    if package is not None and importlib.util.find_spec(package) is None:
        notice(f"{package} is not installed; logging to no tracker (pip install {package})")
        report_to = "none"
    return Accelerator(
        cpu=launched_without_gpu(),
        gradient_accumulation_steps=gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=None if report_to == "none" else report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )


def launched_without_gpu() -> bool:
    """Several processes (``accelerate launch --multi_gpu`` or torchrun) on a machine with no accelerator.

    accelerate then leaves every process on its own (``DistributedType.NO``: N unsynchronised copies of the
    run writing the same files); asking for the CPU makes it join them with the gloo backend instead.
    """
    import os

    import torch
    from accelerate.utils import is_mlu_available, is_npu_available, is_xpu_available

    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    if torch.cuda.is_available() or is_xpu_available() or is_npu_available() or is_mlu_available():
        return False
    notice(f"no GPU: the {os.environ['WORLD_SIZE']} processes train on the CPU, joined by the gloo backend",
           main_process=os.environ.get("RANK", "0") == "0")
    return True


def lr_schedule(name: str, optimizer, *, warmup_steps: int, total_steps: int, num_processes: int):
    """diffusers' LR schedule for an optimizer that ``accelerator.prepare`` will wrap.

    accelerate steps a prepared scheduler once per process for every optimizer step (so that a schedule
    written per sample-batch stays right), hence the step counts are multiplied by ``num_processes``: the
    schedule then ends at ``total_steps`` optimizer steps on any number of processes.
    """
    from diffusers.optimization import get_scheduler

    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=warmup_steps * num_processes,
                         num_training_steps=total_steps * num_processes)
