"""The procedural toy sets: reproducible, correctly captioned, and styles that really differ."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.styles.toydata import (
    CONTENTS,
    NON_PEOPLE_CONTENTS,
    PEOPLE_CONTENTS,
    PIXEL_PALETTE,
    STYLES,
    TARGET_STYLE,
    Kind,
    draw_scene,
    make_aux_set,
    make_default_datasets,
    make_styleref_set,
    other_styles,
    render_example,
)

PEOPLE_NOUNS = ("a person", "a portrait of a person", "a group of people")


def caption_of(image_path: Path) -> str:
    return image_path.with_suffix(".txt").read_text().strip()


def file_bytes(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in paths]


def image_statistics(image: Image.Image) -> np.ndarray:
    """Mean luminance, mean HSV saturation and mean absolute neighbour difference (edges), in 0..1."""
    pixels = np.asarray(image, dtype=np.float64) / 255
    brightest, darkest = pixels.max(axis=-1), pixels.min(axis=-1)
    saturation = np.where(brightest > 0, (brightest - darkest) / np.maximum(brightest, 1e-9), 0.0)
    luma = pixels @ np.array([0.299, 0.587, 0.114])
    edges = np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()
    return np.array([luma.mean(), saturation.mean(), edges])


def statistics_of(paths: list[Path]) -> np.ndarray:
    return np.stack([image_statistics(Image.open(p)) for p in paths])


def test_same_seed_gives_identical_files_and_another_seed_different_ones(tmp_path):
    first = make_styleref_set(tmp_path / "a", n=6, seed=3)
    again = make_styleref_set(tmp_path / "b", n=6, seed=3)
    other = make_styleref_set(tmp_path / "c", n=6, seed=4)
    assert [p.name for p in first] == [p.name for p in again] == [p.name for p in other]
    assert file_bytes(first) == file_bytes(again)
    assert all(a != b for a, b in zip(file_bytes(first), file_bytes(other)))

    aux = make_aux_set(tmp_path / "aux_a", n=6, seed=1)
    assert file_bytes(aux) == file_bytes(make_aux_set(tmp_path / "aux_b", n=6, seed=1))
    assert all(a != b for a, b in zip(file_bytes(aux), file_bytes(make_aux_set(tmp_path / "aux_c", n=6, seed=2))))


def test_styleref_set_mixes_people_and_other_contents_and_every_caption_has_the_token(tmp_path):
    paths = make_styleref_set(tmp_path, n=16, size=32)
    assert len(paths) == 16 and all(p.is_file() and p.suffix == ".png" for p in paths)
    captions = [caption_of(p) for p in paths]
    assert all("[V]" in caption and caption.endswith("in [V] style") for caption in captions)
    contents = {p.stem.split("_", 1)[1] for p in paths}
    assert contents == set(CONTENTS)
    people = [c for c in captions if c.startswith(PEOPLE_NOUNS)]
    assert 0 < len(people) < len(captions)
    assert "a house in [V] style" in captions and "a person in [V] style" in captions


def test_custom_token_placeholder_goes_into_captions(tmp_path):
    paths = make_styleref_set(tmp_path, n=3, size=32, token_placeholder="[V2]")
    assert [caption_of(p) for p in paths] == [
        "a person in [V2] style",
        "a house in [V2] style",
        "a portrait of a person in [V2] style",
    ]


def test_aux_set_shows_only_people_in_the_other_styles_without_the_token(tmp_path):
    paths = make_aux_set(tmp_path, n=16, size=32)
    captions = [caption_of(p) for p in paths]
    assert not any("[V" in caption for caption in captions)
    assert all(caption.startswith(PEOPLE_NOUNS) for caption in captions)
    assert {p.stem.split("_")[1] for p in paths} == set(PEOPLE_CONTENTS)
    used_styles = {caption.rsplit(" in ", 1)[1].removesuffix(" style") for caption in captions}
    assert used_styles == set(other_styles()) and TARGET_STYLE not in used_styles
    assert "a portrait of a person in ink style" in captions


def test_people_contents_have_skin_and_the_others_do_not():
    rng = np.random.default_rng(0)
    for content in PEOPLE_CONTENTS:
        assert draw_scene(content, 32, rng).mask(Kind.SKIN).mean() > 0.01
    for content in NON_PEOPLE_CONTENTS:
        assert not draw_scene(content, 32, rng).mask(Kind.SKIN).any()


@pytest.mark.parametrize("size", [32, 64, 40])
def test_images_have_the_requested_size_and_are_rgb(tmp_path, size):
    paths = make_styleref_set(tmp_path / "ref", n=6, size=size) + make_aux_set(tmp_path / "aux", n=4, size=size)
    for path in paths:
        with Image.open(path) as image:
            assert image.size == (size, size) and image.mode == "RGB"


@pytest.mark.parametrize("size", [32, 64])
def test_target_style_is_statistically_apart_from_the_aux_styles(tmp_path, size):
    styleref_dir, aux_dir = make_default_datasets(tmp_path, size=size)
    styleref = statistics_of(sorted(styleref_dir.glob("*.png")))
    aux = statistics_of(sorted(aux_dir.glob("*.png")))
    # Measured: neon images have mean luminance 0.14-0.24 and saturation 0.57-0.80; the Aux
    # styles 0.45-0.90 and 0.12-0.50 (pixel art reaches 0.87 saturation, but not the darkness).
    assert styleref[:, 0].max() < 0.3 < 0.4 < aux[:, 0].min()
    assert styleref[:, 1].mean() > aux[:, 1].mean() + 0.2


def test_every_pair_of_styles_is_separated_by_some_statistic():
    samples = {
        style: np.stack([image_statistics(render_example(c, style, 32, seed=s)[0]) for c in CONTENTS for s in range(2)])
        for style in STYLES
    }
    for first, second in itertools.combinations(STYLES, 2):
        a, b = samples[first], samples[second]
        gaps = np.maximum(b.min(axis=0) - a.max(axis=0), a.min(axis=0) - b.max(axis=0))
        assert gaps.max() > 0.02, f"{first} and {second} overlap in every statistic: {gaps}"


def test_each_style_follows_its_recipe():
    neon, _ = render_example("house", "neon", 64, seed=5)
    ink, _ = render_example("house", "ink", 64, seed=5)
    pixel, _ = render_example("house", "pixel", 64, seed=5)
    pastel, _ = render_example("house", "pastel", 64, seed=5)
    assert np.asarray(neon)[:4].mean() < 40  # a dark night sky
    assert np.asarray(ink)[:4].mean(axis=(0, 1)).round().tolist() == [244, 236, 214]  # plain cream paper
    assert np.asarray(ink).min() < 60  # and black lines
    colours = {tuple(c) for c in np.asarray(pixel).reshape(-1, 3)}
    assert colours <= set(PIXEL_PALETTE) and len(colours) <= 16
    assert image_statistics(pastel)[2] < image_statistics(ink)[2] / 4  # soft, outline-free


def test_default_datasets_are_idempotent_and_repair_changed_files(tmp_path):
    styleref_dir, aux_dir = make_default_datasets(tmp_path, size=32)
    assert (styleref_dir, aux_dir) == (tmp_path / "styleref", tmp_path / "aux")
    files = sorted(tmp_path.rglob("*.*"))
    assert len(files) == 2 * 2 * 16  # png + txt in both sets
    stamps = {f: f.stat().st_mtime_ns for f in files}
    contents = {f: f.read_bytes() for f in files}

    damaged = styleref_dir / "000_person.png"
    damaged.write_bytes(b"not a png")
    make_default_datasets(tmp_path, size=32)
    assert sorted(tmp_path.rglob("*.*")) == files  # no temporary files left behind
    assert {f: f.read_bytes() for f in files} == contents
    assert all(f.stat().st_mtime_ns == stamps[f] for f in files if f != damaged)


def test_user_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(StyleBoostError, match="unknown toy style 'oil'"):
        make_styleref_set(tmp_path, style="oil", n=1)
    with pytest.raises(StyleBoostError, match="too small"):
        make_aux_set(tmp_path, n=1, size=8)
    with pytest.raises(StyleBoostError, match="at least one image"):
        make_styleref_set(tmp_path, n=0)
    with pytest.raises(StyleBoostError, match="at least one style"):
        make_aux_set(tmp_path, styles=())
    with pytest.raises(StyleBoostError, match="seed"):
        make_aux_set(tmp_path, seed=-1)
    with pytest.raises(StyleBoostError, match="unknown toy content"):
        draw_scene("cat", 32, np.random.default_rng(0))
