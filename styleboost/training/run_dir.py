"""A training run's output folder: never overwritten without --overwrite, reused by --resume_from_checkpoint."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import manifest_path


def claim_run_dir(output_dir: str | Path, overwrite: bool, resume: str | None, outputs: Sequence[str]) -> Path:
    """Create ``output_dir``; one already holding a run (``run.json`` or checkpoints) needs ``overwrite``
    (its ``outputs`` sub-folders, checkpoints and run.json are cleared) or ``resume``."""
    output_dir = Path(output_dir)
    holds_run = manifest_path(output_dir).exists() or any(output_dir.glob("checkpoint-*"))
    if holds_run and not (overwrite or resume):
        raise StyleBoostError(
            f"--output_dir {output_dir} already holds a run; pass --overwrite to replace it "
            "or --resume_from_checkpoint latest to continue it"
        )
    if holds_run and overwrite and not resume:
        for old in [*output_dir.glob("checkpoint-*"), *(output_dir / name for name in outputs)]:
            shutil.rmtree(old, ignore_errors=True)
        manifest_path(output_dir).unlink(missing_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir
