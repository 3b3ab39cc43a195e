"""Benchmark of LoRA training: steps/s, peak memory, and the share of a step spent outside the UNet.

Runs the embedded default training set-up (the tiny local model, the toy StyleRef/Aux sets,
LoRA; see ``styleboost/configs/embedded_default.yaml``) through the library's own
``build_run`` / ``micro_step`` / ``end_of_step``, with and without ``cache_latents``, and prints
one table. The goal it checks: non-UNet overhead below 5 % of a step.

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
history), and "other in micro_step" (noise, targets, loss, seeding the step's generator,
autocast/accumulate contexts, the finiteness check). On CUDA every timer point is preceded by
``torch.cuda.synchronize()`` so that GPU work is charged where it is queued.

Peak memory: each configuration runs in a fresh subprocess, so the peak RSS
(``resource.getrusage``) belongs to that configuration alone (set-up included: imports, model
loading and, with ``cache_latents``, the VAE pass over the data); the RSS once set up is printed
beside it, so the difference is what training itself adds. On CUDA
``torch.cuda.max_memory_allocated`` is reset after set-up, so it is the training steps' peak.

CPU timings on a small shared machine are at the mercy of other processes: with every core busy,
OpenMP threads that wait for each other can make a step many times slower. The 1-minute load
average is printed; ``--threads 1`` gives steadier numbers there.

``--sd15`` (CUDA only) adds an architecture-true SD 1.5 UNet with random weights at 512 px
(64x64 latents), batch 1, LoRA rank 4 under bf16 (or fp16) autocast, with gradient checkpointing
off/on and xformers attention when installed. It times the UNet step alone (random latents and
text states), so it measures what a GPU step costs, not the data path.

    python eval/bench_train.py [--steps 50] [--warmup 5] [--threads N] [--sd15]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

    from styleboost.config import TrainConfig
    from styleboost.train import build_run, end_of_step, micro_step

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
            terms = micro_step(run, batch, step, 0, params)
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
    from styleboost.embedded import embedded_settings
    from styleboost.testing import tiny_pipeline_path
    from styleboost.toydata import make_default_datasets

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


# ----------------------------------------------------------------------------- SD 1.5 on CUDA


SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}


def bench_sd15(steps: int, warmup: int, dtype_name: str | None) -> None:
    """Steps/s and peak CUDA memory of a LoRA step on an SD 1.5-shaped UNet (random weights)."""
    import importlib.util
    from types import SimpleNamespace

    import torch.nn.functional as F
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0
    from diffusers.training_utils import cast_training_params

    from styleboost.methods import LoRAPart

    device = torch.device("cuda")
    if dtype_name is None:
        dtype_name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    torch.manual_seed(0)
    with device:
        unet = UNet2DConditionModel(**SD15_UNET)
    unet.requires_grad_(False)
    unet.to(dtype=dtype)  # frozen weights in the half dtype, as place_models does
    models = SimpleNamespace(module=lambda target: unet)
    lora = LoRAPart("unet", rank=4, alpha=4.0, dropout=0.0)
    lora.apply(models)
    cast_training_params(unet, dtype=torch.float32)  # trained LoRA weights stay float32
    params = lora.parameters(models)
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    unet.train()

    latents = torch.randn(1, 4, 64, 64, device=device)
    context = torch.randn(1, 77, 768, device=device, dtype=dtype)

    def step() -> None:
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (1,), device=device)
        with torch.autocast("cuda", dtype=dtype):
            pred = unet(latents + noise, timesteps, encoder_hidden_states=context, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), noise)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    attentions = ["sdpa"] + (["xformers"] if importlib.util.find_spec("xformers") else [])
    print(
        f"\nSD 1.5 UNet (random weights, {sum(p.numel() for p in unet.parameters()) / 1e6:.0f}M parameters, "
        f"LoRA rank 4 = {sum(p.numel() for p in params) / 1e6:.2f}M trained), 512 px (64x64 latents), batch 1, "
        f"{dtype_name} autocast, {torch.cuda.get_device_name()}"
    )
    if len(attentions) == 1:
        print("(xformers is not installed: SDPA attention only)")
    print(f"{'grad ckpt':>9} {'attention':>9} {'steps/s':>8} {'ms/step':>8} {'max_memory_allocated MiB':>25}")
    for checkpointing in (False, True):
        for attention in attentions:
            if checkpointing:
                unet.enable_gradient_checkpointing()
            else:
                unet.disable_gradient_checkpointing()
            if attention == "xformers":
                unet.enable_xformers_memory_efficient_attention()
            else:
                unet.set_attn_processor(AttnProcessor2_0())
            for _ in range(warmup):
                step()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
            elapsed = (time.perf_counter() - start) / steps
            peak = torch.cuda.max_memory_allocated() / 2**20
            state = "on" if checkpointing else "off"
            print(f"{state:>9} {attention:>9} {1 / elapsed:8.2f} {1000 * elapsed:8.1f} {peak:25.0f}")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="Timed steps per configuration.")
    parser.add_argument("--warmup", type=int, default=5, help="Untimed warm-up steps per configuration.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own).")
    parser.add_argument("--sd15", action="store_true", help="Also benchmark an SD 1.5-shaped UNet (CUDA only).")
    parser.add_argument("--sd15_steps", type=int, default=20, help="Timed steps per SD 1.5 configuration.")
    parser.add_argument(
        "--sd15_dtype", choices=("bf16", "fp16"), default=None, help="Autocast dtype (default: bf16 if supported)."
    )
    parser.add_argument("--_one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._one:  # worker: one configuration, result as the last stdout line
        print(json.dumps(bench_one(json.loads(args._one))))
        return

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        from styleboost.testing import default_cache_dir

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

    if args.sd15:
        if CUDA:
            bench_sd15(args.sd15_steps, args.warmup, args.sd15_dtype)
        else:
            print("\n--sd15: CUDA is not available; skipping the SD 1.5 UNet benchmark")


if __name__ == "__main__":
    main()
