"""Prompt files: plain text, one prompt a line, ``[V]`` for the bound token, ``#`` for comments."""

from __future__ import annotations

import os
from pathlib import Path

from styleboost.core.errors import StyleBoostError


def read_prompt_file(path: str | os.PathLike) -> list[str]:
    """Prompts of a text file: one a line; blank lines and ``#`` comment lines are ignored."""
    path = Path(path)
    if not path.is_file():
        raise StyleBoostError(f"prompt file not found: {path}")
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise StyleBoostError(f"prompt file {path} has no prompts (only blank or # comment lines)")
    return prompts
