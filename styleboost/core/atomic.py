"""Writing files so that a reader, or a run killed half-way, never sees half of one.

Every writer puts the data under a temporary name beside the target and renames it into place
(``os.replace`` is atomic on one file system).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


def replace_via_temporary(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file over ``path``."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    replace_via_temporary(Path(path), lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    replace_via_temporary(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))


def save_image_atomic(image, path: Path, **save_options: Any) -> None:
    """``image.save`` (PIL) under a temporary name; ``format`` defaults to PNG."""
    save_options.setdefault("format", "PNG")
    replace_via_temporary(Path(path), lambda tmp: image.save(tmp, **save_options))
