"""The style encoder: factory, save/load, descriptors, losses, P x K batches, training, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import load_entry_point
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.style_encoder import create_style_encoder, load_style_encoder, save_style_encoder, style_similarity
from styleboost.style_encoder.dataset import read_style_data, split_records
from styleboost.style_encoder.descriptors import gram_upper
from styleboost.style_encoder.losses import batch_hard_triplet_loss, style_loss, supervised_contrastive_loss
from styleboost.style_encoder.sampler import PKBatchSampler
from styleboost.style_encoder.training import EncoderTrainConfig, settle_crop_mode, train_style_encoder
from styleboost.toyworld import scenes
from styleboost.toyworld.world import draw_sample

TINY_ARCH = {
    "name": "tiny-cnn",
    "backbone": {"type": "small-cnn", "widths": [8, 16, 16, 16]},
    "image_size": 32,
    "features": ["meanstd", "gram"],
    "gram_channels": 4,
    "head": "mlp",
    "head_hidden": 32,
    "embed_dim": 16,
}
TOY_STYLES = ("ink", "neon", "pixel")
RECIPES = {"ink": "ink-hatch", "neon": "neon-edges", "pixel": "pixel-art"}  # the stylize recipe of each folder


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("arch") / "tiny-cnn.json"
    path.write_text(json.dumps(TINY_ARCH))
    return str(path)


@pytest.fixture(scope="module")
def toy_style_folder(tmp_path_factory) -> Path:
    """Three toy styles x 8 toy-world images in the WikiArt layout (one sub-folder per style)."""
    root = tmp_path_factory.mktemp("styles")
    for style in TOY_STYLES:
        (root / style).mkdir()
        for i, content in enumerate(list(scenes.CONTENTS)[:4] * 2):
            sample = draw_sample(content, RECIPES[style], 32, (i,))
            Image.fromarray(sample.pixels).save(root / style / f"{content}_{i}.png")
    return root


def tiny_train_config(data: Path, out: Path, arch: str, **overrides) -> EncoderTrainConfig:
    settings = dict(data=str(data), output_dir=str(out), architecture=arch, max_train_steps=6, styles_per_batch=3,
                    images_per_style=2, eval_every=3, checkpointing_steps=3, report_to="none", progress=False,
                    val_fraction=0.25, test_fraction=0.25, learning_rate=3e-3, lr_warmup_steps=0)
    settings.update(overrides)
    cfg = EncoderTrainConfig(**settings)
    cfg.validate()
    return cfg


# --------------------------------------------------------------------------- model and factory


def test_embeddings_are_unit_vectors_and_batching_does_not_change_them(tiny_arch, toy_style_folder):
    encoder = create_style_encoder(tiny_arch)
    images = sorted(toy_style_folder.rglob("*.png"))[:5]
    one_batch = encoder.embed(images, batch_size=5)
    small_batches = encoder.embed(images, batch_size=2)
    assert one_batch.shape == (5, 16)
    torch.testing.assert_close(one_batch.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(one_batch, small_batches, atol=1e-5, rtol=0)
    similarity = style_similarity(one_batch, one_batch)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(5))


def test_saved_encoder_reloads_with_identical_vectors(tiny_arch, toy_style_folder, tmp_path):
    encoder = create_style_encoder(tiny_arch, class_names=list(TOY_STYLES))
    with torch.no_grad():  # move BatchNorm statistics away from their initial values
        encoder.train()(torch.randn(8, 3, 32, 32) * 2 + 1)
    images = sorted(toy_style_folder.rglob("*.png"))[:6]
    saved = save_style_encoder(encoder, tmp_path / "enc")
    loaded = load_style_encoder(saved)
    assert torch.equal(encoder.embed(images), loaded.embed(images))
    assert loaded.config.class_names == list(TOY_STYLES)
    assert json.loads((saved / "config.json").read_text())["backbone"]["type"] == "small-cnn"
    with pytest.raises(StyleBoostError, match="already exists"):
        save_style_encoder(encoder, saved)


def test_training_free_gram_encoders_are_reproducible():
    pixels = torch.rand(3, 3, 40, 40)
    first, second = create_style_encoder("gram-small-cnn"), create_style_encoder("gram-small-cnn")
    assert torch.equal(first.embed(pixels), second.embed(pixels))
    assert create_style_encoder("gram-small-cnn").embed_dim == first.embed_dim


@pytest.mark.parametrize("name", ["wide-cnn", "efficientnet_b0", "clip-vit-b-32", "gram-vgg19"])
def test_every_shipped_architecture_builds_and_embeds(name):
    encoder = create_style_encoder(name) if name.startswith("gram") else create_style_encoder(name, class_names=["a", "b"])
    vectors = encoder.embed(torch.rand(2, 3, 50, 60))
    assert vectors.shape == (2, encoder.embed_dim)
    assert torch.isfinite(vectors).all()
    assert not torch.allclose(vectors[0], vectors[1])


def test_gram_upper_matches_a_direct_computation_and_the_projection_identity():
    features = torch.randn(2, 5, 4, 3)
    flat = features.flatten(2)
    gram = flat @ flat.transpose(1, 2) / 12
    rows, cols = torch.triu_indices(5, 5)
    torch.testing.assert_close(gram_upper(features), gram[:, rows, cols])
    projection = torch.randn(5, 3)  # Gram of projected features = projected Gram matrix
    projected = torch.einsum("bchw,cd->bdhw", features, projection)
    full = projection.T @ gram @ projection
    rows3, cols3 = torch.triu_indices(3, 3)
    torch.testing.assert_close(gram_upper(projected), full[:, rows3, cols3], atol=1e-4, rtol=1e-4)


def test_backbone_weights_come_from_a_local_safetensors_file_and_never_from_pickle(tmp_path):
    from safetensors.torch import save_file

    donor = create_style_encoder("small-cnn", init_seed=7)
    save_file(donor.backbone.state_dict(), str(tmp_path / "backbone.safetensors"))
    loaded = create_style_encoder("small-cnn", pretrained=str(tmp_path / "backbone.safetensors"))
    fresh = create_style_encoder("small-cnn")
    weight = "stages.0.0.weight"
    assert torch.equal(loaded.backbone.state_dict()[weight], donor.backbone.state_dict()[weight])
    assert not torch.equal(fresh.backbone.state_dict()[weight], donor.backbone.state_dict()[weight])
    torch.save(donor.backbone.state_dict(), tmp_path / "backbone.pt")
    with pytest.raises(StyleBoostError, match=r"backbone.pt: expected an existing .safetensors file"):
        create_style_encoder("small-cnn", pretrained=str(tmp_path / "backbone.pt"))


def test_a_config_with_an_unknown_setting_is_refused(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**TINY_ARCH, "widht": 3}))
    with pytest.raises(StyleBoostError, match=r"arch.json: unknown style-encoder setting\(s\) widht"):
        create_style_encoder(str(path))


def test_unknown_encoder_and_non_encoder_folder_are_one_line_errors(tmp_path):
    with pytest.raises(StyleBoostError, match="no-such-encoder.*choose"):
        create_style_encoder("no-such-encoder")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(StyleBoostError, match="not a style encoder folder"):
        load_style_encoder(tmp_path)


# --------------------------------------------------------------------------- augmentation


def test_training_augmentation_keeps_colour():
    """Crops, flips and small rotations only: a flat colour stays that colour (no jitter, no filled corners)."""
    encoder = create_style_encoder("small-cnn")
    transform = encoder.preprocess.train_transform()
    flat = torch.tensor([200, 40, 90], dtype=torch.uint8).view(3, 1, 1).expand(3, 150, 170).contiguous()
    for seed in range(20):
        torch.manual_seed(seed)
        out = transform(flat)
        assert out.shape == (3, 128, 128)
        assert (out.int() - flat[:, :1, :1].int()).abs().max() <= 1


def stripe_period(pixels: torch.Tensor) -> float:
    """The period in px of the strongest horizontal frequency of an image's column profile."""
    profile = pixels.float().mean(dim=(0, 1))
    spectrum = torch.fft.rfft(profile - profile.mean()).abs()
    return len(profile) / int(spectrum[1:].argmax() + 1)


def test_native_crops_keep_the_size_of_marks_and_zoomed_crops_change_it():
    """Stripes 8 px apart stay 8 px apart in native crops (as the eval transform sees them), not in zoomed ones."""
    preprocess = create_style_encoder("small-cnn").preprocess
    stripes = ((torch.arange(160) // 4) % 2 * 255).to(torch.uint8).expand(3, 128, 160).contiguous()
    assert stripe_period(preprocess.eval_transform()(stripes)) == 8
    native, zoom = preprocess.train_transform(max_rotation=0, zoom=False), preprocess.train_transform(max_rotation=0)
    native_periods, zoom_periods = [], []
    for seed in range(12):
        torch.manual_seed(seed)
        native_periods.append(stripe_period(native(stripes)))
        zoom_periods.append(stripe_period(zoom(stripes)))
    assert native_periods == [8] * 12
    assert sum(abs(p - 8) > 0.5 for p in zoom_periods) >= 8


def test_native_crops_are_refused_for_a_fixed_size_vit_tower(toy_style_folder, tmp_path):
    from styleboost.testing import register_tiny_open_clip

    arch = tmp_path / "tiny-csd.json"
    arch.write_text(json.dumps({"name": "tiny-csd", "backbone": {"type": "csd", "model": register_tiny_open_clip()},
                                "image_size": 32, "features": ["pool"], "gram_channels": None, "head": "linear",
                                "embed_dim": 16}))
    cfg = tiny_train_config(toy_style_folder, tmp_path / "run", str(arch), crop_mode="native")
    with pytest.raises(StyleBoostError, match="--crop_mode native: the csd backbone takes only 32 px inputs"):
        train_style_encoder(cfg)
    assert not (tmp_path / "run" / "best").exists()


def test_crops_are_native_by_default_zoomed_for_a_vit_tower_and_a_zoom_setting_with_native_is_a_notice(capsys):
    assert settle_crop_mode(EncoderTrainConfig(data="x"), "small-cnn", 128).crop_mode == "native"
    assert settle_crop_mode(EncoderTrainConfig(data="x"), "csd", 224).crop_mode == "zoom"
    assert settle_crop_mode(EncoderTrainConfig(data="x", crop_mode="zoom"), "small-cnn", 128).crop_mode == "zoom"
    assert capsys.readouterr().err == ""
    settle_crop_mode(EncoderTrainConfig(data="x", min_crop_scale=0.5), "small-cnn", 128)
    assert "--min_crop_scale 0.5 does not apply with native crops" in capsys.readouterr().err


# --------------------------------------------------------------------------- losses and batches


def reference_supcon(z: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    """SupCon written as the paper's double sum, one anchor at a time."""
    losses = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        denominator = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        positives = [p for p in others if labels[p] == labels[i]]
        losses.append(-torch.stack([z[i] @ z[p] / t - denominator for p in positives]).mean())
    return torch.stack(losses).mean()


def test_supervised_contrastive_loss_matches_the_paper_formula():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(8, 5), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    torch.testing.assert_close(supervised_contrastive_loss(z, labels, 0.2), reference_supcon(z, labels, 0.2))


def test_distance_losses_prefer_clustered_embeddings():
    labels = torch.arange(4).repeat_interleave(3)
    centres = torch.nn.functional.normalize(torch.randn(4, 16), dim=1)
    clustered = torch.nn.functional.normalize(centres[labels] + 0.05 * torch.randn(12, 16), dim=1)
    scattered = torch.nn.functional.normalize(torch.randn(12, 16), dim=1)
    assert supervised_contrastive_loss(clustered, labels) < supervised_contrastive_loss(scattered, labels) - 1
    assert batch_hard_triplet_loss(clustered, labels, margin=0.2) == 0
    assert batch_hard_triplet_loss(scattered, labels, margin=0.2) > 0.2


def test_combined_loss_is_the_weighted_sum():
    z = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    logits, labels = torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    terms = style_loss(z, logits, labels, "triplet", ce_weight=0.5, distance_weight=2.0)
    torch.testing.assert_close(terms["loss"], 0.5 * terms["ce"] + 2.0 * terms["distance"])


def test_pk_batches_hold_k_images_of_each_of_p_styles():
    labels = [0] * 10 + [1] * 3 + [2] * 7 + [3] * 5 + [4] * 8
    sampler = PKBatchSampler(labels, p=4, k=4, seed=1, steps=25)
    batches = list(sampler)
    assert len(batches) == 25
    for batch in batches:
        styles = [labels[i] for i in batch]
        assert len(batch) == 16 and len(set(styles)) == 4
        assert all(styles.count(s) == 4 for s in set(styles))
        for s in set(styles):
            chosen = [i for i in batch if labels[i] == s]
            if labels.count(s) >= 4:
                assert len(set(chosen)) == 4  # without replacement when the style has enough images
    assert batches[7] == PKBatchSampler(labels, p=4, k=4, seed=1, steps=5, start=5).batch(7)  # resumable
    assert batches != list(PKBatchSampler(labels, p=4, k=4, seed=2, steps=25))


def test_a_few_optimizer_steps_lower_the_combined_loss(tiny_arch):
    torch.manual_seed(0)
    encoder = create_style_encoder(tiny_arch, class_names=["a", "b", "c", "d"])
    labels = torch.arange(4).repeat_interleave(4)
    # four "styles": each a colour cast and a texture frequency, on shared random content
    content = torch.rand(4, 1, 32, 32).repeat(4, 1, 1, 1)
    casts = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0], [0.8, 0.8, 0.2]])
    pixels = content * casts[labels].view(16, 3, 1, 1)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        z, logits = encoder.train()(pixels, return_logits=True)
        loss = style_loss(z, logits, labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


# --------------------------------------------------------------------------- data


def test_split_by_content_never_shares_a_content_and_is_fixed_by_seed(tmp_path):
    from styleboost.style_encoder.dataset import StyleRecord

    records = [StyleRecord(tmp_path / f"{s}_{c}.png", s, f"c{c}") for s in "abcd" for c in range(20)]
    splits = split_records(records, (0.6, 0.2, 0.2), seed=3)
    contents = {name: {r.content for r in rs} for name, rs in splits.items()}
    assert not (contents["train"] & contents["val"]) and not (contents["train"] & contents["test"])
    assert [len(v) for v in contents.values()] == [12, 4, 4]
    assert split_records(records, (0.6, 0.2, 0.2), seed=3) == splits
    assert split_records(records, (0.6, 0.2, 0.2), seed=4) != splits


def test_split_by_image_keeps_every_style_in_every_split(toy_style_folder):
    splits = split_records(read_style_data(toy_style_folder), (0.5, 0.25, 0.25), seed=0)
    for records in splits.values():
        assert {r.style for r in records} == set(TOY_STYLES)


def test_csv_with_detected_columns_and_contents(toy_style_folder, tmp_path):
    csv_path = tmp_path / "art.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "genre", "content"])
        for p in sorted(toy_style_folder.rglob("*.png")):
            writer.writerow([str(p.relative_to(toy_style_folder)), p.parent.name, p.stem.split("_")[0]])
    records = read_style_data(csv_path, image_root=toy_style_folder)
    assert len(records) == 24 and {r.style for r in records} == set(TOY_STYLES)
    assert {r.content for r in records} == {"person", "portrait", "group", "house"}
    by_folder = read_style_data(csv_path, image_root=toy_style_folder, style_column="folder")
    assert [r.style for r in by_folder] == [r.style for r in records]


def test_bad_style_data_gives_one_clear_line(toy_style_folder, tmp_path):
    empty_class = tmp_path / "empty_class"
    (empty_class / "ink").mkdir(parents=True)
    (empty_class / "neon").mkdir()
    (empty_class / "ink" / "a.png").write_bytes((toy_style_folder / "ink" / "house_3.png").read_bytes())
    with pytest.raises(StyleBoostError, match=r"neon: style folder has no images"):
        read_style_data(empty_class)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,style\nink/house_3.png,ink\nnope/gone.png,neon\n")
    with pytest.raises(StyleBoostError, match=r"missing.csv: 1 listed image\(s\) not found, e.g. .*gone.png"):
        read_style_data(missing, image_root=toy_style_folder)
    single = tmp_path / "single"
    (single / "ink").mkdir(parents=True)
    (single / "ink" / "a.png").write_bytes((toy_style_folder / "ink" / "house_3.png").read_bytes())
    with pytest.raises(StyleBoostError, match="only one style"):
        read_style_data(single)


def test_train_script_reports_bad_data_as_one_line(tmp_path, capsys):
    single = tmp_path / "single" / "ink"
    single.mkdir(parents=True)
    script = load_entry_point("train_style_encoder")
    assert script.main(["--data", str(tmp_path / "single"), "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ink: style folder has no images" in err


# --------------------------------------------------------------------------- the training run


def test_training_run_exports_best_and_resumes_exactly(toy_style_folder, tiny_arch, tmp_path):
    straight = train_style_encoder(tiny_train_config(toy_style_folder, tmp_path / "a", tiny_arch))
    manifest = json.loads((straight / "run.json").read_text())
    assert manifest["status"] == "finished" and [v["step"] for v in manifest["validation"]] == [3, 6]
    assert (straight / "splits.csv").read_text().count("\n") == 25
    best = load_style_encoder(straight / "best")
    assert best.config.class_names == list(TOY_STYLES)
    assert best.config.training["val"]["map@10"] == max(v["map@10"] for v in manifest["validation"])
    assert best.config.training["crop_mode"] == manifest["config"]["crop_mode"] == "native"  # settled, recorded
    # interrupted after the step-3 checkpoint, then resumed: the same final weights
    resumed_dir = tmp_path / "b"
    train_style_encoder(tiny_train_config(toy_style_folder, resumed_dir, tiny_arch))
    for path in [resumed_dir / "last", resumed_dir / "checkpoint-6"]:
        if path.exists():
            import shutil

            shutil.rmtree(path)
    train_style_encoder(tiny_train_config(toy_style_folder, resumed_dir, tiny_arch, resume_from_checkpoint="latest"))
    first = load_style_encoder(straight / "last").state_dict()
    second = load_style_encoder(resumed_dir / "last").state_dict()
    for key in first:
        torch.testing.assert_close(first[key], second[key], atol=1e-6, rtol=0, msg=key)
    with pytest.raises(StyleBoostError, match="already holds a run"):
        train_style_encoder(tiny_train_config(toy_style_folder, straight, tiny_arch))


def test_excluded_styles_are_never_trained(toy_style_folder, tiny_arch, tmp_path):
    out = train_style_encoder(tiny_train_config(toy_style_folder, tmp_path / "x", tiny_arch, exclude_styles=["neon"],
                                                max_train_steps=2, eval_every=2, styles_per_batch=2))
    assert load_style_encoder(out / "best").config.class_names == ["ink", "pixel"]
    assert "neon" not in (out / "splits.csv").read_text()
    with pytest.raises(StyleBoostError, match="--exclude_styles: sepia not in"):
        train_style_encoder(tiny_train_config(toy_style_folder, tmp_path / "y", tiny_arch, exclude_styles=["sepia"]))


# --------------------------------------------------------------------------- style-eval


def test_style_eval_compares_encoders_on_sets_and_keeps_its_report(toy_style_folder, tiny_arch, tmp_path, capsys):
    from styleboost.cli import main

    encoder = create_style_encoder(tiny_arch, class_names=list(TOY_STYLES))
    save_style_encoder(encoder, tmp_path / "enc")
    out = tmp_path / "report"
    argv = ["style-eval", "--encoder", str(tmp_path / "enc"), "--encoder", "gram-small-cnn",
            "--set", f"toy={toy_style_folder}", "--set", f"two={toy_style_folder / 'ink'}/..", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    report = json.loads((out / "style_eval.json").read_text())
    assert set(report["results"]) == {str(tmp_path / "enc"), "gram-small-cnn"}
    for per_set in report["results"].values():
        assert set(per_set) == {"toy", "two"}
        assert 0 <= per_set["toy"]["map@10"] <= 1
    assert "classifier_accuracy" in report["results"][str(tmp_path / "enc")]["toy"]
    assert "classifier_accuracy" not in report["results"]["gram-small-cnn"]["toy"]
    table = (out / "style_eval.md").read_text()
    assert table.count("| toy |") == 2 and table.count("| two |") == 2
    before = (out / "style_eval.json").read_text()
    capsys.readouterr()
    assert main(argv) == 2  # an existing report is kept without --overwrite
    assert "already holds style_eval.json" in capsys.readouterr().err
    assert (out / "style_eval.json").read_text() == before


@pytest.mark.parametrize("processes", [1, 2])
def test_lr_schedule_ends_at_max_train_steps_on_any_number_of_processes(tiny_arch, toy_style_folder, tmp_path,
                                                                        processes):
    """accelerate steps a prepared scheduler once per process per optimizer step; the schedule must still
    reach its end (LR 0 for linear) at max_train_steps, not after max_train_steps / processes."""
    from styleboost.style_encoder.training import make_optimisation

    cfg = tiny_train_config(toy_style_folder, tmp_path / "out", tiny_arch, lr_scheduler="linear", max_train_steps=10)
    optimizer, scheduler = make_optimisation(cfg, create_style_encoder(tiny_arch), processes)
    lrs = []
    for _ in range(cfg.max_train_steps):
        optimizer.step()  # no gradients: weights stay, the order of calls is the training loop's
        for _ in range(processes):  # what AcceleratedScheduler.step does on N processes
            scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    assert lrs[4] == pytest.approx(cfg.learning_rate / 2)  # half-way after half the optimizer steps
    assert lrs[-2] > 0 and lrs[-1] == 0

