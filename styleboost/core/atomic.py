"""Writing files so that a reader, or a run killed half-way, never sees half of one.

Every writer puts the data under a temporary name beside the target and renames it into place
(``os.replace`` is atomic on one file system). ``publish`` does the same for a whole folder (a
pipeline, an encoder, a checkpoint): it exists under its final name only once it is complete.
``fsync_tree`` and ``fsync_folder`` make such a folder durable, so that a power loss cannot leave a
complete-looking name over incomplete data.
"""

from __future__ import annotations

import json
import os
import shutil
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


def remove_path(path: Path) -> None:
    """Delete a file or a folder tree, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder``, then every folder's entries, deepest first."""
    folders = [Path(folder)]
    for path in sorted(Path(folder).rglob("*")):
        if path.is_dir():
            folders.append(path)
        else:
            fsync_file(path)
    for each in reversed(folders):
        fsync_folder(each)


def move_into_place(temporary: Path, final: Path) -> Path:
    """Rename a finished ``temporary`` file or folder to ``final``, replacing what was there."""
    remove_path(final)
    Path(temporary).replace(final)
    return final


def publish(final: Path, write: Callable[[Path], Any], *, temporary: Path | None = None,
            replace: bool = True) -> Path:
    """``write(temporary)`` (a file or a folder; by default ``<stem>.tmp<suffix>`` beside ``final``, a stale
    one removed first), then rename it to ``final``. With ``replace=False`` a ``final`` that appeared
    meanwhile (another process finished first) is kept and the new copy dropped."""
    final = Path(final)
    temporary = Path(temporary) if temporary else final.with_name(f"{final.stem}.tmp{final.suffix}")
    remove_path(temporary)
    write(temporary)
    if final.exists() and not replace:
        remove_path(temporary)
        return final
    return move_into_place(temporary, final)
