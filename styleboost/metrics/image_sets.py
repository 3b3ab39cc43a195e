"""The images an evaluation scores: a generated run (with its ``metadata.jsonl``) and the StyleRef set.

A run folder is what ``styleboost generate`` writes: ``metadata.jsonl`` names each image's file,
prompt (as generated, token filled in), prompt template (``[V]`` for the token), prompt set and
seed. Images the metadata does not list, or a folder without metadata, are still scored, with
their prompt unknown (CLIP-T is skipped for them and a note says so). ``grids/`` is never scored.
StyleRef images that do not decode are skipped and named, as training skips them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import IMAGE_SUFFIXES, list_images, listed, survey, transparency_note
from styleboost.generation.records import read_metadata

UNKNOWN_PROMPT_SET = "unknown"
SKIPPED_FOLDERS = ("grids",)


@dataclass(frozen=True)
class EvalImage:
    """One image to score and what is known of how it was made."""

    path: Path
    file: str  # relative to its set's folder
    prompt_set: str = UNKNOWN_PROMPT_SET
    prompt_index: int | None = None
    prompt: str | None = None  # as generated, the token filled in
    prompt_template: str | None = None  # with [V] for the token
    prompt_without_token: str | None = None  # what CLIP-T encodes
    seed: int | None = None
    size: tuple[int, int] = (0, 0)  # (width, height)

    @property
    def prompt_key(self) -> str:
        """Images of one prompt share this key across runs: ``<prompt set>/<index>``."""
        index = "unknown" if self.prompt_index is None else f"{self.prompt_index:03d}"
        return f"{self.prompt_set}/{index}"


@dataclass
class ImageSet:
    """The images of one run (or of the StyleRef set) and notes on what was odd about them."""

    name: str
    root: Path
    images: list[EvalImage]
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [image.path for image in self.images]


# ----------------------------------------------------------------------------- prompts without the token

_PLACEHOLDER = r"\[V\d*\]"


def _token_patterns(tokens: str) -> list[str]:
    """Phrases that carry the tokens, longest first: 'in the style of T', 'in T style', 'T style', 'T'."""
    return [
        rf"[\s,]*\bin\s+the\s+style\s+of\s+{tokens}",
        rf"[\s,]*\bin\s+(?:an?\s+|the\s+)?{tokens}\s+style\b",
        rf"{tokens}\s+style\b",
        tokens,
    ]


def prompt_without_token(text: str, tokens: list[str] | None = None) -> str:
    """``text`` with the style token(s) and the phrase around them removed: the prompt as the base model reads it.

    ``text`` is a template (``[V]`` placeholders) or, with ``tokens``, a prompt with the tokens filled in:
    ``"a portrait of a woman in [V] style"`` -> ``"a portrait of a woman"``; a run of tokens
    (``"[V1] [V2]"``, ``"[V1] and [V2]"``) goes as one."""
    words = [rf"(?<![\w<]){re.escape(t)}(?![\w>])" for t in tokens or []]
    one = "(?:" + "|".join([_PLACEHOLDER, *words]) + ")"
    run = rf"{one}(?:\s*(?:,|\band\b|&)?\s*{one})*"
    for pattern in _token_patterns(run):
        text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\s+", " ", text))
    return text.strip(" ,;:")


# ----------------------------------------------------------------------------- reading folders


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when it is not an image."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        return None


def image_from_record(root: Path, record: dict[str, Any], size: tuple[int, int]) -> EvalImage:
    """An ``EvalImage`` from a ``styleboost generate`` metadata record."""
    template, prompt = record.get("prompt_template"), record.get("prompt")
    tokens = record.get("tokens") if isinstance(record.get("tokens"), list) else None
    if isinstance(template, str):
        plain = prompt_without_token(template)
    elif isinstance(prompt, str):
        plain = prompt_without_token(prompt, tokens)
    else:
        plain = None
    index = record.get("prompt_index")
    return EvalImage(
        path=root / record["file"],
        file=record["file"],
        prompt_set=str(record.get("prompt_set") or UNKNOWN_PROMPT_SET),
        prompt_index=index if isinstance(index, int) else None,
        prompt=prompt if isinstance(prompt, str) else None,
        prompt_template=template if isinstance(template, str) else None,
        prompt_without_token=plain,
        seed=record.get("seed") if isinstance(record.get("seed"), int) else None,
        size=size,
    )


def files_under(root: Path) -> list[Path]:
    """Image files anywhere under ``root``, except the grid folders ``generate`` writes."""
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        and p.relative_to(root).parts[0] not in SKIPPED_FOLDERS
    )


def read_run(name: str, folder: str | Path) -> ImageSet:
    """The images of one generated run, with their prompts from ``metadata.jsonl`` where it has them."""
    root = Path(folder).expanduser()
    flag = f"--run {name}={folder}"
    if not root.is_dir():
        raise StyleBoostError(f"{flag}: folder not found")
    on_disk = {p.relative_to(root).as_posix(): p for p in files_under(root)}
    if not on_disk:
        raise StyleBoostError(f"{flag}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    records = read_metadata(root)
    notes: list[str] = []
    if not (root / "metadata.jsonl").is_file():
        notes.append(f"run {name!r}: no metadata.jsonl, so prompts are unknown and CLIP-T is skipped")
    missing = [f for f in records if f not in on_disk]
    if missing:
        notes.append(f"run {name!r}: {len(missing)} image(s) listed in metadata.jsonl are missing, e.g. {missing[0]}")
    images, unlisted, broken = [], 0, []
    listed_first = [f for f in records if f in on_disk] + [f for f in on_disk if f not in records]  # generation order
    for file in listed_first:
        path = on_disk[file]
        size = image_size(path)
        if size is None:
            broken.append(file)
            continue
        if file in records:
            images.append(image_from_record(root, records[file], size))
        else:
            unlisted += 1
            images.append(EvalImage(path=path, file=file, prompt_set=_folder_set(file), size=size))
    if unlisted and records:
        notes.append(f"run {name!r}: {unlisted} image(s) not in metadata.jsonl: prompt unknown, CLIP-T skipped for them")
    if broken:
        notes.append(f"run {name!r}: skipped {len(broken)} file(s) that do not decode as images, e.g. {broken[0]}")
    if not images:
        raise StyleBoostError(f"{flag}: none of the {len(on_disk)} image file(s) decode")
    return ImageSet(name, root, images, notes + size_notes(name, images))


def _folder_set(file: str) -> str:
    """The prompt set of an image without metadata: its folder under ``images/``, if it is in one."""
    parts = Path(file).parts
    if len(parts) >= 3 and parts[0] == "images":
        return parts[1]
    return UNKNOWN_PROMPT_SET


def read_styleref(folder: str | Path) -> ImageSet:
    """The StyleRef images (directly inside the folder, as training reads them: a file that does not
    decode is skipped with a notice naming it, transparency is composited on white)."""
    root = Path(folder).expanduser()
    files = list_images(root, flag="--styleref")
    infos = survey(files, flag="--styleref")
    images = [EvalImage(path=i.path, file=i.path.name, prompt_set="styleref", size=i.size) for i in infos]
    notes = [f"StyleRef: {note}" for note in [transparency_note(infos)] if note]
    skipped = sorted({p.name for p in files} - {i.path.name for i in infos})
    if skipped:
        notes.append(f"StyleRef: skipped {len(skipped)} file(s) that do not decode as images: {listed(skipped)}")
    return ImageSet("StyleRef", root, images, notes + size_notes("StyleRef", images))


def size_notes(name: str, images: list[EvalImage]) -> list[str]:
    """A note when a set's images do not all have one size (they are all resized to one square anyway)."""
    sizes = Counter(image.size for image in images)
    if len(sizes) < 2:
        return []
    (common, count), = sizes.most_common(1)
    others = len(images) - count
    return [
        f"{name}: {others} of {len(images)} image(s) are not {common[0]}x{common[1]} like the rest "
        f"({len(sizes)} sizes); every image is resized to one square before scoring"
    ]
