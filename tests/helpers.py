"""Small shared helpers for the tests: deterministic pipeline outputs, one-line training errors, interrupted runs."""

from __future__ import annotations

import numpy as np
import torch


def render(pipe, prompt: str, seed: int = 0, steps: int = 2) -> np.ndarray:
    """The pipeline's image for ``prompt`` as a float array, with a fixed seed."""
    pipe.set_progress_bar_config(disable=True)
    return pipe(
        prompt,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).images[0]


def load_base(model_dir: str):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(model_dir)


def one_line_error(train_main, capsys, argv: list[str], prog: str = "train_styleboost.py") -> str:
    """The single error line of a run (of ``prog``) that must refuse to start (exit 2, no traceback)."""
    code = train_main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1, err
    return lines[0]


class Interrupted(Exception):
    """Stands for the process dying."""


def killed_after_first_checkpoint(make_config, output_dir, monkeypatch, trainer=None, **settings) -> None:
    """Train ``make_config(output_dir=..., **settings)`` with ``trainer`` (default: the SD trainer) and let it die
    right after its first checkpoint is written."""
    import pytest

    from styleboost.training import checkpoint as ckpt
    from styleboost.training.loop import train

    train = trainer or train
    save = ckpt.save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        train(make_config(output_dir=str(output_dir), **settings))
    monkeypatch.setattr(ckpt, "save_checkpoint", save)


def overfit(run, batch: dict, steps: int) -> list[float]:
    """``steps`` optimizer steps of a built run on one fixed batch (the same draws, so the same noise and timesteps
    every step), as the loop takes them; the loss of each."""
    from styleboost.training.loop import compute_loss

    losses = []
    for _ in range(steps):
        terms = compute_loss(run, batch)
        run.accelerator.backward(terms["loss"])
        run.optimizer.step()
        run.optimizer.zero_grad()
        run.method.after_step(run.models)
        losses.append(terms["loss"].item())
    return losses
