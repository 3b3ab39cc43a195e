"""The synthetic style set: WikiArt layout, honest held-out contents, byte-for-byte reproducible."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleboost import cli
from styleboost.core.errors import StyleBoostError
from styleboost.styles.stylize import STYLES
from styleboost.styles.synthstyle import (
    DEFAULT_HELDOUT_STYLES,
    HELDOUT_PHOTOS,
    MANIFEST_NAME,
    SPLITS,
    build_style_set,
    contact_sheet_of_styles,
    make_contents,
    style_seed,
)

TINY = dict(seed=0, size=32, train_contents=3, heldout_contents=3,
            heldout_styles=("thermal",), styles=("ink-hatch", "gameboy", "pointillism"))


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return build_style_set(tmp_path_factory.mktemp("set") / "a", **TINY)


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metadata.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_default_heldout_styles_are_six_real_styles():
    assert len(set(DEFAULT_HELDOUT_STYLES)) == 6 and set(DEFAULT_HELDOUT_STYLES) <= set(STYLES)


def test_layout_and_metadata_match_the_files(tiny_set):
    expected = {"train": (TINY["styles"], "train"), "heldout_contents": (TINY["styles"], "heldout"),
                "heldout_styles": (TINY["heldout_styles"], "heldout")}
    for split, (styles, prefix) in expected.items():
        folder = tiny_set / split
        rows = read_rows(folder)
        assert list(rows[0]) == ["path", "style", "content"]
        files = {str(p.relative_to(folder)) for p in folder.rglob("*.png")}
        assert {row["path"] for row in rows} == files and len(rows) == len(styles) * 3
        for row in rows:
            assert row["path"] == f"{row['style']}/{row['content']}.png" and row["content"].startswith(prefix + "-")
        assert {row["style"] for row in rows} == set(styles)
    image = Image.open(tiny_set / "train" / read_rows(tiny_set / "train")[0]["path"])
    assert (image.mode, image.size) == ("RGB", (32, 32))
    manifest = json.loads((tiny_set / MANIFEST_NAME).read_text())
    assert manifest["counts"] == {"train": 9, "heldout_contents": 9, "heldout_styles": 3}
    assert set(manifest["versions"]) >= {"numpy", "pillow", "scikit-image"}
    assert manifest["styles"]["thermal"] == STYLES["thermal"].description


def test_heldout_photos_never_feed_training_contents(tiny_set):
    manifest = json.loads((tiny_set / MANIFEST_NAME).read_text())
    assert manifest["settings"]["heldout_photos"] == list(HELDOUT_PHOTOS)
    train = make_contents("train", 80, 32, seed=0)
    held = make_contents("heldout", 24, 32, seed=0)
    photos_of = lambda contents: {c.source.split(":")[1] for c in contents if c.source.startswith("photo:")}  # noqa: E731
    assert photos_of(train).isdisjoint(HELDOUT_PHOTOS) and photos_of(held) == set(HELDOUT_PHOTOS)
    train_scenes = {c.image.tobytes() for c in train if c.source.startswith("scene:")}
    assert not any(c.image.tobytes() in train_scenes for c in held)
    assert {c.source for c in held if c.source.startswith("scene:")} == {c.source for c in train if c.source.startswith("scene:")}


def test_two_builds_in_different_folders_are_identical_byte_for_byte(tiny_set, tmp_path):
    again = build_style_set(tmp_path / "b", **TINY)
    assert all_files(again) == all_files(tiny_set)


def test_every_image_has_its_own_style_seed_and_a_new_seed_changes_the_set(tiny_set, tmp_path):
    seeds = {style_seed(0, c, s) for c in ("train-000-a", "train-001-b", "heldout-000-a") for s in STYLES}
    assert len(seeds) == 3 * len(STYLES)
    other = build_style_set(tmp_path / "c", **{**TINY, "seed": 1})
    before, after = all_files(tiny_set), all_files(other)
    changed = [name for name in before if name.endswith(".png") and before[name] != after[name]]
    assert len(changed) == sum(name.endswith(".png") for name in before)


def test_rerun_keeps_existing_files_and_fills_in_missing_ones(tmp_path):
    root = build_style_set(tmp_path / "set", **TINY)
    reference = all_files(root)
    kept = root / "train" / "gameboy" / "train-000-astronaut.png"
    stamp = kept.stat().st_mtime_ns
    (root / "heldout_styles" / "thermal" / "heldout-001-person.png").unlink()
    build_style_set(root, **TINY)
    assert all_files(root) == reference and kept.stat().st_mtime_ns == stamp


def test_a_different_existing_set_or_stray_files_are_not_overwritten(tmp_path):
    root = build_style_set(tmp_path / "set", **TINY)
    with pytest.raises(StyleBoostError, match=str(root)) as caught:
        build_style_set(root, **{**TINY, "size": 40})
    assert "\n" not in str(caught.value)
    build_style_set(root, **{**TINY, "size": 40, "styles": ("gameboy",)}, overwrite=True)
    assert json.loads((root / MANIFEST_NAME).read_text())["settings"]["size"] == 40
    assert not (root / "train" / "ink-hatch").exists()
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(StyleBoostError, match="stray"):
        build_style_set(stray, **TINY)


@pytest.mark.parametrize("change, message", [
    ({"heldout_styles": ("impressionism",)}, "impressionism"),
    ({"styles": ("gameboy", "thermal")}, "thermal"),
    ({"size": 16}, "16"),
    ({"train_contents": 1}, "train_contents"),
    ({"heldout_contents": 0}, "heldout_contents"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, change, message):
    with pytest.raises(StyleBoostError, match=message) as caught:
        build_style_set(tmp_path / "set", **{**TINY, **change})
    assert "\n" not in str(caught.value) and not (tmp_path / "set").exists()


def test_command_line_builds_the_default_styles_and_prints_one_line(tmp_path, capsys):
    argv = ["make-style-set", str(tmp_path / "out"), "--size", "32", "--train_contents", "2", "--heldout-contents", "2"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    seen = len(STYLES) - len(DEFAULT_HELDOUT_STYLES)
    assert len(lines) == 1 and lines[0].startswith(f"{2 * seen * 2 + 2 * 6} images")
    assert {p.name for p in (tmp_path / "out" / "heldout_styles").iterdir() if p.is_dir()} == set(DEFAULT_HELDOUT_STYLES)
    assert all((tmp_path / "out" / split / "metadata.csv").is_file() for split in SPLITS)


def test_contact_sheet_has_a_row_per_style_and_a_column_per_content():
    contents = make_contents("heldout", 2, 32, seed=0)
    sheet = contact_sheet_of_styles(contents, ["gameboy", "woodcut"], label_width=50)
    assert sheet.size == (50 + 2 * 32, 3 * 32)
    pixels = np.asarray(sheet)
    assert np.array_equal(pixels[:32, 50:82], np.asarray(contents[0].image))
