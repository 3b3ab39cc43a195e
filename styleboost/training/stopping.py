"""Stopping a run cleanly: Ctrl-C or SIGTERM asks the loop to stop after its current step.

``accelerate launch`` runs the training script as a child process and does not pass a SIGTERM on:
killed alone, the launcher would leave the child training. ``StopRequest.install`` therefore also
asks the kernel to send the child SIGTERM when its launcher dies (Linux ``PR_SET_PDEATHSIG``), only
when launched by accelerate or torchrun (a run under ``nohup`` must outlive its shell). During set-up
a signal aborts at once (nothing has started); in the loop the first one sets ``signal_name`` and the
loop writes a checkpoint and stops; a second Ctrl-C stops at once (checkpoints are written atomically,
so none is ever half-written).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading

from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice

PR_SET_PDEATHSIG = 1
LAUNCHER_VARIABLES = ("ACCELERATE_MIXED_PRECISION", "TORCHELASTIC_RUN_ID")


class RunStopped(StyleBoostError):
    """The run stopped on a signal; exits 128 + the signal's number, as a shell reports it."""

    def __init__(self, message: str, signal_name: str):
        super().__init__(message)
        self.exit_code = 128 + signal.Signals[signal_name].value


def launched_by_accelerate() -> bool:
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def die_with_launcher() -> None:
    """Receive SIGTERM when the parent process (the launcher) dies; Linux only, else nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


class StopRequest:
    """Signal handlers for one run; ``deferring`` is True while the loop runs (see the module docstring)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, *, main_process: bool = True):
        self.signal_name: str | None = None
        self.deferring = False
        self.main_process = main_process
        self.previous: dict[int, object] = {}

    def install(self) -> "StopRequest":
        if threading.current_thread() is not threading.main_thread():
            return self  # handlers can only be set from the main thread
        for sig in self.SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)
        if launched_by_accelerate():
            die_with_launcher()
        return self

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if not self.deferring or (self.signal_name and signum == signal.SIGINT):
            raise KeyboardInterrupt(name)
        if self.signal_name is None:
            self.signal_name = name
            notice(f"{name}: stopping after this step, with a checkpoint (Ctrl-C again to stop at once)",
                   main_process=self.main_process)
