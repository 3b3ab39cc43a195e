"""Several processes, as users launch them: ``accelerate launch --multi_gpu --num_processes 2``.

On a machine without a GPU the two processes are joined by accelerate's gloo backend. Two processes
with batch b must train the same weights as one process with batch 2b (same seed), generate
DreamBooth's class images once, and checkpoint and resume like one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from styleboost.training.loop import train

SCRIPT = Path(__file__).resolve().parents[1] / "train_scripts" / "train_styleboost.py"
# the in-process reference runs on one thread like each launched process: the same summation order inside
# a matrix product, so only the cross-process sum rounds differently
pytestmark = pytest.mark.usefixtures("one_thread")
METHODS = {
    "lora": dict(method="lora"),
    "textual_inversion": dict(method="textual_inversion", new_token=["<neon>"], learning_rate=5e-2),
    "lora_text_encoder": dict(method="lora", train_text_encoder=True),
}
WEIGHTS = {"lora": "pytorch_lora_weights.safetensors", "textual_inversion": "learned_embeds.safetensors",
           "lora_text_encoder": "pytorch_lora_weights.safetensors"}


def flags(settings: dict) -> list[str]:
    """The command-line flags of TrainConfig settings."""
    argv = []
    for key, value in settings.items():
        if value is True:
            argv.append(f"--{key}")
        elif isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        elif value is not None:
            argv += [f"--{key}", str(value)]
    return argv


def launch(settings: dict, processes: int = 2) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes N train_styleboost.py FLAGS``, one thread a process."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--num_cpu_threads_per_process", "1", "--main_process_port", "0", str(SCRIPT), *flags(settings)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture
def settings(tiny_model_dir, style_dirs, tmp_path):
    """Settings of a short run that every process count shares (each test sets batch and output)."""
    return dict(pretrained_model_name_or_path=tiny_model_dir, styleref_dir=style_dirs[0], aux_dir=style_dirs[1],
                max_train_steps=3, learning_rate=1e-2, lr_scheduler="cosine", report_to="none",
                checkpointing_steps=1000, num_validation_images=1, validation_inference_steps=1)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Equal to float tolerance: a sum over two processes rounds differently from one over a batch of two,
    and Adam's normalisation lifts that rounding to ~1e-5 of a weight where a gradient is near zero."""
    assert a.keys() == b.keys() and a
    worst = max(relative_difference(a[key], b[key]) for key in a)
    assert worst < 1e-3, worst


@pytest.mark.parametrize("name", list(METHODS))
def test_two_processes_train_what_one_process_with_twice_the_batch_trains(name, settings, train_config, tmp_path):
    method = METHODS[name]
    launch({**settings, **method, "train_batch_size": 1, "output_dir": str(tmp_path / "two")})
    two = load_file(str(tmp_path / "two" / WEIGHTS[name]))
    common = {k: v for k, v in settings.items() if k != "pretrained_model_name_or_path"}
    one = train(train_config(**{**common, **method, "train_batch_size": 2, "output_dir": str(tmp_path / "one")}))
    assert_same_weights(two, load_file(str(one.output_dir / WEIGHTS[name])))
    # the comparison can fail: one process with the per-process batch alone trains other weights
    half = train(train_config(**{**common, **method, "train_batch_size": 1, "output_dir": str(tmp_path / "half")}))
    other = load_file(str(half.output_dir / WEIGHTS[name]))
    assert max(relative_difference(two[k], other[k]) for k in two) > 1e-1


def test_two_processes_train_sdxl_loras_on_both_text_encoders_as_one_process_does(settings, train_config, tmp_path):
    """SDXL conditions on the first encoder's penultimate layer: its last layer's LoRA gets no gradient, which
    DDP must be told about."""
    from styleboost.testing import tiny_sdxl_pipeline_path

    sdxl = {**settings, "pretrained_model_name_or_path": str(tiny_sdxl_pipeline_path()), "train_text_encoder": True}
    launch({**sdxl, "train_batch_size": 1, "output_dir": str(tmp_path / "two")})
    two = load_file(str(tmp_path / "two" / WEIGHTS["lora"]))
    one = train(train_config(**{**sdxl, "train_batch_size": 2, "output_dir": str(tmp_path / "one")}))
    assert any(k.startswith("text_encoder_2.") for k in two)
    assert_same_weights(two, load_file(str(one.output_dir / WEIGHTS["lora"])))


def test_class_images_are_drawn_once_and_two_processes_resume_exactly(settings, tmp_path):
    run = dict(settings, aux_mode="generated", aux_dir=None, num_aux_images=3, aux_inference_steps=2,
               max_train_steps=4, checkpointing_steps=2, train_batch_size=1, output_dir=str(tmp_path / "run"))
    first = launch(run)
    assert first.stderr.count("drawing 3 class images") == 1, first.stderr[-2000:]
    assert len(list((tmp_path / "run" / "aux_generated").glob("class_*.png"))) == 3
    straight = load_file(str(tmp_path / "run" / WEIGHTS["lora"]))
    assert (tmp_path / "run" / "checkpoint-2" / "checkpoint.json").is_file()

    resumed = launch({**run, "resume_from_checkpoint": str(tmp_path / "run" / "checkpoint-2")})
    assert "resumed from" in resumed.stderr and "drawing" not in resumed.stderr  # the cache is reused
    assert_same_weights(load_file(str(tmp_path / "run" / WEIGHTS["lora"])), straight)
