"""Labelled style data: read a WikiArt-style folder or a CSV, split it by artwork, serve augmented images.

Layouts read:
- a folder with one sub-folder per style (WikiArt layout); if it holds a ``metadata.csv`` that file is
  used instead (the synthetic style set writes one, with a ``content`` column);
- a CSV of ``path,style[,content]`` (column names are detected: path/filename/file/image and
  style/label/class/genre, or given), paths relative to the CSV's folder or to ``image_root``.
  ``style_column="folder"`` takes the style from each path's parent folder, as in the Kaggle WikiArt
  release whose ``filename`` column reads ``Impressionism/claude-monet_water-lilies.jpg``.
The split into train/val/test is by *artwork*: by content when contents are known (one content never
lands in two splits), else by image, per style, so every style is in every split.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import UnidentifiedImageError

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import IMAGE_SUFFIXES
from styleboost.style_encoder.preprocess import Preprocess, to_uint8_tensor

METADATA_FILE = "metadata.csv"
PATH_COLUMNS = ("path", "filename", "file", "image", "image_path")
STYLE_COLUMNS = ("style", "label", "class", "genre", "style_name")
CONTENT_COLUMNS = ("content", "content_id", "subject")
SPLITS = ("train", "val", "test")
FOLDER_STYLE = "folder"  # style_column value: the style is the image's parent folder


@dataclass(frozen=True)
class StyleRecord:
    """One labelled image; ``content`` names what it shows when that is known (synthetic data)."""

    path: Path
    style: str
    content: str | None = None


def read_style_data(source: str | Path, image_root: str | Path | None = None, path_column: str | None = None,
                    style_column: str | None = None) -> list[StyleRecord]:
    """Every labelled image of a style folder or CSV, checked: files exist, at least two styles."""
    source = Path(source)
    if source.is_dir() and (source / METADATA_FILE).is_file():
        records = read_style_csv(source / METADATA_FILE, image_root or source, path_column, style_column)
    elif source.is_dir():
        records = read_style_folder(source)
    elif source.suffix.lower() == ".csv" and source.is_file():
        records = read_style_csv(source, image_root, path_column, style_column)
    else:
        raise StyleBoostError(f"{source}: not a style folder (one sub-folder per style) or a .csv file")
    styles = {r.style for r in records}
    if len(styles) < 2:
        raise StyleBoostError(f"{source}: only one style ({', '.join(styles)}); a style encoder needs at least two")
    return records


def read_style_folder(folder: Path) -> list[StyleRecord]:
    """One sub-folder per style; an empty style folder is an error, not a silently missing class."""
    records = []
    style_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not style_dirs:
        raise StyleBoostError(f"{folder}: no style sub-folders (expected <folder>/<style>/<image>)")
    for style_dir in style_dirs:
        images = sorted(p for p in style_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise StyleBoostError(f"{style_dir}: style folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        records += [StyleRecord(p, style_dir.name) for p in images]
    return records


def _pick_column(header: list[str], given: str | None, candidates: Sequence[str], what: str, csv_path: Path) -> str | None:
    if given is not None:
        if given not in header:
            raise StyleBoostError(f"{csv_path}: no column {given!r} (columns: {', '.join(header)})")
        return given
    lowered = {h.lower(): h for h in header}
    found = next((lowered[c] for c in candidates if c in lowered), None)
    if found is None and what != "content":
        raise StyleBoostError(f"{csv_path}: no {what} column (looked for {', '.join(candidates)}; columns: {', '.join(header)})")
    return found


def read_style_csv(csv_path: Path, image_root: str | Path | None = None, path_column: str | None = None,
                   style_column: str | None = None) -> list[StyleRecord]:
    """Rows of (path, style[, content]); every listed file must exist."""
    root = Path(image_root) if image_root is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        path_key = _pick_column(header, path_column, PATH_COLUMNS, "path", csv_path)
        by_folder = style_column == FOLDER_STYLE
        style_key = None if by_folder else _pick_column(header, style_column, STYLE_COLUMNS, "style", csv_path)
        content_key = _pick_column(header, None, CONTENT_COLUMNS, "content", csv_path)
        rows = list(reader)
    if not rows:
        raise StyleBoostError(f"{csv_path}: no rows")
    records = [StyleRecord(root / row[path_key], Path(row[path_key]).parent.name if by_folder else str(row[style_key]),
                           row.get(content_key) if content_key else None) for row in rows]
    missing = [r.path for r in records if not r.path.is_file()]
    if missing:
        raise StyleBoostError(f"{csv_path}: {len(missing)} listed image(s) not found, e.g. {missing[0]}")
    return records


def split_records(records: Sequence[StyleRecord], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  seed: int = 0) -> dict[str, list[StyleRecord]]:
    """train/val/test by artwork, fixed by ``seed``; see the module docstring."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise StyleBoostError(f"split fractions must be three non-negative numbers summing to 1 (got {list(fractions)})")
    by_content = all(r.content for r in records)
    groups: dict[tuple, list[StyleRecord]] = defaultdict(list)
    for r in records:
        groups[("", r.content) if by_content else (r.style, str(r.path))].append(r)
    strata: dict[str, list[tuple]] = defaultdict(list)
    for key in sorted(groups):
        strata[key[0]].append(key)
    out: dict[str, list[StyleRecord]] = {s: [] for s in SPLITS}
    for stratum, keys in sorted(strata.items()):
        order = np.random.default_rng([seed, len(stratum)] + [ord(c) for c in stratum]).permutation(len(keys))
        bounds = np.rint(np.cumsum(fractions) * len(keys)).astype(int)
        for rank, index in enumerate(order):
            split = SPLITS[int(np.searchsorted(bounds, rank, side="right"))]
            out[split] += groups[keys[index]]
    return out


def write_splits(splits: dict[str, list[StyleRecord]], path: Path, root: Path | None = None) -> None:
    """``path,style,content,split`` for every record (paths relative to ``root`` when inside it)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "style", "content", "split"])
        for split, records in splits.items():
            for r in records:
                shown = r.path.relative_to(root) if root is not None and r.path.is_relative_to(root) else r.path
                writer.writerow([str(shown), r.style, r.content or "", split])


class StyleImageDataset(torch.utils.data.Dataset):
    """``(pixels, style index)`` pairs, augmented by ``transform`` and normalised for the encoder."""

    def __init__(self, records: Sequence[StyleRecord], class_names: Sequence[str], preprocess: Preprocess,
                 transform) -> None:
        self.records = list(records)
        index = {name: i for i, name in enumerate(class_names)}
        self.labels = [index[r.style] for r in self.records]
        self.preprocess, self.transform = preprocess, transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        """``item`` is an index, or ``(index, seed)`` to draw the augmentation from its own seed."""
        i, seed = item if isinstance(item, tuple) else (item, None)
        path = self.records[i].path
        try:
            pixels = to_uint8_tensor(path)
        except (UnidentifiedImageError, OSError) as err:
            raise StyleBoostError(f"{path}: does not decode as an image ({type(err).__name__})") from None
        if seed is None:
            return self.preprocess.normalise(self.transform(pixels)), self.labels[i]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.preprocess.normalise(self.transform(pixels)), self.labels[i]
