"""A fresh accelerate ``Accelerator`` for one training run: devices, mixed precision, trackers, state."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from styleboost.notice import notice


def make_accelerator(output_dir: Path, mixed_precision: str | None, report_to: str,
                     gradient_accumulation_steps: int = 1):
    """An Accelerator logging to ``output_dir/logs``; tensorboard falls back to no tracker with a notice."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import ProjectConfiguration

    # accelerate keeps its settings in process-wide singletons; a second run in one process (tests,
    # method comparisons) may ask for other ones. The distributed PartialState is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()

    if report_to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        notice("tensorboard is not installed; logging to no tracker (pip install tensorboard)")
        report_to = "none"
    return Accelerator(
        gradient_accumulation_steps=gradient_accumulation_steps,
        mixed_precision=mixed_precision,
        log_with=None if report_to == "none" else report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
