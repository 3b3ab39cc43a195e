"""One-line notices to the user (fallbacks, defaults taken), printed once by the main process."""

from __future__ import annotations

import sys

_seen: set[str] = set()


def notice(message: str, *, main_process: bool = True) -> None:
    """Print ``styleboost: message`` to stderr once per process."""
    if main_process and message not in _seen:
        _seen.add(message)
        print(f"styleboost: {message}", file=sys.stderr, flush=True)
