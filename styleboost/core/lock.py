"""An exclusive lock on an output folder: one writer at a time, released when its process ends (even kill -9).

The lock is ``flock`` on a hidden file inside the folder, so the kernel drops it with the process; a
second writer is refused at once rather than queued. The file is removed on release; a writer that
locked a file being removed at that moment notices (the path no longer names its file) and retries.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from styleboost.core.errors import StyleBoostError

LOCK_FILE = ".styleboost.lock"


class FolderLock:
    """``acquire()`` takes the lock on ``folder`` (created if missing) or raises a one-line error naming
    ``flag``, the folder and the holder's pid; ``release()`` gives it back."""

    def __init__(self, folder: str | Path, *, flag: str):
        self.folder, self.flag = Path(folder), flag
        self.path = self.folder / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise StyleBoostError(
                    f"{self.flag} {self.folder} is in use by another run ({holder}); wait for it to end "
                    f"or choose another {self.flag}"
                ) from None
            if self._still_names(fd):
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
                self.fd = fd
            else:  # the previous holder removed the file between our open and our lock
                os.close(fd)
        return self

    def _still_names(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)  # closing the last descriptor drops the flock
        self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None
