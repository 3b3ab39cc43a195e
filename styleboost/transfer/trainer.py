"""The loop both transfer trainers run: the AdaIN decoder (``adain_training``) and the per-style encoder-decoder
(``transfer_training``).

One job: from a claimed run folder to a finished run. A trainer describes itself as a ``Job`` (its modules and
optimizers, one step, the loss on a fixed batch, the export); ``run_job`` prepares them with accelerate, resumes
from a checkpoint (every module, every optimizer, the RNG), measures the fixed-batch loss before training,
steps with a progress bar, writes ``checkpoint-N/`` atomically every ``checkpointing_steps``, exports, and
closes ``run.json`` with the loss after, ``train_seconds`` (the checkpointed seconds of earlier runs included)
and status ``finished``. Batches come from ``training_data.draw_batch`` by (seed, step), so a resumed run ends
with the weights of an uninterrupted one, bit for bit.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import package_versions, update_manifest
from styleboost.core.settings import option, settings_from_args
from styleboost.training import checkpoint as ckpt
from styleboost.training.accelerator import make_accelerator
from styleboost.training.run_dir import RunFolder


@dataclass(kw_only=True)
class LoopSettings:
    """The settings every transfer trainer has (its own come after them)."""

    output_dir: str = option(help="Output folder (the trained weights, checkpoint-N/, run.json).")
    content_dir: str = option(help="Content images: a folder, searched recursively.")
    size: int = option(64, "Square crop side the images are trained at (a multiple of 8).")
    batch_size: int = option(8, "Images per step.")
    max_train_steps: int = option(600, "Optimizer steps.")
    learning_rate: float = option(5e-4, "Adam learning rate (constant).")
    seed: int = option(0, "Seed of the initial weights and of every batch.")
    checkpointing_steps: int = option(200, "Save resumable state every N steps.")
    checkpoints_total_limit: int | None = option(2, "Keep at most N checkpoints.")
    resume_from_checkpoint: str | None = option(None, "'latest' or a checkpoint folder to resume from.")
    overwrite: bool = option(False, "Replace a run already in --output_dir.")
    progress: bool = option(True, "Show a progress bar.")

    def validate(self) -> None:
        for name in ("batch_size", "max_train_steps", "checkpointing_steps"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name} must be at least 1")
        if self.size < 16 or self.size % 8:
            raise StyleBoostError(f"--size {self.size}: must be a multiple of 8, at least 16")


def config_from_args(cls: type, argv: list[str] | None, prog: str | None, description: str):
    """A trainer's config from its flags (and ``--config`` YAML), checked."""
    cfg = settings_from_args(cls, argv, prog=prog, description=description)
    cfg.validate()
    return cfg


class Job:
    """One trainer as the loop sees it. ``modules`` and ``optimizers`` are replaced by their prepared versions
    (and ``accelerator`` set) before ``step`` is first called."""

    name = "train"
    accelerator: Any = None

    def __init__(self, modules: list[torch.nn.Module], optimizers: list[torch.optim.Optimizer]) -> None:
        self.modules, self.optimizers = modules, optimizers

    def step(self, step: int) -> dict[str, float]:
        """Draw the batch of ``step`` and take one optimizer step of each optimizer; the losses as floats."""
        raise NotImplementedError

    def fixed_loss(self) -> dict[str, float]:
        """The losses on the fixed batch (``training_data.FIXED_STEP``, ``FIXED_BATCH``), without gradients."""
        raise NotImplementedError

    def export(self, out: Path) -> dict[str, Any]:
        """Write the trained result into ``out``; what to add to run.json."""
        raise NotImplementedError

    def unwrapped(self) -> list[torch.nn.Module]:
        return [self.accelerator.unwrap_model(m) for m in self.modules]


def seeded(seed: int, build):
    """``build()`` under ``torch.manual_seed(seed)``, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def train_job(cfg: LoopSettings, make_job) -> Path:
    """Claim ``cfg.output_dir`` (locked while it trains, never overwritten without --overwrite), build the job
    with ``make_job(cfg)`` (reading the data, so a bad folder changes nothing) and run it; the output folder."""
    cfg.validate()
    with RunFolder(cfg.output_dir).claim(cfg.overwrite, cfg.resume_from_checkpoint) as folder:
        job = make_job(cfg)
        return run_job(folder, cfg, job)


def run_job(folder: RunFolder, cfg: LoopSettings, job: Job) -> Path:
    from tqdm.auto import tqdm  # deferred like the other trainers'

    out = folder.path
    accelerator = make_accelerator(out, "no", "none")
    prepared = accelerator.prepare(*job.modules, *job.optimizers)
    prepared = list(prepared) if isinstance(prepared, (list, tuple)) else [prepared]
    count = len(job.modules)
    job.modules, job.optimizers, job.accelerator = prepared[:count], prepared[count:], accelerator
    resume = ckpt.resolve_resume(out, cfg.resume_from_checkpoint) if cfg.resume_from_checkpoint else None
    start, earlier_seconds = (resume[0], ckpt.read_marker(resume[1]).get("train_seconds", 0.0)) if resume else (0, 0.0)
    if resume:
        accelerator.load_state(str(resume[1]))
    folder.start()
    before = None if resume else job.fixed_loss()
    update_manifest(out, config=dataclasses.asdict(cfg), versions=package_versions(), status="training",
                    **({"loss_before": before} if before else {}))
    started = time.time()
    progress = tqdm(total=cfg.max_train_steps, initial=start, desc=job.name, disable=not cfg.progress)
    for step in range(start + 1, cfg.max_train_steps + 1):
        terms = job.step(step)
        progress.update(1)
        progress.set_postfix(loss=f"{terms['loss']:.4f}")
        if step % cfg.checkpointing_steps == 0 and step < cfg.max_train_steps:
            seconds = round(earlier_seconds + time.time() - started, 1)
            ckpt.save_checkpoint(accelerator, out, step, cfg.checkpoints_total_limit, {"train_seconds": seconds})
    progress.close()
    seconds = earlier_seconds + time.time() - started
    after = job.fixed_loss()
    exported = job.export(out)
    update_manifest(out, status="finished", loss_after=after, train_seconds=round(seconds, 1),
                    resumed_from_step=start or None, **exported)
    return out
