"""The ``metadata.jsonl`` format of a generated run: one JSON record per image, written by ``generate`` and read
by ``evaluate``.

A record names the image's ``file`` (relative to the run folder), its ``prompt`` (as the text encoder read it,
token filled in: cut to the tokenizer's window when longer), ``prompt_as_written`` (the same before any cut),
prompt template, prompt set and index, seed, size and every setting that decides its pixels. The same
record is also kept in the PNG's text (``styleboost``), so an image whose metadata line is lost still
says how it was made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from styleboost.core.atomic import save_image_atomic, write_text_atomic
from styleboost.core.errors import StyleBoostError

METADATA_FILE = "metadata.jsonl"
PNG_RECORD_KEY = "styleboost"  # the PNG text chunk holding the whole record as JSON
_PNG_TEXT_KEYS = ("prompt", "seed", "model", "lora", "embeddings", "steps", "guidance", "scheduler", "negative_prompt")

# Record keys that decide an image's pixels; an existing image must match them to be skipped. LoRA and
# embeddings are recorded by path and by the SHA-256 of the file (retrained weights at the same path differ).
# The prompt as written decides the prompt drawn (its cut depends on the model's tokenizer, also compared).
_SETTING_KEYS = (
    "prompt_as_written", "negative_prompt", "seed", "model", "scheduler", "lora", "lora_sha256", "lora_scale",
    "embeddings", "embeddings_sha256", "steps", "guidance", "height", "width",
)


@dataclass(frozen=True)
class ImageJob:
    """One image to make: which prompt, which seed, where it goes."""

    prompt_set: str
    prompt_index: int
    seed: int
    template: str
    prompt: str  # as written, the token filled in
    file: str  # relative to the output folder
    source: str = ""  # where the prompt was written, e.g. "people.txt line 3"
    cut: str | None = None  # the prompt cut to the text encoder's window, when it is longer

    @property
    def drawn(self) -> str:
        """The prompt the pipeline is given."""
        return self.prompt if self.cut is None else self.cut


def metadata_path(out: str | Path) -> Path:
    return Path(out) / METADATA_FILE


def make_record(job: ImageJob, settings: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """The metadata.jsonl line of one image."""
    return {
        "file": job.file,
        "prompt": job.drawn,
        "prompt_as_written": job.prompt,
        "prompt_template": job.template,
        "prompt_set": job.prompt_set,
        "prompt_index": job.prompt_index,
        "seed": job.seed,
        **settings,
        "height": height,
        "width": width,
    }


def read_metadata(out: str | Path) -> dict[str, dict[str, Any]]:
    """Existing metadata.jsonl records, by file, in the order they were written."""
    path = metadata_path(out)
    if not path.is_file():
        return {}
    records = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise StyleBoostError(f"{path} line {number} is not JSON; fix or remove it") from None
            if not isinstance(record, dict) or not isinstance(record.get("file"), str):
                raise StyleBoostError(f'{path} line {number} has no "file" field; fix or remove it')
            records[record["file"]] = record
    return records


def existing_record(out: Path, job: ImageJob, records: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record of an image already on disk: its metadata line, else the copy in its PNG text."""
    if job.file in records:
        return records[job.file]
    try:
        with Image.open(out / job.file) as image:
            text = getattr(image, "text", {}) or {}
            return json.loads(text[PNG_RECORD_KEY]) if PNG_RECORD_KEY in text else None
    except (OSError, ValueError):
        return None


def check_same_settings(record: dict[str, Any] | None, wanted: dict[str, Any], file: str,
                        keys: Sequence[str] = _SETTING_KEYS) -> None:
    """Refuse to count an existing image as done when it was made differently (by any of ``keys``: by default
    the settings that decide a generated image's pixels)."""
    if record is None:
        raise StyleBoostError(f"{file} exists but has no metadata; use another --out or --overwrite")
    key = differing_key(record, wanted, keys)
    if key is not None:
        raise StyleBoostError(
            f"{file} was made with {key}={_recorded(record, key)!r}, not {wanted[key]!r}; use another --out or "
            "--overwrite"
        )


def differing_key(record: dict[str, Any], wanted: dict[str, Any], keys: Sequence[str]) -> str | None:
    """The first of ``keys`` whose recorded value is not the wanted one (None: made the same way)."""
    return next((key for key in keys if key in wanted and _recorded(record, key) != wanted[key]), None)


def _recorded(record: dict[str, Any], key: str) -> Any:
    """A record's value of ``key``; records written before ``prompt_as_written`` existed hold it as ``prompt``."""
    if key == "prompt_as_written" and key not in record:
        return record.get("prompt")
    return record.get(key)


def png_info(record: dict[str, Any]) -> PngInfo:
    """PNG text chunks: readable settings plus the whole record as JSON."""
    info = PngInfo()
    for key in _PNG_TEXT_KEYS:
        info.add_text(key, "" if record.get(key) is None else str(record[key]))
    info.add_text(PNG_RECORD_KEY, json.dumps(record))
    return info


def save_image(image: Image.Image, path: Path, record: dict[str, Any]) -> None:
    """Write a PNG with ``record`` in its text, under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(image, path, pnginfo=png_info(record))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Add one JSON line to ``path`` (metadata.jsonl, runs.jsonl)."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def drop_metadata(out: Path, files: set[str]) -> None:
    """Remove the metadata lines of images about to be made again (--overwrite)."""
    path = metadata_path(out)
    if not files or not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = [line for line in lines if json.loads(line).get("file") not in files]
    write_text_atomic(path, "".join(line + "\n" for line in keep))


def split_done(out: Path, jobs: Sequence[Any], wanted: Callable[[Any], dict[str, Any]], overwrite: bool,
               keys: Sequence[str] | None = _SETTING_KEYS, remake_stale: bool = False,
               ) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    """({file: record} of the images of ``jobs`` (anything with a ``file``) already in ``out`` as ``wanted(job)``
    says, [jobs still to make]). An image made otherwise is refused (by ``keys``; None: every key of ``wanted``),
    or with ``remake_stale`` made again; one found without its metadata line gets it back from its PNG text, and
    ``overwrite`` remakes every image. Lines of images made again are dropped."""
    records = read_metadata(out)
    done, todo, stale = {}, [], set()
    for job in jobs:
        if overwrite or not (out / job.file).is_file():
            todo.append(job)
            continue
        record, settings = existing_record(out, job, records), wanted(job)
        compared = tuple(settings) if keys is None else keys
        if remake_stale and (record is None or differing_key(record, settings, compared) is not None):
            todo.append(job)
            stale.add(job.file)
            continue
        check_same_settings(record, settings, job.file, compared)
        if job.file not in records:
            append_jsonl(metadata_path(out), record)
        done[job.file] = record
    drop_metadata(out, {job.file for job in todo} if overwrite else stale)  # nothing to drop: no write
    return done, todo
