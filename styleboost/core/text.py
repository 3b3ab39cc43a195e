"""Reading the small text files a user writes (prompt files, captions, YAML configs): UTF-8, a BOM dropped, and a
file that is missing or not UTF-8 refused in one line naming it."""

from __future__ import annotations

import os
from pathlib import Path

from styleboost.core.errors import StyleBoostError

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_text(path: str | os.PathLike, *, what: str) -> str:
    """The text of ``path`` (``what`` names it in errors, e.g. "prompt file"): decoded as UTF-8 with a leading BOM
    dropped and line ends turned into ``\\n``, as ``Path.read_text`` does."""
    path = Path(path)
    if not path.is_file():
        raise StyleBoostError(f"{what} not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StyleBoostError(f"{what} {path} cannot be read ({err.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise StyleBoostError(f"{what} {path} is not UTF-8 text ({_where(data, err)}); save it as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _where(data: bytes, err: UnicodeDecodeError) -> str:
    """Where decoding failed, for the error line: UTF-16, or the byte, its offset and its line."""
    if data.startswith(_UTF16_BOMS):
        return "it is UTF-16"
    line = data.count(b"\n", 0, err.start) + 1
    return f"byte 0x{data[err.start]:02x} at offset {err.start}, line {line}"
