"""Validation images: the final samples can be skipped, are cheap by default on a CPU, and keep the
user's explicit settings."""

from __future__ import annotations

import json

import pytest

from styleboost.core.errors import StyleBoostError
from styleboost.training.config import TrainConfig
from styleboost.training.loop import build_run, train
from styleboost.training.validation import (
    CPU_IMAGES_PER_PROMPT,
    CPU_INFERENCE_STEPS,
    DEFAULT_VALIDATION_PROMPTS,
    run_validation,
)


def count_unet_calls(run) -> list[int]:
    """A one-element counter of the UNet's forward calls from now on."""
    calls = [0]
    run.models.unet.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def timesteps_for(run, steps: int) -> int:
    """How many denoising steps (UNet calls per prompt) the run's inference scheduler makes of ``steps``."""
    scheduler = type(run.models.inference_scheduler).from_config(run.models.inference_scheduler.config)
    scheduler.set_timesteps(steps)
    return len(scheduler.timesteps)


def test_skip_final_samples_writes_no_samples_and_no_image_link(train_config):
    run = train(train_config(max_train_steps=1, skip_final_samples=True))
    assert not (run.output_dir / "samples.png").exists()
    assert not (run.output_dir / "validation").exists() or not any((run.output_dir / "validation").iterdir())
    card = (run.output_dir / "README.md").read_text()
    assert "samples.png" not in card and "![" not in card and "load_lora_weights" in card
    assert json.loads((run.output_dir / "run.json").read_text())["status"] == "finished"


def test_unset_settings_mean_the_defaults():
    cfg = TrainConfig()
    assert cfg.num_validation_images is None and cfg.validation_inference_steps is None
    assert cfg.skip_final_samples is False


def test_cpu_default_draws_fewer_steps_and_one_image_and_says_so(train_config, capsys, monkeypatch):
    monkeypatch.setattr("styleboost.core.notice._seen", set())  # notices print once a process
    run = build_run(train_config(num_validation_images=None, validation_inference_steps=None))
    assert run.accelerator.device.type == "cpu"
    capsys.readouterr()
    calls = count_unet_calls(run)
    grid = run_validation(run, 1, final=True)

    prompts = len(DEFAULT_VALIDATION_PROMPTS)
    assert calls[0] == prompts * timesteps_for(run, CPU_INFERENCE_STEPS)  # one batched (CFG) call per step
    assert CPU_INFERENCE_STEPS < 25 and CPU_IMAGES_PER_PROMPT == 1
    from PIL import Image

    assert Image.open(grid).size == (run.resolution * CPU_IMAGES_PER_PROMPT, run.resolution * prompts)
    recorded = json.loads((run.output_dir / "run.json").read_text())["validation"]
    assert recorded == {"images_per_prompt": CPU_IMAGES_PER_PROMPT, "inference_steps": CPU_INFERENCE_STEPS}
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if line.startswith("styleboost: training on the CPU")]
    assert len(notices) == 1 and f"{CPU_INFERENCE_STEPS} denoising steps" in notices[0]
    assert "final samples" in err  # the progress bar over the final samples


def test_explicit_values_are_kept_on_cpu(train_config, capsys):
    run = build_run(train_config(num_validation_images=2, validation_inference_steps=3))
    capsys.readouterr()
    calls = count_unet_calls(run)
    grid = run_validation(run, 1, final=True)

    prompts = len(DEFAULT_VALIDATION_PROMPTS)
    assert calls[0] == prompts * timesteps_for(run, 3)
    from PIL import Image

    assert Image.open(grid).size == (run.resolution * 2, run.resolution * prompts)
    assert len(list((run.output_dir / "validation" / "step-1").glob("*.png"))) == 2 * prompts
    assert "training on the CPU" not in capsys.readouterr().err


def test_periodic_validation_has_no_progress_bar(train_config, capsys):
    run = build_run(train_config())
    capsys.readouterr()
    run_validation(run, 1)
    assert "final samples" not in capsys.readouterr().err


@pytest.mark.parametrize("setting", ["num_validation_images", "validation_inference_steps"])
def test_zero_images_or_steps_are_refused(train_config, setting):
    with pytest.raises(StyleBoostError, match=f"--{setting}"):
        train_config(**{setting: 0})


def test_settings_that_cannot_apply_are_announced(train_config, capsys, monkeypatch):
    monkeypatch.setattr("styleboost.core.notice._seen", set())
    train_config(skip_final_samples=True, num_validation_images=3, validation_steps=None)
    assert "--num_validation_images" in capsys.readouterr().err
