"""Data: captions and placeholders, deterministic augmentation, and a sampler that resumes exactly."""

from __future__ import annotations

import torch
from conftest import write_styleref_images
from PIL import Image

from styleboost.sd.tokens import fill_placeholders, tokens_in
from styleboost.training.data import (
    DrawSampler,
    ImageTransform,
    LatentCache,
    StyleBoostDataset,
    collate,
    load_examples,
)


def test_sampler_started_midway_continues_the_uninterrupted_stream():
    full = list(DrawSampler(5, seed=3, total=23))
    assert list(DrawSampler(5, seed=3, total=23, start=9)) == full[9:]
    epochs = [sorted(i for i, _ in full[e * 5 : e * 5 + 5]) for e in range(4)]
    assert all(e == [0, 1, 2, 3, 4] for e in epochs)  # every epoch is a permutation
    assert [i for i, _ in full[:5]] != [i for i, _ in full[5:10]]  # reshuffled per epoch


def test_captions_come_from_txt_files_with_placeholders_filled(style_dirs):
    examples = load_examples(style_dirs[0], "[V] style", ["sks"], flag="--styleref_dir", needs_token=True)
    assert len(examples) == 4
    assert all("sks" in e.caption and "[V]" not in e.caption for e in examples)
    aux = load_examples(style_dirs[1], "a person", ["sks"], flag="--aux_dir", needs_token=False)
    assert all("sks" not in e.caption for e in aux)


def test_default_prompt_used_without_caption_file(tmp_path):
    paths = write_styleref_images(tmp_path, 2, size=32)
    paths[0].with_suffix(".txt").unlink()
    examples = load_examples(tmp_path, "[V2] style", ["a", "b"], flag="--styleref_dir", needs_token=True)
    assert examples[0].caption == "b style"


def test_augmentation_depends_only_on_the_draw(style_dirs):
    styleref = load_examples(style_dirs[0], "[V] style", ["sks"], flag="--styleref_dir", needs_token=True)
    aux = load_examples(style_dirs[1], "a person", ["sks"], flag="--aux_dir", needs_token=False)
    dataset = StyleBoostDataset(styleref, aux, ImageTransform(24, random_flip=True), seed=0)
    assert len(dataset) == 4
    a, b = dataset[(1, 7)], dataset[(1, 7)]
    assert torch.equal(a["instance"]["pixel_values"], b["instance"]["pixel_values"])
    draws = [dataset[(1, d)]["instance"]["pixel_values"] for d in range(8)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])  # random crops/flips vary
    batch = collate([dataset[(0, 0)], dataset[(3, 1)]])
    assert batch["instance"]["pixel_values"].shape == (2, 3, 24, 24)
    assert batch["prior"]["pixel_values"].shape == (2, 3, 24, 24)
    assert float(batch["instance"]["pixel_values"].min()) >= -1 and float(batch["instance"]["pixel_values"].max()) <= 1


def test_placeholders_and_token_matching():
    assert fill_placeholders("[V1] and [V2], [V]", ["<a>", "<b>"]) == "<a> and <b>, <a>"
    assert tokens_in("a man in sks style", ["sks"]) == ["sks"]
    assert tokens_in("a man in sksy style", ["sks"]) == []
    assert tokens_in("in <v1> style", ["<v1>", "<v2>"]) == ["<v1>"]


def test_images_far_below_the_resolution_are_warned_about_once_naming_the_smallest(tmp_path, capsys):
    write_styleref_images(tmp_path, 3, size=32)
    Image.new("RGB", (8, 8), "gray").save(tmp_path / "tiny.png")
    Image.new("RGB", (12, 40), "gray").save(tmp_path / "thin.png")
    examples = load_examples(tmp_path, "[V] style", ["sks"], flag="--styleref_dir", needs_token=True, resolution=64)
    assert len(examples) == 5
    lines = [line for line in capsys.readouterr().err.splitlines() if "upscaled" in line]
    assert len(lines) == 1, lines
    assert "2 of 5 image(s)" in lines[0] and "tiny.png, 8x8" in lines[0] and str(tmp_path) in lines[0]


def test_transparent_images_are_noted_once_and_trained_on_the_background(tmp_path, capsys):
    for name in ("a.png", "b.png"):
        Image.new("RGBA", (16, 16), (255, 0, 0, 0)).save(tmp_path / name)  # transparent, storing red
    Image.new("RGB", (16, 16), "blue").save(tmp_path / "c.png")
    black = (0, 0, 0)
    examples = load_examples(tmp_path, "[V] style", ["sks"], flag="--styleref_dir", needs_token=True, background=black)
    lines = [line for line in capsys.readouterr().err.splitlines() if "transparent" in line]
    assert len(lines) == 1, lines
    assert "2 of 3 image(s) have transparent pixels: composited on #000000 (set by --image_background)" in lines[0]
    transform = ImageTransform(8, center_crop=True, background=black)
    pixels = StyleBoostDataset(examples, None, transform, seed=0)[(0, 0)]["instance"]["pixel_values"]
    assert torch.equal(pixels, torch.full((3, 8, 8), -1.0))  # black, not red
    assert LatentCache(transform).transform.background == black


def test_caption_dropout_empties_that_share_of_captions_and_keeps_the_crops(style_dirs, train_config):
    styleref = load_examples(style_dirs[0], "[V] style", ["sks"], flag="--styleref_dir", needs_token=True)
    aux = load_examples(style_dirs[1], "a person", ["sks"], flag="--aux_dir", needs_token=False)
    transform = ImageTransform(32, random_flip=True)
    plain = StyleBoostDataset(styleref, aux, transform, seed=0)
    dropping = StyleBoostDataset(styleref, aux, transform, seed=0, caption_dropout=0.3)
    items = [dropping[(draw % 4, draw)] for draw in range(300)]
    captions = [item[part]["caption"] for item in items for part in ("instance", "prior")]
    assert 0.24 < captions.count("") / len(captions) < 0.36
    assert [dropping[(3, 7)]["instance"]["caption"] for _ in range(2)] == [items[7]["instance"]["caption"]] * 2
    for draw in (0, 5):  # the dropout draw comes after the augmentation's: the same crops and flips as without
        assert torch.equal(dropping[(0, draw)]["instance"]["pixel_values"], plain[(0, draw)]["instance"]["pixel_values"])

    from styleboost.training.loop import build_run, compute_loss

    run = build_run(train_config(caption_dropout=0.5))
    seen = [c for batch in run.dataloader for part in ("instance", "prior") for c in batch[part]["captions"]]
    assert "" in seen and any(seen)
    assert torch.isfinite(compute_loss(run, next(iter(run.dataloader)))["loss"])  # "" has precomputed conditioning
    run.accelerator.end_training()
