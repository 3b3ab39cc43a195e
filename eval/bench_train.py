"""Benchmark of training: the library's own training run timed on the tiny model and on real-shape SD 1.5 / 2.1 / XL.

Every run is the product's ``train(cfg)``; on the real shapes diffusers' DreamBooth LoRA script can run beside it.

**Tiny model** (the default): the embedded default's LoRA settings
(``styleboost/experiments/configs/embedded_default.yaml``) on the tiny test pipeline and the embedded default's
toy-world StyleRef/Aux sets, without trackers, checkpoints or samples, trained for ``--warmup`` + ``--steps``
steps without and with ``cache_latents``, each in a fresh process. Prints steps/s, peak RSS and where a
step's time goes, against the goal of non-UNet overhead below 5 % of a step.

**Real shapes** (``--real sd15 sd21 sdxl``): whole training processes of ``train(TrainConfig(...))`` on
architecture-true SD 1.5, SD 2.1 (v-prediction) and SDXL base pipelines with random weights, built offline from the
released models' configs (``styleboost/sd/configs/real_shapes.yaml``, ``styleboost.testing.real_shape_pipeline_path``,
cached), with LoRA on toy-world StyleRef/Aux sets at the run's resolution, batch 1 (UNet batch 2 through the
prior term). With ``--diffusers-script PATH`` (diffusers' ``examples/dreambooth/train_dreambooth_lora.py``, not
part of this repository) the same folder and images are trained by that script too, with matching settings.
Prints set-up, model load, first step, s/step, final samples, whole-process time and peak RSS (with CUDA:
steps/s and peak CUDA memory).

How runs are timed is the library's: ``styleboost/training/benchmark.py`` (our run and where a step's time
goes), ``training/clock.py`` (the clock both trainers run under) and ``training/benchmark_runs.py`` (the worker
processes, peak RSS and the columns). CPU timings on a small shared machine are at the mercy of other processes;
the 1-minute load average is printed, and ``--threads 1`` gives steadier numbers there.

    python eval/bench_train.py [--steps 50] [--warmup 5] [--threads N]
    python eval/bench_train.py --real sd15 sd21 [--resolution 64] [--real-steps 3] [--threads N]
        [--diffusers-script /tmp/train_dreambooth_lora.py] [--skip-final-samples]
    python eval/bench_train.py --real sdxl --resolution 128 --skip-final-samples   # 14 GB folder, ~16 GB RAM
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

# before the imports below read them; the worker processes inherit them
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from styleboost.core.errors import run_cli
from styleboost.core.paths import default_cache_dir
from styleboost.core.settings import settings_from_args
from styleboost.experiments.embedded import embedded_settings
from styleboost.testing import real_shape_pipeline_path, tiny_pipeline_path
from styleboost.toyworld.assets import default_experiment_root, make_experiment_sets
from styleboost.training.benchmark_runs import BenchConfig, bench_real, bench_steps, real_run, real_table, steps_table


def tiny_settings() -> dict:
    """The embedded default's settings and data on the tiny model, without trackers, checkpoints or samples."""
    sets = make_experiment_sets(default_experiment_root())
    settings = embedded_settings()
    for unused in ("max_train_steps", "validation_steps", "num_validation_images", "validation_inference_steps"):
        settings.pop(unused, None)
    return settings | dict(
        pretrained_model_name_or_path=str(tiny_pipeline_path()), styleref_dir=str(sets.styleref),
        aux_dir=str(sets.aux), report_to="none", checkpointing_steps=10**9, gradient_accumulation_steps=1,
        skip_final_samples=True,
    )


def real_models(names: list[str]) -> dict[str, Path]:
    """The cached random-weight folder of each real-shape model, built on first use."""
    models = {}
    for name in names:
        start = time.perf_counter()
        models[name] = real_shape_pipeline_path(name)
        if time.perf_counter() - start > 5:
            print(f"(built the random-weight {name} folder in {time.perf_counter() - start:.0f} s, cached at {models[name]})")
    return models


def main(argv: list[str] | None = None) -> None:
    cfg = settings_from_args(BenchConfig, argv, prog="bench_train.py", description=__doc__.splitlines()[0])
    if cfg.real:
        run = real_run(cfg, torch.cuda.is_available())
        sets = make_experiment_sets(default_cache_dir() / "bench-train" / f"data-{run.resolution}px", size=run.resolution)
        models = real_models(cfg.real)
        with tempfile.TemporaryDirectory(prefix="bench-train-real-") as tmp:
            rows = bench_real(cfg, run, models, sets.styleref, sets.aux, Path(tmp))
        print("\n".join(real_table(rows, torch.cuda.is_available())))
        return
    settings = tiny_settings()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        results = bench_steps(settings, cfg, Path(tmp))
    print("\n".join(steps_table(results, settings)))


if __name__ == "__main__":
    sys.exit(run_cli(main, prog="bench_train"))
