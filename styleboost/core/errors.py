"""The one exception type for mistakes a user can fix (bad paths, flags, data), and how a command reports it."""

from __future__ import annotations

import sys
from typing import Callable


class StyleBoostError(Exception):
    """A user-fixable problem; the CLI prints it as one line, without a traceback, and exits ``exit_code``."""

    exit_code = 2


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def run_cli(body: Callable[[], int | None], prog: str = "styleboost") -> int:
    """Run ``body``; turn a ``StyleBoostError`` into one line on stderr and its exit status (2)."""
    try:
        return int(body() or 0)
    except StyleBoostError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
