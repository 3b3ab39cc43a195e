"""Benchmark of training: the library's own LoRA training step, on the tiny model and on real shapes.

**Tiny model** (the default). Runs the embedded default training set-up (the tiny local model, the
toy StyleRef/Aux sets, LoRA; see ``styleboost/experiments/configs/embedded_default.yaml``) through the
library's own ``build_run`` / ``micro_step`` / ``end_of_step``, with and without
``cache_latents``, and prints steps/s, peak memory and where a step's time goes. The goal it
checks: non-UNet overhead below 5 % of a step.

How the time is split (method): the step is timed as a whole (fetching the batch from the
dataloader, ``micro_step``, ``end_of_step``) and the UNet is timed from inside it:

- UNet forward: forward pre- and post-hooks on the UNet module.
- UNet backward: from the moment the loss gradient reaches the UNet output (a tensor hook
  registered on the output by the forward post-hook) until ``accelerator.backward`` returns.
  Nothing but the UNet's graph (and the LoRA gradients it accumulates) runs in that window: the
  VAE and the text encoder are frozen and their outputs do not require gradients.

Everything else is non-UNet overhead. It is further split by timing wrappers put on the run's
own objects (instance attributes, no library code changes): the dataloader, ``vae.encode``, the
text conditioning, loss backward (``accelerator.backward`` minus the UNet backward), gradient
clipping, the optimizer and LR-scheduler steps plus ``zero_grad``, ``end_of_step`` (logging,
history), and "other in micro_step" (noise, targets, loss, the sample generators,
autocast/accumulate contexts, the finiteness check). On CUDA every timer point is preceded by
``torch.cuda.synchronize()`` so that GPU work is charged where it is queued.

Peak memory: each configuration runs in a fresh subprocess, so the peak RSS
(``resource.getrusage``) belongs to that configuration alone (set-up included: imports, model
loading and, with ``cache_latents``, the VAE pass over the data); the RSS once set up is printed
beside it, so the difference is what training itself adds. On CUDA
``torch.cuda.max_memory_allocated`` is reset after set-up, so it is the training steps' peak.

**Real shapes** (``--real sd15 sd21``). Architecture-true SD 1.5 and SD 2.1 (v-prediction)
pipelines with random weights, built offline from the released models' configs
(``styleboost/sd/configs/real_shapes.yaml``, ``styleboost.testing.real_shape_pipeline_path``) and
cached as diffusers folders under ``styleboost.core.paths.default_cache_dir()``, so they load through
``from_pretrained`` like a user's model. Each run is a whole training process, started fresh:
``styleboost.training.loop.train(TrainConfig(...))`` (``build_run``, ``train_loop`` over ``micro_step``,
``finish``) on the toy StyleRef/Aux sets with LoRA, batch 1 (UNet batch 2: StyleRef + Aux
through the prior term). With ``--diffusers-script PATH`` (diffusers'
``examples/dreambooth/train_dreambooth_lora.py``, not part of this repository) the same model
folder and images are trained by that script too, with matching settings (resolution, batch 1 with
prior preservation, LoRA rank, steps, learning rate, seed, gradient checkpointing, mixed
precision, 8-bit Adam and xformers where installed, tensorboard, no validation, no checkpoints).

How a run is timed (method, the same for both trainers): the child process is this file in a
worker mode that installs a ``Clock`` and then calls ``train`` or runs the script as
``__main__`` (``runpy``). The clock only wraps, it changes nothing: a ``tqdm`` subclass marks
the training bar's creation (desc ``steps``; the loop starts) and each of its updates (one
optimizer step each; on CUDA after ``torch.cuda.synchronize()``); ``from_pretrained`` of
diffusers models, transformers models and pipelines is timed as "model load" (outermost calls);
``StableDiffusionPipeline.__call__`` as "samples". The parent times the whole process from spawn
to exit and reads its peak RSS from ``os.wait4`` (``ru_maxrss`` of the child). Columns:
set-up = spawn to the loop's start (interpreter, imports, model load, data, optimizer,
accelerate), 1st step, s/step = the mean of the later steps, after = the loop's end to exit
(final samples, export, model card; the script reloads the pipeline to check the LoRA loads).
Our rows also get the library's own set-up and finishing functions timed (``OUR_STAGES``). The
model folder is read through once before each model's runs, so every run finds it in the page cache.
On CPU the runs default to 64 px, 3 steps, fp32, no gradient checkpointing; with CUDA to
512 px, 20 steps, fp16 mixed precision, gradient checkpointing, 8-bit Adam, and each attention
(SDPA, and xformers when installed), printing steps/s and ``torch.cuda.max_memory_allocated``
(during the loop, and overall).

CPU timings on a small shared machine are at the mercy of other processes: with every core busy,
OpenMP threads that wait for each other can make a step many times slower. The 1-minute load
average is printed; ``--threads 1`` gives steadier numbers there.

    python eval/bench_train.py [--steps 50] [--warmup 5] [--threads N]
    python eval/bench_train.py --real sd15 sd21 [--resolution 64] [--real-steps 3] [--threads N]
        [--diffusers-script /tmp/train_dreambooth_lora.py] [--skip-final-samples]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

# Rows of the breakdown, in step order; "unet_fwd" and "unet_bwd" are the UNet, the rest overhead.
PARTS = {
    "data": "dataloader (decode, transform, collate)",
    "vae": "VAE encode",
    "text": "text conditioning",
    "unet_fwd": "UNet forward",
    "unet_bwd": "UNet backward",
    "loss_bwd": "loss backward (outside UNet)",
    "clip": "grad clipping",
    "optim": "optimizer + LR scheduler + zero_grad",
    "other": "other in micro_step (noise, loss, ...)",
    "end": "end_of_step (logs, history)",
}
UNET_PARTS = ("unet_fwd", "unet_bwd")
GOAL_PERCENT = 5.0


CUDA = torch.cuda.is_available()


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def now() -> float:
    sync()
    return time.perf_counter()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# ----------------------------------------------------------------------------- one configuration


class StepProbe:
    """Timers put on a built run: hooks on the UNet, wrappers on the objects the step calls."""

    def __init__(self, run):
        self.totals = dict.fromkeys(PARTS, 0.0)
        self._bwd_start: float | None = None
        self._fwd_start = 0.0
        unet = run.models.unet
        unet.register_forward_pre_hook(self._pre_forward)
        unet.register_forward_hook(self._post_forward)
        self._wrap(run.accelerator, "backward", None, after=self._end_backward)
        self._wrap(run.accelerator, "clip_grad_norm_", "clip")
        self._wrap(run.optimizer, "step", "optim")
        self._wrap(run.optimizer, "zero_grad", "optim")
        self._wrap(run.lr_scheduler, "step", "optim")
        self._wrap(run.models.vae, "encode", "vae")
        self._wrap(run, "conditioning", "text")

    def reset(self) -> None:
        self.totals = dict.fromkeys(PARTS, 0.0)

    def _wrap(self, obj, name: str, part: str | None, after=None) -> None:
        inner = getattr(obj, name)

        def timed(*args, **kwargs):
            start = now()
            result = inner(*args, **kwargs)
            end = now()
            if part:
                self.totals[part] += end - start
            if after:
                after(start, end)
            return result

        setattr(obj, name, timed)  # an instance attribute: shadows the method for this object only

    def _pre_forward(self, module, args):
        self._fwd_start = now()

    def _post_forward(self, module, args, output):
        self.totals["unet_fwd"] += now() - self._fwd_start
        sample = output[0] if isinstance(output, tuple) else output.sample
        if sample.requires_grad:
            sample.register_hook(self._grad_reaches_unet)

    def _grad_reaches_unet(self, grad):
        self._bwd_start = now()

    def _end_backward(self, start: float, end: float) -> None:
        bwd_start = self._bwd_start if self._bwd_start is not None else end
        self.totals["unet_bwd"] += end - bwd_start
        self.totals["loss_bwd"] += bwd_start - start
        self._bwd_start = None


def bench_one(spec: dict) -> dict:
    """Build the run ``spec`` describes, warm up, time ``spec['steps']`` steps; a JSON-able result."""
    from tqdm.auto import tqdm

    from styleboost.training.config import TrainConfig
    from styleboost.training.loop import build_run, end_of_step, micro_step

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    warmup, steps = spec["warmup"], spec["steps"]
    cfg = TrainConfig(**spec["settings"], max_train_steps=warmup + steps)
    cfg.validate()
    start = time.perf_counter()
    run = build_run(cfg)
    setup_s = time.perf_counter() - start
    setup_rss = current_rss_mib()
    probe = StepProbe(run)
    params = [p for group in run.optimizer.param_groups for p in group["params"]]
    if CUDA:
        torch.cuda.reset_peak_memory_stats()  # the training steps' peak, not the set-up's

    batches = iter(run.dataloader)
    step_times, micro_total, end_total, data_total = [], 0.0, 0.0, 0.0
    with tqdm(disable=True) as progress:
        for step in range(warmup + steps):
            if step == warmup:
                probe.reset()
                step_times, micro_total, end_total, data_total = [], 0.0, 0.0, 0.0
            t0 = now()
            batch = next(batches)
            t1 = now()
            terms = micro_step(run, batch, step, params)
            t2 = now()
            assert run.accelerator.sync_gradients, "the benchmark expects gradient_accumulation_steps=1"
            end_of_step(run, step + 1, terms, progress)
            t3 = now()
            step_times.append(t3 - t0)
            data_total, micro_total, end_total = data_total + t1 - t0, micro_total + t2 - t1, end_total + t3 - t2

    totals = probe.totals
    totals["data"], totals["end"] = data_total, end_total
    inside = sum(v for k, v in totals.items() if k not in ("data", "end", "other"))
    totals["other"] = micro_total - inside
    batch_size = sum(len(part["captions"]) for key, part in batch.items() if isinstance(part, dict))
    return {
        "cache_latents": cfg.cache_latents,
        "setup_s": setup_s,
        "step_times": step_times,
        "per_step_ms": {k: 1000 * v / steps for k, v in totals.items()},
        "peak_rss_mib": peak_rss_mib(),
        "setup_rss_mib": setup_rss,
        "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if CUDA else None,
        "device": str(run.accelerator.device),
        "threads": torch.get_num_threads(),
        "resolution": run.resolution,
        "latent_size": run.resolution // (2 ** (len(run.models.vae.config.block_out_channels) - 1)),
        "unet_batch": batch_size,
        "final_loss": float(terms["loss"].detach()),
    }


def run_in_subprocess(spec: dict) -> dict:
    """``bench_one`` in a fresh interpreter, so that its peak RSS is its own."""
    proc = subprocess.run(
        [sys.executable, __file__, "--_one", json.dumps(spec)], check=False, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"bench_train: configuration {spec['settings']['cache_latents']=} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- the tiny-model table


def tiny_settings(root: Path) -> dict:
    """The embedded default run, on a fresh output folder, without trackers, checkpoints or validation."""
    from styleboost.experiments.embedded import embedded_settings
    from styleboost.testing import tiny_pipeline_path
    from styleboost.styles.toydata import make_default_datasets

    styleref, aux = make_default_datasets(root / "toy-style", size=64, seed=0)
    settings = embedded_settings()
    settings.update(
        pretrained_model_name_or_path=str(tiny_pipeline_path()),
        styleref_dir=str(styleref),
        aux_dir=str(aux),
        report_to="none",
        checkpointing_steps=10**9,
        validation_steps=None,
        gradient_accumulation_steps=1,
    )
    settings.pop("max_train_steps", None)
    return settings


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def print_tiny_table(results: list[dict], settings: dict) -> None:
    first = results[0]
    print(
        f"tiny model, LoRA rank {settings.get('rank')}: device {first['device']}, torch threads {first['threads']}, "
        f"resolution {first['resolution']} px (latents {first['latent_size']}x{first['latent_size']}), "
        f"UNet batch {first['unet_batch']} (StyleRef + Aux), mixed precision {settings.get('mixed_precision') or 'no'}"
    )
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"
    print(
        f"torch {torch.__version__}; {os.cpu_count()} CPUs, load average {load} before the runs; "
        f"timed steps {len(first['step_times'])} after warm-up\n"
    )
    cuda = first["cuda_peak_mib"] is not None
    head = f"{'cache_latents':>13} {'steps/s':>8} {'ms/step':>8} {'median':>8} {'UNet f+b':>9} {'non-UNet':>9}"
    head += f" {'peak RSS':>9} {'set-up RSS':>10}" + (f" {'CUDA peak':>10}" if cuda else "")
    print(head)
    units = f"{'':>13} {'':>8} {'(mean)':>8} {'ms/step':>8} {'ms/step':>9} {'share':>9} {'MiB':>9} {'MiB':>10}"
    print(units + (f" {'MiB':>10}" if cuda else ""))
    for r in results:
        mean = sum(r["step_times"]) / len(r["step_times"])
        unet = sum(r["per_step_ms"][k] for k in UNET_PARTS)
        total = sum(r["per_step_ms"].values())
        line = (
            f"{r['cache_latents']!s:>13} {1 / mean:8.1f} {1000 * mean:8.2f} {1000 * median(r['step_times']):8.2f} "
            f"{unet:9.2f} {100 * (1 - unet / total):8.1f}% {r['peak_rss_mib']:9.0f} "
            f"{r['setup_rss_mib'] or float('nan'):10.0f}"
        )
        print(line + (f" {r['cuda_peak_mib']:10.1f}" if cuda else ""))

    print("\nwhere a step's time goes (ms/step, share of the step):")
    print(f"{'':42}" + "".join(f" {'cache=' + str(r['cache_latents']):>17}" for r in results))
    for key, label in PARTS.items():
        cells = []
        for r in results:
            ms, total = r["per_step_ms"][key], sum(r["per_step_ms"].values())
            cells.append(f" {ms:8.2f} {100 * ms / total:6.1f}% ")
        print(f"{('  ' if key in UNET_PARTS else '* ') + label:42}" + "".join(cells))
    print("(* = non-UNet overhead)")
    for r in results:
        unet = sum(r["per_step_ms"][k] for k in UNET_PARTS)
        share = 100 * (1 - unet / sum(r["per_step_ms"].values()))
        verdict = "meets" if share < GOAL_PERCENT else "misses"
        print(
            f"cache_latents={r['cache_latents']}: non-UNet overhead {share:.1f}% "
            f"{verdict} the < {GOAL_PERCENT:.0f}% goal "
            f"(set-up {r['setup_s']:.1f} s, last loss {r['final_loss']:.4f})"
        )


# ----------------------------------------------------------------------------- real shapes: the clock in a child


class Clock:
    """Timestamps of one training process, taken by wrappers that change nothing they wrap.

    ``install`` must run before the trainer imports ``tqdm.auto``: the training bar is found by its
    description (``steps``, either case), so it works for the library's loop and diffusers' script alike.
    """

    def __init__(self, path: str):
        self.path = path
        self.started = time.time()
        self.loop_start: float | None = None
        self.step_ends: list[float] = []
        self.spans: list[tuple[str, float, float]] = []  # (kind, start, end) of outermost calls
        self._depth: dict[str, int] = {}
        self.cuda_before_loop = 0
        self.cuda_loop_peak = 0

    def _sync(self) -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()

    def loop_started(self) -> None:
        self._sync()
        self.loop_start = time.time()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self.cuda_before_loop = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()

    def step_done(self) -> None:
        self._sync()
        self.step_ends.append(time.time())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self.cuda_loop_peak = torch.cuda.max_memory_allocated()

    @contextlib.contextmanager
    def span(self, kind: str) -> Iterator[None]:
        self._depth[kind] = self._depth.get(kind, 0) + 1
        start = time.time()
        try:
            yield
        finally:
            self._depth[kind] -= 1
            if not self._depth[kind]:
                self.spans.append((kind, start, time.time()))

    def _time_classmethod(self, cls: type, name: str, kind: str) -> None:
        inner = cls.__dict__[name].__func__
        clock = self

        @functools.wraps(inner)
        def timed(klass, *args, **kwargs):
            with clock.span(kind):
                return inner(klass, *args, **kwargs)

        setattr(cls, name, classmethod(timed))

    def install(self) -> None:
        import tqdm.auto

        clock = self
        base = tqdm.auto.tqdm

        class ClockedBar(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._clocked = str(kwargs.get("desc", "")).lower() == "steps"
                if self._clocked:
                    clock.loop_started()

            def update(self, n=1):
                result = super().update(n)
                if self._clocked:
                    clock.step_done()
                return result

        tqdm.auto.tqdm = ClockedBar

        from diffusers import DiffusionPipeline, ModelMixin, StableDiffusionPipeline
        from transformers import PreTrainedModel

        for cls in (ModelMixin, PreTrainedModel, DiffusionPipeline):
            self._time_classmethod(cls, "from_pretrained", "load")
        call = StableDiffusionPipeline.__call__

        @functools.wraps(call)
        def timed_call(pipe, *args, **kwargs):
            with clock.span("samples"):
                return call(pipe, *args, **kwargs)

        StableDiffusionPipeline.__call__ = timed_call

    def write(self, **extra: Any) -> None:
        self._sync()
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        record = {
            "started": self.started,
            "loop_start": self.loop_start,
            "step_ends": self.step_ends,
            "spans": self.spans,
            "cuda_loop_peak": self.cuda_loop_peak if cuda else None,
            "cuda_peak": max(self.cuda_before_loop, self.cuda_loop_peak, torch.cuda.max_memory_allocated())
            if cuda else None,
            "threads": torch.get_num_threads(),
            "ended": time.time(),
            **extra,
        }
        Path(self.path).write_text(json.dumps(record))


# The library's own set-up and finishing functions, timed inside our runs (module, attribute path).
OUR_STAGES = (
    ("styleboost.training.loop", "load_models"),
    ("styleboost.training.loop", "load_training_sets"),
    ("styleboost.training.methods", "Method.apply"),
    ("styleboost.training.loop", "place_models"),
    ("styleboost.training.loop", "enable_memory_features"),
    ("styleboost.training.loop", "make_optimizer"),
    ("accelerate", "Accelerator.prepare"),
    ("styleboost.training.loop", "make_conditioning"),
    ("styleboost.training.loop", "write_start_manifest"),
    ("styleboost.training.loop", "init_trackers"),
    ("styleboost.training.validation", "run_validation"),
    ("styleboost.training.export", "export_weights"),
    ("styleboost.training.model_card", "write_model_card"),
)


def time_stages(clock: Clock) -> None:
    """Time each of ``OUR_STAGES`` as a span of its own name (wrappers set on the module or class)."""
    import importlib

    for module_name, path in OUR_STAGES:
        owner: Any = importlib.import_module(module_name)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        inner = getattr(owner, name)

        def timed(*args, _inner=inner, _kind=path, **kwargs):
            with clock.span(_kind):
                return _inner(*args, **kwargs)

        setattr(owner, name, functools.wraps(inner)(timed))


def child_ours(spec: dict) -> None:
    """Worker: the library's whole training run, ``train(TrainConfig(...))``, under a clock."""
    clock = Clock(spec["clock"])
    clock.install()
    from styleboost.training.config import TrainConfig
    from styleboost.training.loop import train

    time_stages(clock)
    clock.spans.append(("imports", clock.started, time.time()))
    try:
        cfg = TrainConfig(**spec["settings"])
        cfg.validate()
        run = train(cfg)
        clock.write(device=str(run.accelerator.device), resolution=run.resolution)
    except BaseException:
        clock.write(failed=True)
        raise


def child_script(spec: dict) -> None:
    """Worker: a training script run as ``__main__`` with ``spec['args']``, under a clock."""
    import runpy

    clock = Clock(spec["clock"])
    clock.install()
    sys.argv = [spec["script"], *spec["args"]]
    try:
        runpy.run_path(spec["script"], run_name="__main__")
        clock.write()
    except BaseException:
        clock.write(failed=True)
        raise


# ----------------------------------------------------------------------------- real shapes: the parent


def run_timed(argv: list[str], log: Path, env: dict[str, str]) -> tuple[int, float, float, float]:
    """Run ``argv`` to its end with output to ``log``: (exit code, spawn time, exit time, peak RSS MiB)."""
    with log.open("w") as out:
        start = time.time()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        end = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keeps Popen from waiting again
    return proc.returncode, start, end, usage.ru_maxrss / 1024  # Linux: KiB


def phases(clock: dict, spawned: float, exited: float) -> dict[str, Any]:
    """The clock's timestamps as the table's columns (seconds)."""
    loop_start = clock["loop_start"]
    ends = clock["step_ends"]
    loop_end = ends[-1] if ends else None
    steps = [b - a for a, b in zip([loop_start, *ends], ends)] if loop_start else []

    def spent(kind: str, lo: float | None, hi: float | None) -> float:
        lo, hi = lo if lo is not None else float("-inf"), hi if hi is not None else float("inf")
        return sum(max(0.0, min(e, hi) - max(s, lo)) for k, s, e in clock["spans"] if k == kind)

    later = steps[1:]
    return {
        "whole": exited - spawned,
        "setup": (loop_start - spawned) if loop_start else None,
        "load_before": spent("load", None, loop_start),
        "first_step": steps[0] if steps else None,
        "per_step": sum(later) / len(later) if later else (steps[0] if steps else None),
        "loop": (loop_end - loop_start) if loop_end else None,
        "after": (exited - loop_end) if loop_end else None,
        "samples_after": spent("samples", loop_end, None) if loop_end else None,
        "load_after": spent("load", loop_end, None) if loop_end else None,
        "steps": len(steps),
        "stages": {"python + torch import": clock["started"] - spawned}
        | {k: spent(k, None, None) for k in dict.fromkeys(k for k, _, _ in clock["spans"]) if k not in ("load", "samples")},
    }


def read_through(folder: Path) -> None:
    """Read every file of ``folder`` once, so that each run finds the model in the page cache alike
    (otherwise the first run after a build or a reboot pays the disk)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 24):
                    pass


def image_only_copy(folder: Path, target: Path) -> Path:
    """``target`` holding links to the images of ``folder`` alone: diffusers' script opens every file
    of its data folders as an image, and ours hold captions (.txt) beside them."""
    target.mkdir(parents=True, exist_ok=True)
    for image in sorted(folder.iterdir()):
        if image.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
            (target / image.name).symlink_to(image.resolve())
    return target


def real_settings(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    """The run settings both trainers get, with this machine's defaults filled in."""
    return {
        "resolution": args.resolution or (512 if cuda else 64),
        "steps": args.real_steps or (20 if cuda else 3),
        "rank": args.rank,
        "mixed_precision": args.mixed_precision or ("fp16" if cuda else "no"),
        "gradient_checkpointing": cuda if args.gradient_checkpointing is None else args.gradient_checkpointing,
        "use_8bit_adam": cuda if args.use_8bit_adam is None else args.use_8bit_adam,
        "learning_rate": 1e-4,
        "seed": 0,
    }


def ours_settings(s: dict, model: Path, styleref: Path, aux: Path, out: Path, xformers: bool, skip: bool) -> dict:
    return dict(
        pretrained_model_name_or_path=str(model), styleref_dir=str(styleref), aux_dir=str(aux), aux_mode="curated",
        output_dir=str(out), overwrite=True, resolution=s["resolution"], train_batch_size=1,
        max_train_steps=s["steps"], rank=s["rank"], learning_rate=s["learning_rate"], lr_scheduler="constant",
        seed=s["seed"], checkpointing_steps=10**9, mixed_precision=s["mixed_precision"],
        gradient_checkpointing=s["gradient_checkpointing"], use_8bit_adam=s["use_8bit_adam"],
        enable_xformers_memory_efficient_attention=xformers, report_to="tensorboard", skip_final_samples=skip,
    )


def script_args(s: dict, model: Path, instance: Path, klass: Path, out: Path, xformers: bool) -> list[str]:
    """diffusers' train_dreambooth_lora.py flags for the same run (no --validation_prompt: no validation)."""
    count = len(list(klass.iterdir()))  # as many class images as there are: the script then generates none
    argv = [
        "--pretrained_model_name_or_path", str(model), "--instance_data_dir", str(instance),
        "--instance_prompt", "sks style", "--with_prior_preservation", "--class_data_dir", str(klass),
        "--class_prompt", "a photo of a person", "--num_class_images", str(count), "--prior_loss_weight", "1.0",
        "--output_dir", str(out), "--resolution", str(s["resolution"]), "--train_batch_size", "1",
        "--max_train_steps", str(s["steps"]), "--rank", str(s["rank"]), "--learning_rate", str(s["learning_rate"]),
        "--lr_scheduler", "constant", "--lr_warmup_steps", "0", "--seed", str(s["seed"]),
        "--checkpointing_steps", str(10**9), "--mixed_precision", s["mixed_precision"], "--report_to", "tensorboard",
    ]
    if s["gradient_checkpointing"]:
        argv.append("--gradient_checkpointing")
    if s["use_8bit_adam"] and importlib.util.find_spec("bitsandbytes"):
        argv.append("--use_8bit_adam")
    if xformers:
        argv.append("--enable_xformers_memory_efficient_attention")
    return argv


def log_findings(log: Path, trainer: str) -> list[str]:
    """The notices of our run, or why the script failed (a missing package named as such)."""
    lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
    if trainer == "styleboost":
        return [line for line in lines if line.startswith("styleboost:")]
    missing = [line for line in lines if "ModuleNotFoundError" in line or "ImportError" in line]
    return missing[-1:] or [line for line in lines if line.strip()][-3:]


def run_real(args: argparse.Namespace) -> None:
    """The real-shapes table: each model x attention x trainer in a fresh process."""
    from styleboost.core.paths import default_cache_dir
    from styleboost.testing import real_shape_configs, real_shape_pipeline_path
    from styleboost.styles.toydata import make_default_datasets

    cuda = torch.cuda.is_available()
    s = real_settings(args, cuda)
    attentions = ["sdpa"] + (["xformers"] if cuda and importlib.util.find_spec("xformers") else [])
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cache = default_cache_dir() / "bench-train"
    styleref, aux = make_default_datasets(cache / f"data-{s['resolution']}px", size=s["resolution"], seed=0)
    script = Path(args.diffusers_script).resolve() if args.diffusers_script else None
    if script and not script.is_file():
        raise SystemExit(f"bench_train: --diffusers-script {script} is not a file")
    device = torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores)"
    print(
        f"real shapes, random weights: LoRA rank {s['rank']}, {s['resolution']} px, batch 1 (UNet batch 2: "
        f"StyleRef + Aux prior), {s['steps']} steps, mixed precision {s['mixed_precision']}, gradient checkpointing "
        f"{'on' if s['gradient_checkpointing'] else 'off'}, 8-bit Adam {'asked' if s['use_8bit_adam'] else 'off'}"
        f"{'' if not s['use_8bit_adam'] or importlib.util.find_spec('bitsandbytes') else ' (bitsandbytes missing)'}"
        f"; {device}, OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}; torch {torch.__version__}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-real-") as tmp:
        tmp_path = Path(tmp)
        instance = image_only_copy(styleref, tmp_path / "instance")
        klass = image_only_copy(aux, tmp_path / "class")
        for name in args.real:
            built = time.perf_counter()
            model = real_shape_pipeline_path(name)
            built = time.perf_counter() - built
            if built > 5:
                print(f"(built the random-weight {name} folder in {built:.0f} s, cached at {model})")
            unet = real_shape_configs(name)["unet"]
            read_through(model)
            for attention in attentions:
                xformers = attention == "xformers"
                trainers = []
                if "styleboost" in args.trainers:
                    trainers.append(("styleboost", ours_settings(s, model, styleref, aux, tmp_path / f"ours-{name}-{attention}",
                                                                 xformers, args.skip_final_samples)))
                if script and "diffusers" in args.trainers:
                    trainers.append(("diffusers", script_args(s, model, instance, klass,
                                                             tmp_path / f"theirs-{name}-{attention}", xformers)))
                for trainer, payload in trainers:
                    clock_path = tmp_path / f"clock-{trainer}-{name}-{attention}.json"
                    log = tmp_path / f"log-{trainer}-{name}-{attention}.txt"
                    if trainer == "styleboost":
                        spec, mode = {"settings": payload, "clock": str(clock_path)}, "--_ours"
                    else:
                        spec, mode = {"script": str(script), "args": payload, "clock": str(clock_path)}, "--_script"
                    load = os.getloadavg()[0]
                    code, spawned, exited, rss = run_timed([sys.executable, __file__, mode, json.dumps(spec)], log, env)
                    clock = json.loads(clock_path.read_text()) if clock_path.exists() else None
                    ok = code == 0 and clock is not None and not clock.get("failed")
                    row = {"model": name, "trainer": trainer, "attention": attention, "ok": ok, "code": code,
                           "rss": rss, "load_avg": load, "findings": log_findings(log, trainer)}
                    if clock:
                        row |= phases(clock, spawned, exited) | {"cuda_loop_peak": clock["cuda_loop_peak"],
                                                                  "cuda_peak": clock["cuda_peak"]}
                    if trainer == "diffusers":
                        row["command"] = " ".join([sys.executable, str(script), *payload])
                    if args.keep_logs:
                        Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
                        (Path(args.keep_logs) / log.name).write_text(log.read_text(errors="replace"))
                    rows.append(row)
                    print(f"  ran {trainer} on {name} ({attention}): exit {code}, "
                          f"{row.get('whole', exited - spawned):.1f} s", flush=True)
            print(f"  {name}: UNet cross-attention {unet['cross_attention_dim']}, heads {unet['attention_head_dim']}, "
                  f"sample size {unet['sample_size']}")
    print_real_table(rows, cuda)


def print_real_table(rows: list[dict], cuda: bool) -> None:
    def cell(value: float | None, width: int, digits: int = 1) -> str:
        return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    print("\nseconds; set-up and after include the model-load and samples columns beside them")
    head = (f"{'model':5} {'trainer':10} {'attn':8} {'whole':>7} {'set-up':>7} {'load':>6} {'1st step':>8} "
            f"{'s/step':>7} {'steps/s':>7} {'loop':>7} {'after':>6} {'samples':>7} {'reload':>6} {'peak RSS':>9}")
    if cuda:
        head += f" {'CUDA loop':>9} {'CUDA all':>9}"
    print(head + f" {'load avg':>8}")
    for r in rows:
        if "whole" not in r:
            print(f"{r['model']:5} {r['trainer']:10} {r['attention']:8} failed (exit {r['code']}) before timing")
            continue
        per = r["per_step"]
        line = (
            f"{r['model']:5} {r['trainer']:10} {r['attention']:8} {cell(r['whole'], 7)} {cell(r['setup'], 7)} "
            f"{cell(r['load_before'], 6)} {cell(r['first_step'], 8, 2)} {cell(per, 7, 2)} "
            f"{cell(1 / per if per else None, 7, 2)} {cell(r['loop'], 7)} {cell(r['after'], 6)} "
            f"{cell(r['samples_after'], 7)} {cell(r['load_after'], 6)} {r['rss']:9.0f}"
        )
        if cuda:
            mib = [None if r[k] is None else r[k] / 2**20 for k in ("cuda_loop_peak", "cuda_peak")]
            line += f" {cell(mib[0], 9, 0)} {cell(mib[1], 9, 0)}"
        print(line + f" {r['load_avg']:8.1f}" + ("" if r["ok"] else f"  FAILED (exit {r['code']})"))
    print("(peak RSS and CUDA in MiB; s/step is the mean after the first step; reload = model loading after the loop;"
          " load avg = 1-minute load average at the run's start; load is short because the safetensors are"
          " memory-mapped from the page cache: their first reads land in the first step)")
    for r in rows:
        if r.get("stages") and r["trainer"] == "styleboost":
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
            print(f"{r['model']} {r['trainer']} {r['attention']} stages (s): {parts}")
    for r in rows:
        for finding in r["findings"]:
            if r["trainer"] == "styleboost" or not r["ok"]:
                print(f"{r['model']} {r['trainer']} {r['attention']}: {finding}")
        if r.get("command"):
            print(f"{r['model']} diffusers script command: {r['command']}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="Tiny model: timed steps per configuration.")
    parser.add_argument("--warmup", type=int, default=5, help="Tiny model: untimed warm-up steps per configuration.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own).")
    parser.add_argument("--real", nargs="+", choices=("sd15", "sd21"),
                        help="Benchmark whole training runs on these architecture-true models instead of the tiny one.")
    parser.add_argument("--resolution", type=int, help="Real shapes: image size (default: 512 on CUDA, 64 on CPU).")
    parser.add_argument("--real-steps", type=int, help="Real shapes: training steps (default: 20 on CUDA, 3 on CPU).")
    parser.add_argument("--rank", type=int, default=4, help="Real shapes: LoRA rank.")
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"),
                        help="Real shapes (default: fp16 on CUDA, no on CPU).")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction,
                        help="Real shapes (default: on with CUDA, off on CPU).")
    parser.add_argument("--use-8bit-adam", action=argparse.BooleanOptionalAction,
                        help="Real shapes: bitsandbytes' 8-bit AdamW where installed (default: on with CUDA).")
    parser.add_argument("--skip-final-samples", action="store_true",
                        help="Real shapes: our runs draw no final samples (the script draws none without a prompt).")
    parser.add_argument("--diffusers-script", help="Real shapes: diffusers' train_dreambooth_lora.py, run beside ours.")
    parser.add_argument("--keep-logs", help="Real shapes: copy each run's output into this folder.")
    parser.add_argument("--trainers", nargs="+", choices=("styleboost", "diffusers"), default=["styleboost", "diffusers"],
                        help="Real shapes: which trainers to run (diffusers only with --diffusers-script).")
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    parser.add_argument("--_ours", help=argparse.SUPPRESS)
    parser.add_argument("--_script", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._one:  # worker: one tiny configuration, result as the last stdout line
        print(json.dumps(bench_one(json.loads(args._one))))
        return
    if args._ours:
        child_ours(json.loads(args._ours))
        return
    if args._script:
        child_script(json.loads(args._script))
        return
    if args.real:
        run_real(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        from styleboost.core.paths import default_cache_dir

        settings = tiny_settings(default_cache_dir())
        results = []
        for cache_latents in (False, True):
            spec = {
                "settings": {**settings, "cache_latents": cache_latents, "output_dir": f"{tmp}/run-{cache_latents}"},
                "steps": args.steps,
                "warmup": args.warmup,
                "threads": args.threads,
            }
            results.append(run_in_subprocess(spec))
        print_tiny_table(results, settings)


if __name__ == "__main__":
    main()
