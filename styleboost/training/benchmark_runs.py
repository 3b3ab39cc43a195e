"""Runs the training benchmarks, each configuration as a fresh process, and renders their tables: the tiny
model's steps with and without cached latents, and whole training runs on real-shape models, ours beside
diffusers' DreamBooth LoRA script with matching settings.

Every run is a worker process started here (``python -m styleboost.training.benchmark`` for ours,
``python -m styleboost.training.clock`` for a script), so its peak RSS is its own: the worker's ``VmHWM`` at
its end, set-up included (imports, model loading and, with ``cache_latents``, the VAE pass over the data), then
the steps, the final samples and the export. The parent times the whole process from spawn to exit.

Real-shape columns: set-up = spawn to the loop's start (interpreter, imports, model load, data, optimizer,
accelerate), model load before the loop, 1st step, s/step = the mean of the later steps, loop, after = the
loop's end to exit (final samples, export, model card; the script reloads the pipeline to check the LoRA loads),
samples and reloads after the loop, peak RSS, and with CUDA ``torch.cuda.max_memory_allocated`` during the
loop and overall. Our rows also list the library's stages (``benchmark.STAGES``). Each model folder is read
through once before its runs, so every run finds it in the page cache. On CPU the runs default to 64 px,
3 steps, fp32, no gradient checkpointing; with CUDA to 512 px, 20 steps, fp16, gradient checkpointing,
8-bit Adam, and each attention (SDPA, and xformers when installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Callable

import torch

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import IMAGE_SUFFIXES
from styleboost.core.settings import option
from styleboost.training.benchmark import PARTS, UNET_PARTS, step_breakdown

OURS_WORKER = "styleboost.training.benchmark"
SCRIPT_WORKER = "styleboost.training.clock"
GOAL_PERCENT = 5.0  # the tiny model's goal: non-UNet overhead below this share of a step


@dataclass
class BenchConfig:
    """Settings of the training benchmark (the flags of ``eval/bench_train.py``)."""

    steps: int = option(50, "Tiny model: timed steps per configuration.")
    warmup: int = option(5, "Tiny model: untimed warm-up steps per configuration.")
    threads: int | None = option(None, "torch threads (default: torch's own).")
    real: list[str] | None = option(
        None, "Benchmark whole training runs on these architecture-true models instead of the tiny one.",
        choices=("sd15", "sd21", "sdxl"))
    resolution: int | None = option(None, "Real shapes: image size (default: 512 on CUDA, 64 on CPU).")
    real_steps: int | None = option(None, "Real shapes: training steps (default: 20 on CUDA, 3 on CPU).")
    rank: int = option(4, "Real shapes: LoRA rank.")
    mixed_precision: str | None = option(None, "Real shapes (default: fp16 on CUDA, no on CPU).",
                                         choices=("no", "fp16", "bf16"))
    gradient_checkpointing: bool | None = option(None, "Real shapes (default: on with CUDA, off on CPU).")
    use_8bit_adam: bool | None = option(
        None, "Real shapes: bitsandbytes' 8-bit AdamW where installed (default: on with CUDA).")
    skip_final_samples: bool = option(
        False, "Real shapes: our runs draw no final samples (the script draws none without a prompt).")
    diffusers_script: str | None = option(
        None, "Real shapes: diffusers' train_dreambooth_lora.py (train_dreambooth_lora_sdxl.py for sdxl, which takes "
        "the same flags), run beside ours.")
    keep_logs: str | None = option(None, "Real shapes: copy each run's output into this folder.")
    trainers: list[str] = option(["styleboost", "diffusers"], "Real shapes: which trainers to run (diffusers only "
                                 "with --diffusers-script).", choices=("styleboost", "diffusers"))


# ----------------------------------------------------------------------------- worker processes


@dataclass
class Finished:
    """A worker process that ran to its end: exit code, spawn and exit times, peak RSS (MiB), the record it wrote.

    The peak RSS is the worker's own (``VmHWM`` in its record); without a record it is ``wait4``'s ``ru_maxrss``,
    which also holds the peak of this (spawning) process."""

    code: int
    spawned: float
    exited: float
    rss_mib: float
    record: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.code == 0 and self.record is not None and not self.record.get("failed")


def run_worker(module: str, spec: dict[str, Any], log: Path, env: dict[str, str] | None = None) -> Finished:
    """``python -m module SPEC`` to its end, its output in ``log``; the record it wrote to ``spec['out']``."""
    out = Path(spec["out"])
    out.unlink(missing_ok=True)
    with log.open("w") as stream:
        spawned = time.time()
        proc = subprocess.Popen([sys.executable, "-m", module, json.dumps(spec)], stdout=stream,
                                stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        exited = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keeps Popen from waiting again
    record = json.loads(out.read_text()) if out.exists() else None
    rss = (record or {}).get("peak_rss_mib") or usage.ru_maxrss / 1024  # Linux: KiB
    return Finished(proc.returncode, spawned, exited, rss, record)


def load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


# ----------------------------------------------------------------------------- the tiny model


def bench_steps(settings: dict[str, Any], cfg: BenchConfig, folder: Path) -> list[dict[str, Any]]:
    """``settings`` (``TrainConfig`` fields) trained for warmup + steps, without and with ``cache_latents``,
    each in a fresh process with the step breakdown; one result per configuration."""
    if cfg.steps < 1 or cfg.warmup < 0:
        raise StyleBoostError("--steps must be at least 1 and --warmup at least 0")
    results = []
    for cache_latents in (False, True):
        name = f"cache-{cache_latents}"
        spec = {
            "settings": {**settings, "cache_latents": cache_latents, "output_dir": str(folder / f"run-{name}"),
                         "max_train_steps": cfg.warmup + cfg.steps},
            "breakdown": True, "threads": cfg.threads, "out": str(folder / f"record-{name}.json"),
        }
        load = load_average()
        done = run_worker(OURS_WORKER, spec, folder / f"log-{name}.txt")
        if not done.ok:
            tail = "\n".join((folder / f"log-{name}.txt").read_text(errors="replace").splitlines()[-20:])
            raise StyleBoostError(f"the cache_latents={cache_latents} run failed (exit {done.code}):\n{tail}")
        record = done.record
        results.append(step_breakdown(record, cfg.warmup) | record["facts"] | {
            "cache_latents": cache_latents, "peak_rss_mib": done.rss_mib, "load_avg": load,
            "cuda_peak_mib": record["cuda_loop_peak"] / 2**20 if record["cuda_loop_peak"] is not None else None,
            "device": record["device"], "threads": record["threads"], "final_loss": record["final_loss"],
        })
    return results


def overhead_share(result: dict[str, Any]) -> float:
    """The share of a step outside the UNet, in percent."""
    unet = sum(result["per_step_ms"][k] for k in UNET_PARTS)
    return 100 * (1 - unet / sum(result["per_step_ms"].values()))


def steps_table(results: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    """The tiny model's lines: the set-up, steps/s and memory per configuration, and where a step goes."""
    first, cuda = results[0], results[0]["cuda_peak_mib"] is not None
    load = "n/a" if first["load_avg"] is None else f"{first['load_avg']:.1f}"
    lines = [
        f"tiny model, LoRA rank {settings.get('rank')}: device {first['device']}, torch threads {first['threads']}, "
        f"resolution {first['resolution']} px (latents {first['latent_size']}x{first['latent_size']}), "
        f"UNet batch {first['unet_batch']} (StyleRef + Aux), mixed precision {settings.get('mixed_precision') or 'no'}",
        f"torch {torch.__version__}; {os.cpu_count()} CPUs, load average {load} before the runs; "
        f"timed steps {len(first['step_times'])} after warm-up\n",
        f"{'cache_latents':>13} {'steps/s':>8} {'ms/step':>8} {'median':>8} {'UNet f+b':>9} {'non-UNet':>9}"
        f" {'peak RSS':>9} {'set-up RSS':>10}" + (f" {'CUDA peak':>10}" if cuda else ""),
        f"{'':>13} {'':>8} {'(mean)':>8} {'ms/step':>8} {'ms/step':>9} {'share':>9} {'MiB':>9} {'MiB':>10}"
        + (f" {'MiB':>10}" if cuda else ""),
    ]
    for r in results:
        mean = sum(r["step_times"]) / len(r["step_times"])
        unet = sum(r["per_step_ms"][k] for k in UNET_PARTS)
        line = (f"{r['cache_latents']!s:>13} {1 / mean:8.1f} {1000 * mean:8.2f} {1000 * median(r['step_times']):8.2f} "
                f"{unet:9.2f} {overhead_share(r):8.1f}% {r['peak_rss_mib']:9.0f} {r['setup_rss_mib'] or float('nan'):10.0f}")
        lines.append(line + (f" {r['cuda_peak_mib']:10.1f}" if cuda else ""))
    lines += ["", "where a step's time goes (ms/step, share of the step):",
              f"{'':42}" + "".join(f" {'cache=' + str(r['cache_latents']):>17}" for r in results)]
    for key, label in PARTS.items():
        cells = [f" {r['per_step_ms'][key]:8.2f} {100 * r['per_step_ms'][key] / sum(r['per_step_ms'].values()):6.1f}% "
                 for r in results]
        lines.append(f"{('  ' if key in UNET_PARTS else '* ') + label:42}" + "".join(cells))
    lines.append("(* = non-UNet overhead)")
    for r in results:
        share = overhead_share(r)
        lines.append(f"cache_latents={r['cache_latents']}: non-UNet overhead {share:.1f}% "
                     f"{'meets' if share < GOAL_PERCENT else 'misses'} the < {GOAL_PERCENT:.0f}% goal "
                     f"(set-up {r['setup_s']:.1f} s, last loss {r['final_loss']:.4f})")
    return lines


# ----------------------------------------------------------------------------- real shapes


@dataclass(frozen=True)
class RealRun:
    """The run settings both trainers get on the real-shape models."""

    resolution: int
    steps: int
    rank: int
    mixed_precision: str
    gradient_checkpointing: bool
    use_8bit_adam: bool
    learning_rate: float = 1e-4
    seed: int = 0


def real_run(cfg: BenchConfig, cuda: bool) -> RealRun:
    """``cfg``'s real-shape settings with this machine's defaults filled in."""
    return RealRun(
        resolution=cfg.resolution or (512 if cuda else 64),
        steps=cfg.real_steps or (20 if cuda else 3),
        rank=cfg.rank,
        mixed_precision=cfg.mixed_precision or ("fp16" if cuda else "no"),
        gradient_checkpointing=cuda if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing,
        use_8bit_adam=cuda if cfg.use_8bit_adam is None else cfg.use_8bit_adam,
    )


def has_bitsandbytes() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def real_header(s: RealRun, cuda: bool, threads: str) -> str:
    device = torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores)"
    adam = "asked" if s.use_8bit_adam else "off"
    missing = " (bitsandbytes missing)" if s.use_8bit_adam and not has_bitsandbytes() else ""
    return (f"real shapes, random weights: LoRA rank {s.rank}, {s.resolution} px, batch 1 (UNet batch 2: StyleRef + "
            f"Aux prior), {s.steps} steps, mixed precision {s.mixed_precision}, gradient checkpointing "
            f"{'on' if s.gradient_checkpointing else 'off'}, 8-bit Adam {adam}{missing}; {device}, "
            f"OMP_NUM_THREADS={threads}; torch {torch.__version__}")


def ours_settings(s: RealRun, model: Path, styleref: Path, aux: Path, out: Path, xformers: bool,
                  skip_final_samples: bool) -> dict[str, Any]:
    """Our ``TrainConfig`` fields for the run."""
    return dict(
        pretrained_model_name_or_path=str(model), styleref_dir=str(styleref), aux_dir=str(aux), aux_mode="curated",
        output_dir=str(out), overwrite=True, resolution=s.resolution, train_batch_size=1, max_train_steps=s.steps,
        rank=s.rank, learning_rate=s.learning_rate, lr_scheduler="constant", seed=s.seed, checkpointing_steps=10**9,
        mixed_precision=s.mixed_precision, gradient_checkpointing=s.gradient_checkpointing,
        use_8bit_adam=s.use_8bit_adam, enable_xformers_memory_efficient_attention=xformers, report_to="tensorboard",
        skip_final_samples=skip_final_samples,
    )


def script_args(s: RealRun, model: Path, instance: Path, klass: Path, out: Path, xformers: bool) -> list[str]:
    """diffusers' train_dreambooth_lora.py flags for the same run (no --validation_prompt: no validation)."""
    count = len(list(klass.iterdir()))  # as many class images as there are: the script then generates none
    argv = [
        "--pretrained_model_name_or_path", str(model), "--instance_data_dir", str(instance),
        "--instance_prompt", "sks style", "--with_prior_preservation", "--class_data_dir", str(klass),
        "--class_prompt", "a photo of a person", "--num_class_images", str(count), "--prior_loss_weight", "1.0",
        "--output_dir", str(out), "--resolution", str(s.resolution), "--train_batch_size", "1",
        "--max_train_steps", str(s.steps), "--rank", str(s.rank), "--learning_rate", str(s.learning_rate),
        "--lr_scheduler", "constant", "--lr_warmup_steps", "0", "--seed", str(s.seed),
        "--checkpointing_steps", str(10**9), "--mixed_precision", s.mixed_precision, "--report_to", "tensorboard",
    ]
    if s.gradient_checkpointing:
        argv.append("--gradient_checkpointing")
    if s.use_8bit_adam and has_bitsandbytes():
        argv.append("--use_8bit_adam")
    if xformers:
        argv.append("--enable_xformers_memory_efficient_attention")
    return argv


def image_only_copy(folder: Path, target: Path) -> Path:
    """``target`` holding links to the images of ``folder`` alone: diffusers' script opens every file of its
    data folders as an image, and ours hold captions (.txt) beside them."""
    target.mkdir(parents=True, exist_ok=True)
    for image in sorted(folder.iterdir()):
        if image.suffix.lower() in IMAGE_SUFFIXES:
            (target / image.name).symlink_to(image.resolve())
    return target


def read_through(folder: Path) -> None:
    """Read every file of ``folder`` once, so that each run finds the model in the page cache alike
    (otherwise the first run after a build or a reboot pays the disk)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                while f.read(1 << 24):
                    pass


def log_findings(log: Path, trainer: str) -> list[str]:
    """The notices of our run, or why the script failed (a missing package named as such)."""
    lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
    if trainer == "styleboost":
        return [line for line in lines if line.startswith("styleboost:")]
    missing = [line for line in lines if "ModuleNotFoundError" in line or "ImportError" in line]
    return missing[-1:] or [line for line in lines if line.strip()][-3:]


def phases(clock: dict[str, Any], spawned: float, exited: float) -> dict[str, Any]:
    """A clock record as the table's columns (seconds)."""
    loop_start, ends = clock["loop_start"], clock["step_ends"]
    loop_end = ends[-1] if ends else None
    steps = [b - a for a, b in zip([loop_start, *ends], ends)] if loop_start else []

    def spent(kind: str, lo: float | None, hi: float | None) -> float:
        lo, hi = lo if lo is not None else float("-inf"), hi if hi is not None else float("inf")
        return sum(max(0.0, min(e, hi) - max(s, lo)) for k, s, e in clock["spans"] if k == kind)

    later = steps[1:]
    stages = dict.fromkeys(k for k, _, _ in clock["spans"] if k not in ("load", "samples"))
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
        "stages": {"interpreter + imports": clock["started"] - spawned} | {k: spent(k, None, None) for k in stages},
    }


class RealBench:
    """One real-shapes benchmark: the settings, the data, where runs write, and how progress is told."""

    def __init__(self, cfg: BenchConfig, run: RealRun, styleref: Path, aux: Path, folder: Path,
                 say: Callable[[str], None] = print) -> None:
        self.cfg, self.run, self.styleref, self.aux, self.folder, self.say = cfg, run, styleref, aux, folder, say
        self.cuda = torch.cuda.is_available()
        self.env = dict(os.environ)
        if self.cfg.threads:
            self.env["OMP_NUM_THREADS"] = str(self.cfg.threads)
        self.script = Path(self.cfg.diffusers_script).resolve() if self.cfg.diffusers_script else None
        if self.script and not self.script.is_file():
            raise StyleBoostError(f"--diffusers-script {self.script} is not a file")
        self.instance = image_only_copy(self.styleref, self.folder / "instance")
        self.klass = image_only_copy(self.aux, self.folder / "class")

    def attentions(self) -> list[str]:
        return ["sdpa"] + (["xformers"] if self.cuda and importlib.util.find_spec("xformers") else [])

    def trainers(self, name: str, model: Path, attention: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(trainer, worker module, spec without ``out``) of each trainer asked for."""
        xformers, tag, found = attention == "xformers", f"{name}-{attention}", []
        if "styleboost" in self.cfg.trainers:
            settings = ours_settings(self.run, model, self.styleref, self.aux, self.folder / f"ours-{tag}", xformers,
                                     self.cfg.skip_final_samples)
            found.append(("styleboost", OURS_WORKER, {"settings": settings}))
        if self.script and "diffusers" in self.cfg.trainers:
            args = script_args(self.run, model, self.instance, self.klass, self.folder / f"theirs-{tag}", xformers)
            found.append(("diffusers", SCRIPT_WORKER, {"script": str(self.script), "args": args}))
        return found

    def one(self, trainer: str, module: str, spec: dict[str, Any], name: str, attention: str) -> dict[str, Any]:
        """One run of ``trainer`` as a fresh process: its row."""
        tag = f"{trainer}-{name}-{attention}"
        log = self.folder / f"log-{tag}.txt"
        load = load_average()
        done = run_worker(module, spec | {"out": str(self.folder / f"clock-{tag}.json")}, log, self.env)
        row = {"model": name, "trainer": trainer, "attention": attention, "ok": done.ok, "code": done.code,
               "rss": done.rss_mib, "load_avg": load, "findings": log_findings(log, trainer)}
        if done.record:
            row |= phases(done.record, done.spawned, done.exited) | {
                "cuda_loop_peak": done.record["cuda_loop_peak"], "cuda_peak": done.record["cuda_peak"]}
        if trainer == "diffusers":
            row["command"] = " ".join([sys.executable, str(self.script), *spec["args"]])
        if self.cfg.keep_logs:
            Path(self.cfg.keep_logs).mkdir(parents=True, exist_ok=True)
            (Path(self.cfg.keep_logs) / log.name).write_text(log.read_text(errors="replace"))
        self.say(f"  ran {trainer} on {name} ({attention}): exit {done.code}, {row.get('whole', done.exited - done.spawned):.1f} s")
        return row

    def model(self, name: str, model: Path) -> list[dict[str, Any]]:
        """Every attention x trainer on the model folder ``model``."""
        read_through(model)
        rows = [self.one(trainer, module, spec, name, attention)
                for attention in self.attentions() for trainer, module, spec in self.trainers(name, model, attention)]
        unet = json.loads((model / "unet" / "config.json").read_text())
        self.say(f"  {name}: UNet cross-attention {unet['cross_attention_dim']}, heads {unet['attention_head_dim']}, "
                 f"sample size {unet['sample_size']}")
        return rows


def bench_real(cfg: BenchConfig, run: RealRun, models: dict[str, Path], styleref: Path, aux: Path, folder: Path,
               say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """The real-shapes rows: each model x attention x trainer in a fresh process (``folder`` takes their outputs)."""
    bench = RealBench(cfg, run, styleref, aux, folder, say)
    say(real_header(run, bench.cuda, bench.env.get("OMP_NUM_THREADS", "unset")))
    return [row for name, model in models.items() for row in bench.model(name, model)]


def _cell(value: float | None, width: int, digits: int = 1) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def real_row(r: dict[str, Any], cuda: bool) -> str:
    head = f"{r['model']:5} {r['trainer']:10} {r['attention']:8}"
    if "whole" not in r:
        return f"{head} failed (exit {r['code']}) before timing"
    per = r["per_step"]
    line = (f"{head} {_cell(r['whole'], 7)} {_cell(r['setup'], 7)} {_cell(r['load_before'], 6)} "
            f"{_cell(r['first_step'], 8, 2)} {_cell(per, 7, 2)} {_cell(1 / per if per else None, 7, 2)} "
            f"{_cell(r['loop'], 7)} {_cell(r['after'], 6)} {_cell(r['samples_after'], 7)} {_cell(r['load_after'], 6)} "
            f"{r['rss']:9.0f}")
    if cuda:
        mib = [None if r[k] is None else r[k] / 2**20 for k in ("cuda_loop_peak", "cuda_peak")]
        line += f" {_cell(mib[0], 9, 0)} {_cell(mib[1], 9, 0)}"
    return line + f" {r['load_avg'] or float('nan'):8.1f}" + ("" if r["ok"] else f"  FAILED (exit {r['code']})")


def real_table(rows: list[dict[str, Any]], cuda: bool) -> list[str]:
    """The real-shapes lines: one row per run, our stages, the notices and the script's command line."""
    head = (f"{'model':5} {'trainer':10} {'attn':8} {'whole':>7} {'set-up':>7} {'load':>6} {'1st step':>8} "
            f"{'s/step':>7} {'steps/s':>7} {'loop':>7} {'after':>6} {'samples':>7} {'reload':>6} {'peak RSS':>9}")
    head += f" {'CUDA loop':>9} {'CUDA all':>9}" if cuda else ""
    lines = ["", "seconds; set-up and after include the model-load and samples columns beside them",
             head + f" {'load avg':>8}", *(real_row(r, cuda) for r in rows),
             "(peak RSS and CUDA in MiB; s/step is the mean after the first step; reload = model loading after the "
             "loop; load avg = 1-minute load average at the run's start; load is short because the safetensors are"
             " memory-mapped from the page cache: their first reads land in the first step)"]
    for r in rows:
        if r.get("stages") and r["trainer"] == "styleboost":
            parts = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
            lines.append(f"{r['model']} {r['trainer']} {r['attention']} stages (s): {parts}")
    for r in rows:
        lines += [f"{r['model']} {r['trainer']} {r['attention']}: {finding}" for finding in r["findings"]
                  if r["trainer"] == "styleboost" or not r["ok"]]
        if r.get("command"):
            lines.append(f"{r['model']} diffusers script command: {r['command']}")
    return lines
