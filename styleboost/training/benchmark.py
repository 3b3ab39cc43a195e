"""Times the library's own training run, ``loop.train(cfg)``, as it runs: its stages (set-up, the loop, final
samples, export), each optimizer step, and optionally where each step's time goes.

Nothing is re-implemented: the run is ``train(cfg)``, and the timers are wrappers on the functions it calls,
looked up where the loop looks them up (``STAGES`` in ``styleboost.training.loop``, plus ``Method.apply``,
``LatentCache.fill`` and ``Accelerator.prepare``), and on the built run's own objects. All are removed when the
run ends. The loop's start and each step's end are read by ``training.clock`` from the loop's ``steps`` bar,
as for any other trainer.

Where a step's time goes (``breakdown=True``, ``StepProbe``): a step runs from the previous step's end (or the
loop's start) to the end of its ``end_of_step``. Inside ``micro_step`` the UNet forward is timed by hooks on
the UNet; the UNet backward from the moment the loss gradient reaches the UNet output (a tensor hook set by the
forward hook) until ``accelerator.backward`` returns: with the VAE and the text encoder frozen (the benchmark's
runs) nothing else runs there; a trained text encoder's backward would count in it. The VAE encode, the text conditioning, loss backward (``accelerator.backward`` minus the UNet's),
gradient clipping and the optimizer and scheduler steps are wrappers on the run's objects; the rest of
``micro_step`` is "other". Outside it: ``end_of_step``, and the rest of the step (the dataloader fetching the
batch and the loop's own lines). With CUDA every timer point synchronises first, so GPU work is
charged where it is queued (and the step runs slower than unprobed).

``python -m styleboost.training.benchmark SPEC`` is the benchmark worker: ``SPEC`` is JSON with ``settings``
(``TrainConfig`` fields), ``breakdown``, ``threads`` and ``out``, where the record is written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from typing import Any, Callable, Iterator

import torch
from accelerate import Accelerator

from styleboost.training import loop
from styleboost.training.clock import Clock, current_rss_mib, replaced, sync, write_record
from styleboost.training.config import TrainConfig
from styleboost.training.data import LatentCache
from styleboost.training.methods import Method

# The functions train() calls that are timed as stages, by their names in styleboost.training.loop.
STAGES = (
    "build_run", "load_models", "load_training_sets", "draw_class_images", "place_models", "enable_memory_features",
    "make_optimizer", "make_conditioning", "write_start_manifest", "init_trackers", "train_loop", "finish",
    "run_validation", "export_weights", "write_model_card",
)
METHOD_STAGES = ((Method, "apply"), (LatentCache, "fill"), (Accelerator, "prepare"))

# Parts of a step, in step order; "unet_fwd" and "unet_bwd" are the UNet, the rest overhead.
PARTS = {
    "data": "dataloader and the loop's own lines",
    "vae": "VAE encode",
    "text": "text conditioning",
    "unet_fwd": "UNet forward",
    "unet_bwd": "UNet backward",
    "loss_bwd": "loss backward (outside UNet)",
    "clip": "grad clipping",
    "optim": "optimizer + LR scheduler + zero_grad",
    "other": "other in micro_step (noise, loss, ...)",
    "end": "end_of_step (logs, due checkpoints)",
}
UNET_PARTS = ("unet_fwd", "unet_bwd")
TIMED_INSIDE = ("vae", "text", "unet_fwd", "unet_bwd", "loss_bwd", "clip", "optim")  # timed within micro_step


def now() -> float:
    sync()
    return time.perf_counter()


class StepProbe:
    """Where each optimizer step's time goes: one record of ``PARTS`` (seconds) and ``total`` per step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.facts: dict[str, Any] = {}
        self._open: dict[str, float] | None = None  # the step being timed, across its micro-steps
        self._inside = False  # within micro_step: only then do the run's timers count (validation runs the UNet too)
        self._mark = 0.0  # when the open step began
        self._stack: contextlib.ExitStack | None = None  # what ``watching`` removes at its end
        self._fwd_start = 0.0
        self._bwd_start: float | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Probe the steps of the run that ``loop.build_run`` builds inside the block."""
        with contextlib.ExitStack() as stack:
            self._stack = stack
            stack.enter_context(replaced(loop, "build_run", self._attaching))
            stack.enter_context(replaced(loop, "train_loop", self._marking_start))
            stack.enter_context(replaced(loop, "micro_step", self._timing_micro_step))
            stack.enter_context(replaced(loop, "end_of_step", self._timing_end_of_step))
            yield

    def _attaching(self, build_run: Callable) -> Callable:
        @functools.wraps(build_run)
        def attached(cfg: TrainConfig) -> loop.Run:
            run = build_run(cfg)
            self._attach(run)
            return run

        return attached

    def _attach(self, run: loop.Run) -> None:
        """Hooks on the run's UNet and timers on the objects ``micro_step`` calls, all removed with ``watching``."""
        assert self._stack is not None, "attached only inside watching()"
        unet = run.models.unet
        for handle in (unet.register_forward_pre_hook(self._pre_forward), unet.register_forward_hook(self._post_forward)):
            self._stack.callback(handle.remove)
        timers = ((run.accelerator, "backward", "loss_bwd"), (run.accelerator, "clip_grad_norm_", "clip"),
                  (run.optimizer, "step", "optim"), (run.optimizer, "zero_grad", "optim"),
                  (run.lr_scheduler, "step", "optim"), (run.models.vae, "encode", "vae"), (run, "conditioning", "text"))
        for owner, name, part in timers:
            self._stack.enter_context(replaced(owner, name, self._timer(part)))
        self.facts = {
            "setup_rss_mib": current_rss_mib(),
            "resolution": run.resolution,
            "latent_size": run.resolution // 2 ** (len(run.models.vae.config.block_out_channels) - 1),
        }

    def _timer(self, part: str) -> Callable[[Callable], Callable]:
        def wrap(inner: Callable) -> Callable:
            def timed(*args: Any, **kwargs: Any) -> Any:
                start = now()
                result = inner(*args, **kwargs)
                if self._inside:
                    self._add(part, start, now())
                return result

            return timed

        return wrap

    def _add(self, part: str, start: float, end: float) -> None:
        assert self._open is not None
        if part == "loss_bwd":  # accelerator.backward: from the gradient reaching the UNet output on, the UNet's
            split = self._bwd_start if self._bwd_start is not None else end
            self._open["unet_bwd"] += end - split
            end, self._bwd_start = split, None
        self._open[part] += end - start

    def _pre_forward(self, module: Any, args: Any) -> None:
        self._fwd_start = now()

    def _post_forward(self, module: Any, args: Any, output: Any) -> None:
        if not self._inside:
            return
        self._open["unet_fwd"] += now() - self._fwd_start
        sample = output[0] if isinstance(output, tuple) else output.sample
        if sample.requires_grad:
            sample.register_hook(self._grad_reaches_unet)

    def _grad_reaches_unet(self, grad: torch.Tensor) -> None:
        self._bwd_start = now()

    def _marking_start(self, train_loop: Callable) -> Callable:
        @functools.wraps(train_loop)
        def marked(run: loop.Run) -> None:
            self._mark = now()
            return train_loop(run)

        return marked

    def _timing_micro_step(self, micro_step: Callable) -> Callable:
        @functools.wraps(micro_step)
        def timed(run: loop.Run, batch: dict, step: int, params: list) -> dict[str, torch.Tensor]:
            start = now()
            if self._open is None:
                self._open = dict.fromkeys(PARTS, 0.0) | {"micro": 0.0}
            self.facts["unet_batch"] = sum(len(part["captions"]) for part in batch.values() if isinstance(part, dict))
            self._inside = True
            try:
                terms = micro_step(run, batch, step, params)
            finally:
                self._inside = False
            self._open["micro"] += now() - start
            return terms

        return timed

    def _timing_end_of_step(self, end_of_step: Callable) -> Callable:
        @functools.wraps(end_of_step)
        def timed(run: loop.Run, step: int, terms: dict, progress: Any) -> None:
            start = now()
            end_of_step(run, step, terms, progress)
            end = now()
            self._close(end - start, end)

        return timed

    def _close(self, end_seconds: float, end: float) -> None:
        record, self._open = self._open, None
        assert record is not None
        micro = record.pop("micro")
        record["other"] = micro - sum(record[k] for k in TIMED_INSIDE)
        record["end"] = end_seconds
        record["total"] = end - self._mark
        record["data"] = record["total"] - micro - end_seconds
        self._mark = end
        self.steps.append(record)


@contextlib.contextmanager
def instrumented(clock: Clock, probe: StepProbe | None = None) -> Iterator[None]:
    """Inside the block, ``train`` runs under ``clock`` (its bar, loads, samples and ``STAGES``) and ``probe``."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(clock.watching(loop))
        for name in STAGES:
            stack.enter_context(replaced(loop, name, clock.timing(name)))
        for cls, name in METHOD_STAGES:
            stack.enter_context(replaced(cls, name, clock.timing(f"{cls.__name__}.{name}")))
        if probe is not None:
            stack.enter_context(probe.watching())
        yield


def time_training(cfg: TrainConfig, clock: Clock, *, breakdown: bool = False) -> dict[str, Any]:
    """Run ``train(cfg)`` under ``clock`` (and a ``StepProbe`` with ``breakdown``); the JSON-able record:
    the clock's, the run's device, resolution and last loss, and with ``breakdown`` ``steps`` and ``facts``."""
    probe = StepProbe() if breakdown else None
    with instrumented(clock, probe):
        run = loop.train(cfg)
    extra = {"steps": probe.steps, "facts": probe.facts} if probe else {}
    last = run.history[-1] if run.history else {}
    return clock.record(device=str(run.accelerator.device), resolution=run.resolution, final_loss=last.get("loss"),
                        **extra)


def span_seconds(record: dict[str, Any], kind: str) -> float:
    """Total seconds of the record's spans of ``kind``."""
    return sum(end - start for k, start, end in record["spans"] if k == kind)


def step_breakdown(record: dict[str, Any], warmup: int) -> dict[str, Any]:
    """The steps after ``warmup``: their times (s) and the mean ms of each part, with the set-up's time."""
    steps = record["steps"][warmup:]
    if not steps:
        raise ValueError(f"no steps after {warmup} warm-up steps")
    return {
        "step_times": [s["total"] for s in steps],
        "per_step_ms": {k: 1000 * sum(s[k] for s in steps) / len(steps) for k in PARTS},
        "setup_s": span_seconds(record, "build_run"),
    }


def worker(spec: dict[str, Any]) -> None:
    """The benchmark worker: ``time_training`` of ``spec['settings']``, its record written to ``spec['out']``."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])

    def produce(clock: Clock) -> dict[str, Any]:
        cfg = TrainConfig(**spec["settings"])
        cfg.validate()
        return time_training(cfg, clock, breakdown=spec.get("breakdown", False))

    write_record(spec["out"], produce)


if __name__ == "__main__":  # python -m styleboost.training.benchmark SPEC
    worker(json.loads(sys.argv[1]))
