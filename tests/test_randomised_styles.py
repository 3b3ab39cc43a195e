"""Style randomisation: drawn programs respect the families (held-out ones never in training, one medium at most),
are reproducible, the new operations do what they say, and the data set is written, resumed and refused as
the other style set is."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from styleboost.cli import main
from styleboost.core.errors import StyleBoostError
from styleboost.style_encoder.dataset import read_style_data
from styleboost.styles.randomised import FAMILIES, MEDIA, draw_style, program_rng
from styleboost.styles.randomised_set import (
    RandomisedSetConfig,
    build_randomised_set,
    draw_heldout_styles,
    draw_training_styles,
    family_sets,
    read_set_config,
)
from styleboost.styles.stylize import PARTS, STYLES
from styleboost.styles.synthstyle import make_contents

HELD = ["halftone", "cells", "warp"]


def family_of(part: str) -> str:
    return next(name for name, (_, parts) in FAMILIES.items() if part in parts)


def test_training_styles_never_use_a_held_out_family_and_test_styles_always_use_theirs():
    cfg = RandomisedSetConfig(out="unused", styles=300, heldout_families=HELD, heldout_styles=40)
    train = draw_training_styles(cfg)
    used = {family_of(part) for s in train for part, _ in s.recipe.steps}
    assert not used & set(HELD)
    assert used == set(FAMILIES) - set(HELD)  # 300 draws reach every training family
    for family in HELD:
        for style in draw_heldout_styles(cfg, family):
            families = [family_of(part) for part, _ in style.recipe.steps]
            assert family in families and not set(families) & (set(HELD) - {family})
    for style in train:
        families = [family_of(part) for part, _ in style.recipe.steps]
        assert len(families) == len(set(families)) and sum(f in MEDIA for f in families) <= 1
        assert [FAMILIES[f][0] for f in families] == sorted(FAMILIES[f][0] for f in families)


def test_a_style_is_the_same_program_every_time_and_another_name_is_another():
    allowed = list(FAMILIES)
    one = draw_style(program_rng(0, "r00001"), "r00001", allowed).recipe
    assert draw_style(program_rng(0, "r00001"), "r00001", allowed).recipe == one
    assert draw_style(program_rng(0, "r00002"), "r00002", allowed).recipe != one
    assert draw_style(program_rng(1, "r00001"), "r00001", allowed).recipe != one


def test_the_new_operations():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 64, dtype=np.float32)
    image = np.repeat(np.repeat(ramp[None, :, None], 64, 0), 3, 2)
    solar = PARTS["solarize"](image, rng, threshold=0.5, amount=1.0)[0, :, 0]
    above = ramp > 0.5
    assert np.allclose(solar[~above], ramp[~above]) and np.all(np.diff(solar[above]) < 0)  # turned back down
    red = np.zeros((8, 8, 3), np.float32)
    red[..., 0] = 1
    turned = PARTS["hue_rotate"](red, rng, degrees=120)
    assert np.allclose(turned[0, 0], [0, 1, 0], atol=1e-5)  # red -> green
    grey = np.full((8, 8, 3), 0.4, np.float32)
    assert np.allclose(PARTS["hue_rotate"](grey, rng, degrees=77), grey, atol=1e-5)
    noise = rng.random((64, 64, 3)).astype(np.float32)
    assert np.array_equal(PARTS["ripple"](noise, rng, amplitude=0.0, swirl=0.0), noise)
    waved = PARTS["ripple"](noise, rng, amplitude=3.0, wavelength=16)
    assert not np.array_equal(waved, noise) and np.isin(waved, noise).all()  # pixels moved, none invented
    swirled = PARTS["ripple"](noise, rng, amplitude=0.0, swirl=2.0)
    assert np.array_equal(swirled[0, 0], noise[0, 0]) and not np.array_equal(swirled[24:40, 24:40], noise[24:40, 24:40])


def small_config(tmp_path, **overrides) -> RandomisedSetConfig:
    settings = dict(out=str(tmp_path / "set"), styles=6, images_per_style=2, heldout_styles=2, heldout_images=2,
                    train_contents=4, size=48, heldout_families=["cells", "warp"])
    return RandomisedSetConfig(**(settings | overrides))


def test_the_set_is_written_kept_on_a_rerun_and_refused_with_other_settings(tmp_path, capsys):
    cfg = small_config(tmp_path)
    counts = build_randomised_set(cfg)
    root = tmp_path / "set"
    assert counts == {"train": 6 * 2, "heldout_families": 2 * 2 * 2, "heldout_recipes": len(STYLES) * 2}
    assert len(json.loads((root / "randomised.json").read_text())["programs"]) == 6 + 2 * 2
    assert sorted(family_sets(root)) == ["family:cells", "family:warp", "recipes"]
    with open(root / "train" / "metadata.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and all((root / "train" / r["path"]).is_file() for r in rows)
    assert len({r["style"] for r in rows}) == 6 and all(len({r["content"] for r in rows if r["style"] == s}) == 2
                                                        for s in {r["style"] for r in rows})
    first = (root / "heldout_families" / "warp" / "warp-000").iterdir().__next__()
    before = first.read_bytes()
    first.unlink()
    build_randomised_set(cfg)  # the same settings: the missing file comes back, byte for byte
    assert first.read_bytes() == before
    code = main(["make-random-style-set", str(root), "--styles", "7"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--overwrite" in err


def test_an_unknown_family_is_one_line(tmp_path, capsys):
    code = main(["make-random-style-set", str(tmp_path / "x"), "--heldout-families", "cells,sparkles"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "sparkles" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("flag, value", [("--styles", "0"), ("--images-per-style", "9")])
def test_bad_counts_are_one_line(tmp_path, capsys, flag, value):
    assert main(["make-random-style-set", str(tmp_path / "x"), "--train-contents", "8", flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_the_ceiling_script_renders_the_test_styles_on_training_contents(tmp_path, capsys):
    """eval/style_ceiling.py: its training images are the held-out families' own test styles, on contents of
    the training pool that no test image shows; a folder without a manifest is one line."""
    from test_protocol import load_script

    cfg = small_config(tmp_path, train_contents=20)  # 20 contents: 2 each for validation and test
    build_randomised_set(cfg)
    script = load_script("style_ceiling")
    assert script.main(["--data", cfg.out, "--out", str(tmp_path / "ceiling"), "--contents", "20",
                        "--steps", "2"]) == 0, capsys.readouterr().err
    seen = read_style_data(tmp_path / "ceiling" / "seen_styles")
    tested = [r for family in ("cells", "warp") for r in read_style_data(Path(cfg.out) / "heldout_families" / family)]
    training = {c.id for c in make_contents("train", cfg.train_contents, cfg.size, cfg.seed)}
    assert {r.style for r in seen} == {r.style for r in tested}
    assert all(len([r for r in seen if r.style == s]) == 20 for s in {r.style for r in seen})
    assert {r.content for r in seen} <= training and not {r.content for r in seen} & {r.content for r in tested}
    report = json.loads((tmp_path / "ceiling" / "report" / "style_eval.json").read_text())
    assert sorted(next(iter(report["results"].values()))) == ["family:cells", "family:warp"]
    assert script.main(["--data", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "randomised.json" in err and not (tmp_path / "x").exists()


def test_a_set_reads_back_the_settings_it_was_built_with(tmp_path):
    cfg = small_config(tmp_path, seed=3, heldout_styles=1)
    build_randomised_set(cfg)
    assert read_set_config(cfg.out) == cfg
    manifest = Path(cfg.out) / "randomised.json"
    manifest.write_text(manifest.read_text().replace('"seed"', '"sead"'))
    with pytest.raises(StyleBoostError, match="randomised.json: written by another version.*sead"):
        read_set_config(cfg.out)
