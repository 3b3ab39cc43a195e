"""The style-randomisation data set (WikiArt layout): thousands of drawn styles for training a style encoder, and
test sets of the operation families kept out of training.

One job: draw the styles (``randomised``), render them on ``synthstyle``'s contents and write them. Layout
written by ``build_randomised_set(root)``::

    train/<r00000>/<content id>.png                      drawn styles (no held-out family) x training contents
    heldout_families/<family>/<family-000>/<content>.png styles that use a held-out family x held-out contents
    heldout_recipes/<recipe>/<content id>.png            the hand-written ``stylize`` recipes x held-out contents
    <each style folder's parent>/metadata.csv            path,style,content
    randomised.json                                      settings, every drawn program, package versions

Training styles each get ``images_per_style`` contents drawn from the training pool; test styles all get the
same ``heldout_images`` held-out contents (unseen photos and scenes), so retrieval must find style, not content.
Everything derives from the seed; re-running with the same settings keeps the files already written.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import package_versions
from styleboost.core.settings import comma_list, option
from styleboost.styles.randomised import (
    DEFAULT_HELDOUT_FAMILIES,
    FAMILIES,
    check_families,
    draw_style,
    program_rng,
    recipe_to_dict,
)
from styleboost.styles.stylize import MIN_SIZE, STYLES
from styleboost.styles.synthstyle import PACKAGES, derived_seed, make_contents, prepare_root, write_styled

FORMAT = "styleboost-randomised-styles/1"
MANIFEST_NAME = "randomised.json"
SPLITS = ("train", "heldout_families", "heldout_recipes")


@dataclasses.dataclass
class RandomisedSetConfig:
    """The settings of ``styleboost make-style-set --randomised``: how many styles, which families are held out."""

    out: str = option(help="Folder for the set (train/, heldout_families/, heldout_recipes/, randomised.json).",
                      positional=True)
    styles: int = option(2000, "Drawn training styles.")
    images_per_style: int = option(4, "Training images of each drawn style (contents drawn from the pool).")
    heldout_families: list[str] = option(list(DEFAULT_HELDOUT_FAMILIES),
                                         f"Comma-separated operation families kept out of training ({', '.join(FAMILIES)}).",
                                         type=comma_list, nargs=None)
    heldout_styles: int = option(30, "Test styles drawn for each held-out family.")
    heldout_images: int = option(16, "Held-out contents every test style is rendered on (precision@10 needs more "
                                 "than 10 in the database).")
    train_contents: int = option(80, "Training contents in the pool (photo crops and scenes).")
    seed: int = option(0, "Seed of every program, content and image.")
    size: int = option(128, f"Image side in pixels (at least {MIN_SIZE}).")
    overwrite: bool = option(False, "Replace a set with other settings in OUT.")

    def validate(self) -> None:
        check_families(self.heldout_families)
        if len(set(self.heldout_families)) == len(FAMILIES):
            raise StyleBoostError("--heldout-families: every family is held out; nothing is left to train on")
        for name in ("styles", "images_per_style", "heldout_styles", "heldout_images", "train_contents"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.images_per_style > self.train_contents:
            raise StyleBoostError(f"--images-per-style {self.images_per_style} exceeds --train-contents "
                                  f"{self.train_contents}")
        if self.size < MIN_SIZE:
            raise StyleBoostError(f"--size {self.size}: at least {MIN_SIZE} px")


def training_families(heldout: Sequence[str]) -> list[str]:
    return [f for f in FAMILIES if f not in heldout]


def draw_training_styles(cfg: RandomisedSetConfig) -> list:
    allowed = training_families(cfg.heldout_families)
    return [draw_style(program_rng(cfg.seed, name), name, allowed) for name in (f"r{i:05d}" for i in range(cfg.styles))]


def draw_heldout_styles(cfg: RandomisedSetConfig, family: str) -> list:
    """Test styles of ``family``: each uses it, with other parts from the training families only."""
    allowed = training_families(cfg.heldout_families) + [family]
    names = (f"{family}-{k:03d}" for k in range(cfg.heldout_styles))
    return [draw_style(program_rng(cfg.seed, name), name, allowed, required=family) for name in names]


def content_choice(cfg: RandomisedSetConfig, name: str, pool: list) -> list:
    rng = np.random.default_rng(derived_seed(cfg.seed, "contents", name))
    return [pool[i] for i in sorted(rng.choice(len(pool), cfg.images_per_style, replace=False))]


def set_settings(cfg: RandomisedSetConfig) -> dict[str, Any]:
    """What a set's manifest records of the settings it was built with."""
    return {"format": FORMAT, **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("out", "overwrite")}}


def read_set_config(root: str | os.PathLike) -> RandomisedSetConfig:
    """The settings a built set at ``root`` was drawn with, read back from its manifest."""
    manifest = Path(root) / MANIFEST_NAME
    if not manifest.is_file():
        raise StyleBoostError(f"{root}: no {MANIFEST_NAME}; build it with styleboost make-random-style-set")
    settings = json.loads(manifest.read_text())["settings"]
    unknown = set(settings) - {"format"} - {f.name for f in dataclasses.fields(RandomisedSetConfig)}
    if settings.get("format") != FORMAT or unknown:
        raise StyleBoostError(f"{manifest}: written by another version of make-random-style-set "
                              f"({settings.get('format')}{', ' if unknown else ''}{', '.join(sorted(unknown))})")
    return RandomisedSetConfig(out=str(root), **{k: v for k, v in settings.items() if k != "format"})


def build_randomised_set(cfg: RandomisedSetConfig) -> dict[str, int]:
    """Write the set (layout in the module docstring); returns the image count of each split."""
    cfg.validate()
    root = Path(cfg.out)
    settings = set_settings(cfg)
    prepare_root(root, settings, cfg.overwrite, MANIFEST_NAME, SPLITS)
    pool = make_contents("train", cfg.train_contents, cfg.size, cfg.seed)
    held = make_contents("heldout", cfg.heldout_images, cfg.size, cfg.seed)
    train = draw_training_styles(cfg)
    heldout = {family: draw_heldout_styles(cfg, family) for family in cfg.heldout_families}
    manifest: dict[str, Any] = {
        "settings": settings,
        "families": {name: sorted(parts) for name, (_, parts) in FAMILIES.items()},
        "programs": {s.name: recipe_to_dict(s.recipe) for s in train + sum(heldout.values(), [])},
        "versions": package_versions(PACKAGES),
    }
    write_bytes_atomic(root / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode())
    counts = {"train": write_styled(root / "train", [(s.recipe, content_choice(cfg, s.name, pool)) for s in train],
                                    cfg.seed)}
    counts["heldout_families"] = sum(write_styled(root / "heldout_families" / family,
                                                  [(s.recipe, held) for s in styles], cfg.seed)
                                     for family, styles in heldout.items())
    counts["heldout_recipes"] = write_styled(root / "heldout_recipes", [(r, held) for r in STYLES.values()], cfg.seed)
    return counts


def run(cfg: RandomisedSetConfig) -> int:
    """``styleboost make-random-style-set``: build the set and say what is where."""
    counts = build_randomised_set(cfg)
    summary = ", ".join(f"{split} {n}" for split, n in counts.items())
    print(f"{sum(counts.values())} images in {cfg.out} ({summary}; metadata.csv beside each split's styles, "
          f"{MANIFEST_NAME})")
    return 0


def family_sets(root: str | os.PathLike) -> dict[str, Path]:
    """The retrieval test sets of a built set, by name: one per held-out family, and the hand-written recipes."""
    root = Path(root)
    families = sorted(p for p in (root / "heldout_families").iterdir() if p.is_dir())
    return {**{f"family:{p.name}": p for p in families}, "recipes": root / "heldout_recipes"}
