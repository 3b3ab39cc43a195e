"""A clock for one training process: when its loop starts, when each optimizer step ends, and how long its
outermost model loads and sampling calls take, read by wrappers that change nothing they wrap.

The same clock times our trainer and another one (diffusers' DreamBooth script): the training loop is found
by its progress bar, a ``tqdm`` bar described as ``steps`` (either case), whose creation starts the loop and
whose updates end optimizer steps. ``from_pretrained`` of diffusers models, transformers models and pipelines
counts as ``load``, ``StableDiffusionPipeline.__call__`` as ``samples``. Every wrapper is removed when the
``watching`` block ends. ``python -m styleboost.training.clock SPEC`` is the benchmark worker that runs a
script under the clock (``SPEC``: JSON with ``script``, ``args`` and ``out``, where the record is written).
"""

from __future__ import annotations

import contextlib
import functools
import json
import runpy
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import tqdm.auto
from diffusers import DiffusionPipeline, ModelMixin, StableDiffusionPipeline
from transformers import PreTrainedModel

_ABSENT = object()


def _proc_status_mib(field: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` in MiB (Linux), or None."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    found = [line.split()[1] for line in lines if line.startswith(field + ":")]
    return int(found[0]) / 1024 if found else None


def current_rss_mib() -> float | None:
    return _proc_status_mib("VmRSS")


def peak_rss_mib() -> float | None:
    """This process's own peak RSS. ``VmHWM`` starts afresh at ``exec``, while ``ru_maxrss`` (from ``getrusage``
    or ``wait4``) also keeps the peak of the process it was spawned from."""
    return _proc_status_mib("VmHWM")


def sync() -> None:
    """Wait for queued CUDA work, so that it is charged where it was queued."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@contextlib.contextmanager
def replaced(owner: Any, name: str, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """``owner.name`` replaced by ``wrap(it)`` inside the block and put back after. ``owner`` is a module, a
    class (a classmethod stays one) or an object (the wrapper is an instance attribute, deleted after)."""
    stored = vars(owner).get(name, _ABSENT)
    if isinstance(stored, classmethod):
        replacement: Any = classmethod(wrap(stored.__func__))
    else:
        replacement = wrap(getattr(owner, name))
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        if stored is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, stored)


class Clock:
    """Timestamps (``time.time()``, comparable across processes) of one training process."""

    def __init__(self) -> None:
        self.started = time.time()
        self.loop_start: float | None = None
        self.step_ends: list[float] = []
        self.spans: list[tuple[str, float, float]] = []  # (kind, start, end) of outermost calls of each kind
        self._depth: dict[str, int] = {}
        self.cuda_before_loop = 0
        self.cuda_loop_peak = 0

    def loop_started(self) -> None:
        sync()
        self.loop_start = time.time()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self.cuda_before_loop = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()

    def step_done(self) -> None:
        sync()
        self.step_ends.append(time.time())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            self.cuda_loop_peak = torch.cuda.max_memory_allocated()

    @contextlib.contextmanager
    def span(self, kind: str) -> Iterator[None]:
        """Time the block as a span of ``kind``, unless it runs inside another span of that kind."""
        self._depth[kind] = self._depth.get(kind, 0) + 1
        start = time.time()
        try:
            yield
        finally:
            self._depth[kind] -= 1
            if not self._depth[kind]:
                self.spans.append((kind, start, time.time()))

    def timing(self, kind: str) -> Callable[[Callable], Callable]:
        """A wrapper maker for ``replaced``: each call of the wrapped function is a span of ``kind``."""

        def wrap(inner: Callable) -> Callable:
            @functools.wraps(inner)
            def timed(*args: Any, **kwargs: Any) -> Any:
                with self.span(kind):
                    return inner(*args, **kwargs)

            return timed

        return wrap

    def clocked_bar(self, base: type) -> type:
        """A subclass of the tqdm class ``base`` whose ``steps`` bar starts the loop and ends steps on this clock."""
        clock = self

        class ClockedBar(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._clocked = str(kwargs.get("desc", "")).lower() == "steps"
                if self._clocked:
                    clock.loop_started()

            def update(self, n: float = 1) -> Any:
                result = super().update(n)
                if self._clocked:
                    clock.step_done()
                return result

        return ClockedBar

    @contextlib.contextmanager
    def watching(self, *bar_users: Any) -> Iterator[None]:
        """Clock the training bar, model loads and sampling inside the block. ``tqdm.auto.tqdm`` is replaced
        for code imported later (a script); ``bar_users`` are modules that imported ``tqdm`` already."""
        with contextlib.ExitStack() as stack:
            for module in (tqdm.auto, *bar_users):
                stack.enter_context(replaced(module, "tqdm", self.clocked_bar))
            for cls in (ModelMixin, PreTrainedModel, DiffusionPipeline):
                stack.enter_context(replaced(cls, "from_pretrained", self.timing("load")))
            stack.enter_context(replaced(StableDiffusionPipeline, "__call__", self.timing("samples")))
            yield

    def record(self, **extra: Any) -> dict[str, Any]:
        """Everything the clock read, JSON-able, with ``extra`` beside it."""
        sync()
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        return {
            "started": self.started,
            "loop_start": self.loop_start,
            "step_ends": self.step_ends,
            "spans": self.spans,
            "cuda_loop_peak": self.cuda_loop_peak if cuda else None,
            "cuda_peak": max(self.cuda_before_loop, self.cuda_loop_peak, torch.cuda.max_memory_allocated())
            if cuda else None,
            "threads": torch.get_num_threads(),
            "peak_rss_mib": peak_rss_mib(),
            "ended": time.time(),
            **extra,
        }


def run_script(script: str, args: list[str], clock: Clock) -> dict[str, Any]:
    """Run ``script`` as ``__main__`` with ``args`` under ``clock``; the clock's record."""
    saved, sys.argv = sys.argv, [script, *args]
    try:
        with clock.watching():
            runpy.run_path(script, run_name="__main__")
    finally:
        sys.argv = saved
    return clock.record()


def write_record(path: str | Path, produce: Callable[[Clock], dict[str, Any]]) -> None:
    """A worker's ending: the record ``produce(clock)`` returns is written to ``path``; when it raises, the
    clock's record so far with ``failed: true`` is written instead and the error propagates."""
    clock = Clock()
    try:
        record = produce(clock)
    except BaseException:
        Path(path).write_text(json.dumps(clock.record(failed=True)))
        raise
    Path(path).write_text(json.dumps(record))


if __name__ == "__main__":  # the benchmark worker for a script: python -m styleboost.training.clock SPEC
    spec = json.loads(sys.argv[1])
    write_record(spec["out"], lambda clock: run_script(spec["script"], spec["args"], clock))
