"""A training run's output folder: locked for the run's life, never overwritten without --overwrite.

``RunFolder.claim`` locks the folder (a second run into it is refused in one line) and checks it:
a folder holding a run needs ``--overwrite`` or ``--resume_from_checkpoint``. With ``--overwrite``
the old run is moved aside into ``.replaced-run/``, not deleted: the new run is built beside it, and
only when it starts for real (``start``) is the old one deleted, every file of it. A run that fails
before that (``abandon``) puts the old run back, or removes the folder it created, so a failed start
changes nothing. A folder left mid-replacement by a killed process is repaired by the next claim.
"""

from __future__ import annotations

from pathlib import Path

from styleboost.core.atomic import remove_path
from styleboost.core.errors import StyleBoostError
from styleboost.core.lock import LOCK_FILE, FolderLock
from styleboost.core.manifest import manifest_path
from styleboost.core.notice import notice

REPLACED = ".replaced-run"
KEPT_ON_OVERWRITE = ("aux_generated",)  # DreamBooth's class-image cache, which checks its own settings


def holds_run(folder: Path) -> bool:
    return manifest_path(folder).exists() or any(folder.glob("checkpoint-*"))


def _entries(folder: Path, keep: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in folder.iterdir() if p.name not in (LOCK_FILE, REPLACED, *keep)]


class RunFolder:
    """The output folder of one run, from claim to release (see the module docstring)."""

    def __init__(self, path: str | Path, *, main_process: bool = True):
        self.path, self.main_process = Path(path), main_process
        self.lock = FolderLock(self.path, flag="--output_dir")
        self.created = self.replacing = self.started = False

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        """A run that fails before ``start`` changes nothing (``abandon``); the lock is released either way."""
        if kind is not None and not self.started:
            self.abandon()
        self.release()

    @property
    def aside(self) -> Path:
        return self.path / REPLACED

    def claim(self, overwrite: bool, resume: str | None) -> "RunFolder":
        """Lock the folder and check it may take this run; a no-op on the other processes of a launch."""
        if not self.main_process:
            return self
        self.created = not self.path.exists()
        self.lock.acquire()
        try:
            self._repair_interrupted_replacement()
            if holds_run(self.path) and not (overwrite or resume):
                raise StyleBoostError(
                    f"--output_dir {self.path} already holds a run; pass --overwrite to replace it "
                    "or --resume_from_checkpoint latest to continue it"
                )
            if holds_run(self.path) and overwrite and not resume:
                self.set_aside_old_run()
        except BaseException:
            self.release()
            raise
        return self

    def set_aside_old_run(self) -> None:
        """Move the run in the folder aside: deleted at ``start``, put back by ``abandon``."""
        self.aside.mkdir()
        for entry in _entries(self.path, KEPT_ON_OVERWRITE):
            entry.rename(self.aside / entry.name)
        self.replacing = True

    def _repair_interrupted_replacement(self) -> None:
        if not self.aside.is_dir():
            return
        if manifest_path(self.path).exists():  # the new run had started: the old one was being deleted
            remove_path(self.aside)
            return
        for entry in _entries(self.aside):
            remove_path(self.path / entry.name)
            entry.rename(self.path / entry.name)
        self.aside.rmdir()
        notice(f"--output_dir {self.path}: an --overwrite run was stopped before it started; the run it was "
               "replacing is back in place")

    def start(self) -> None:
        """The new run starts for real: the run it replaces goes, every file of it."""
        self.started = True
        if self.replacing:
            remove_path(self.aside)
            self.replacing = False

    def abandon(self) -> None:
        """The run failed before it started: put back what it replaced, or remove the folder it created."""
        if not self.lock.held:
            return
        if self.replacing:
            for entry in _entries(self.path, KEPT_ON_OVERWRITE):
                remove_path(entry)
            for entry in _entries(self.aside):
                entry.rename(self.path / entry.name)
            self.aside.rmdir()
            self.replacing = False
        elif self.created:
            for entry in _entries(self.path):
                remove_path(entry)
        self.release()
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def release(self) -> None:
        self.lock.release()
