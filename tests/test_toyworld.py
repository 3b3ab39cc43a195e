"""The toy world: its captioned pictures, the experiment sets, the network shapes and one tiny pre-training run.

Everything here is small enough for a busy 2-core CPU: the world is rendered with at most a few
hundred 64 px samples and the pre-training run (shared by several tests) takes a few optimizer steps
per stage, so the tests check formats, bookkeeping and reproducibility, never model quality.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import load_entry_point
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.toyworld import architectures as archs
from styleboost.toyworld import assets, pretrain, scenes
from styleboost.toyworld.world import (
    HELDOUT_STYLES,
    NAMED_STYLES,
    NATURAL,
    WorldConfig,
    draw_sample,
    render_world,
    sample_plan,
    write_style_folder,
)

PEOPLE = {name for name, content in scenes.CONTENTS.items() if content.people}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The machine is shared: keep torch on one thread here and give the old setting back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def file_digests(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``folder``."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def single_line(text: str) -> str:
    text = text.strip()
    assert text and "\n" not in text, text
    assert "Traceback" not in text
    return text


# --------------------------------------------------------------------------- the world's pictures


@pytest.fixture(scope="module")
def world_252():
    """252 samples drawn by two processes: two chunks of the renderer (250 + 2)."""
    config = WorldConfig(samples=252)
    return config, render_world(config, workers=2)


def test_world_is_the_same_whatever_the_process_count_and_chunking(world_252):
    config, pooled = world_252
    single = render_world(WorldConfig(samples=40), workers=1)
    assert len(single) == 40 and len(pooled) == 252
    for a, b in zip(single, pooled[:40]):
        assert (a.caption, a.content, a.style) == (b.caption, b.content, b.style)
        assert a.pixels.dtype == np.uint8 and a.pixels.shape == (64, 64, 3)
        assert a.pixels.tobytes() == b.pixels.tobytes()
    # the second chunk is in index order and is sample (seed, index), like every other sample
    for index in (249, 250, 251):
        content, style = sample_plan(config, index)
        direct = draw_sample(content, style, 64, (config.seed, index))
        assert pooled[index].pixels.tobytes() == direct.pixels.tobytes()
        assert pooled[index].caption == direct.caption
    # the pictures actually vary, and another seed draws another world
    assert len({s.pixels.tobytes() for s in single}) == len(single)
    other = render_world(WorldConfig(samples=3, seed=1), workers=1)
    assert all(a.pixels.tobytes() != b.pixels.tobytes() for a, b in zip(other, single))


def test_world_captions_name_named_styles_only(world_252):
    _, samples = world_252
    names = list(scenes.CONTENTS)
    assert [s.content for s in samples] == [names[k % len(names)] for k in range(len(samples))]
    for sample in samples:
        base = scenes.CONTENTS[sample.content].caption
        if sample.style == NATURAL:
            assert sample.caption == base
            assert " style" not in sample.caption
        else:
            assert sample.style in NAMED_STYLES
            assert sample.caption == f"{base} in {sample.style} style"
        for held_out in HELDOUT_STYLES:
            assert held_out not in sample.caption and sample.style != held_out
    styles = [s.style for s in samples]
    assert set(styles) == {NATURAL, *NAMED_STYLES}  # 252 draws reach every named style
    assert 0.05 < styles.count(NATURAL) / len(styles) < 0.3  # natural_share is 0.15


def test_a_styled_sample_is_its_natural_drawing_restyled(world_252):
    _, samples = world_252
    styled = [k for k, s in enumerate(samples) if s.style != NATURAL][:3]
    natural = [k for k, s in enumerate(samples) if s.style == NATURAL][:2]
    for index in styled:
        plain = draw_sample(samples[index].content, NATURAL, 64, (0, index))
        assert plain.pixels.tobytes() != samples[index].pixels.tobytes()
    for index in natural:
        assert draw_sample(samples[index].content, NATURAL, 64, (0, index)).pixels.tobytes() == \
            samples[index].pixels.tobytes()


def test_world_config_chooses_styles_and_contents():
    config = WorldConfig(samples=6, named_styles=("pencil", "cyanotype"), contents=("tree", "animal"), natural_share=0.0)
    samples = render_world(config, workers=1)
    assert [s.content for s in samples] == ["tree", "animal"] * 3
    assert {s.style for s in samples} <= {"pencil", "cyanotype"}
    assert config.as_dict()["named_styles"] == ("pencil", "cyanotype")


@pytest.mark.parametrize("settings, message", [
    (dict(named_styles=("pencil", "thermal")), "both named and held out"),
    (dict(heldout_styles=("watercolor",)), "both named and held out"),
    (dict(named_styles=("no-such-style",)), "unknown style 'no-such-style'"),
    (dict(heldout_styles=("no-such-style",)), "unknown style 'no-such-style'"),
    (dict(contents=("tree", "spaceship")), "unknown toy-world content 'spaceship'"),
])
def test_world_config_rejects_bad_styles_and_contents(settings, message):
    with pytest.raises(StyleBoostError, match=message):
        WorldConfig(samples=4, **settings)


def test_write_style_folder_writes_captioned_pngs_apart_from_the_world(tmp_path):
    items = [("tree", "thermal"), ("portrait", "watercolor"), ("person-house", "thermal")]
    folder = write_style_folder(tmp_path / "a", items, caption="{content} in [V] style")
    pngs, txts = sorted(folder.glob("*.png")), sorted(folder.glob("*.txt"))
    assert [p.stem for p in pngs] == [p.stem for p in txts] == ["000-tree", "001-portrait", "002-person-house"]
    assert [t.read_text() for t in txts] == ["a tree in [V] style\n", "a portrait of a person in [V] style\n",
                                            "a person next to a house in [V] style\n"]
    for k, (png, (content, style)) in enumerate(zip(pngs, items)):
        with Image.open(png) as image:
            assert image.size == (64, 64) and image.mode == "RGB"
            pixels = np.asarray(image)
        world_sample = draw_sample(content, style, 64, (0, k))  # what the world would draw at (seed, index)
        assert pixels.tobytes() != world_sample.pixels.tobytes()
    # reproducible: the same call elsewhere writes the same bytes; another seed other pictures
    again = write_style_folder(tmp_path / "b", items, caption="{content} in [V] style")
    assert [p.read_bytes() for p in sorted(again.glob("*.png"))] == [p.read_bytes() for p in pngs]
    reseeded = write_style_folder(tmp_path / "c", items, seed=5)
    assert all(a.read_bytes() != b.read_bytes() for a, b in zip(sorted(reseeded.glob("*.png")), pngs))
    # the default caption names the style
    assert (reseeded / "000-tree.txt").read_text() == "a tree in thermal style\n"


# --------------------------------------------------------------------------- the experiment sets


def captions_of(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in sorted(folder.glob("*.txt"))}


def test_experiment_sets_styleref_and_aux(tmp_path):
    sets = assets.make_experiment_sets(tmp_path)
    assert sets.style == assets.TARGET_STYLE and sets.style in HELDOUT_STYLES
    styleref, aux = captions_of(sets.styleref), captions_of(sets.aux)
    assert len(styleref) == len(list(sets.styleref.glob("*.png"))) == 16
    assert len(aux) == len(list(sets.aux.glob("*.png"))) == 16

    ref_contents = [stem.split("-", 1)[1] for stem in styleref]
    for stem, content in zip(styleref, ref_contents):
        assert styleref[stem] == f"{scenes.CONTENTS[content].caption} in [V] style"
    people = sum(content in PEOPLE for content in ref_contents)
    assert 0 < people < len(ref_contents) / 2  # people and (mostly) backgrounds
    # the StyleRef images are those contents drawn in the target style (same bytes as drawing them directly)
    direct = write_style_folder(tmp_path / "direct", [(c, sets.style) for c in ref_contents])
    assert [p.read_bytes() for p in sorted(direct.glob("*.png"))] == \
        [p.read_bytes() for p in sorted(sets.styleref.glob("*.png"))]

    aux_styles = set()
    for stem, caption in aux.items():
        content = stem.split("-", 1)[1]
        assert content in PEOPLE
        assert "[V]" not in caption
        style = caption.removeprefix(scenes.CONTENTS[content].caption + " in ").removesuffix(" style")
        assert caption == f"{scenes.CONTENTS[content].caption} in {style} style"
        assert style in NAMED_STYLES and style not in HELDOUT_STYLES
        aux_styles.add(style)
    assert len(aux_styles) > 1
    # no Aux image repeats a StyleRef image
    ref_bytes = {p.read_bytes() for p in sets.styleref.glob("*.png")}
    assert not ref_bytes & {p.read_bytes() for p in sets.aux.glob("*.png")}

    # a complete set is reused as is
    before = file_digests(tmp_path)
    again = assets.make_experiment_sets(tmp_path)
    assert (again.styleref, again.aux) == (sets.styleref, sets.aux)
    assert file_digests(tmp_path) == before


def test_experiment_sets_for_another_style_are_not_the_old_pictures(tmp_path):
    first = assets.make_experiment_sets(tmp_path, styleref_count=2, aux_count=1)
    old = [p.read_bytes() for p in sorted(first.styleref.glob("*.png"))]
    second = assets.make_experiment_sets(tmp_path, style="woodcut", styleref_count=2, aux_count=1)
    assert second.style == "woodcut"
    assert [p.read_bytes() for p in sorted(second.styleref.glob("*.png"))] != old


# --------------------------------------------------------------------------- architectures


@pytest.fixture(scope="module")
def arch():
    return archs.load_architectures()


@pytest.fixture(scope="module")
def tokenizer(arch, tmp_path_factory):
    return archs.build_tokenizer(tmp_path_factory.mktemp("tokenizer"), arch["tokenizer_max_length"])


def test_shipped_architectures_build_sd_shaped_models(arch, tokenizer):
    ids = tokenizer(["a tree in [V] style", "a person"], padding="max_length",
                    max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    assert tokenizer.model_max_length == arch["tokenizer_max_length"] == 32
    assert ids.shape == (2, 32)
    assert ids[1, 0] == tokenizer.bos_token_id and (ids[1] == tokenizer.eos_token_id).any()
    torch.manual_seed(0)
    vae = archs.build_vae(arch, 64).eval()
    text_encoder = archs.build_text_encoder(arch, tokenizer).eval()
    assert text_encoder.config.vocab_size == len(tokenizer)
    with torch.no_grad():
        latents = vae.encode(torch.zeros(2, 3, 64, 64)).latent_dist.mean
        assert latents.shape == (2, 4, 16, 16)
        assert vae.decode(latents).sample.shape == (2, 3, 64, 64)
        states = text_encoder(ids)[0]
        assert states.shape == (2, 32, arch["text_encoder"]["hidden_size"])
        unet = archs.build_unet(arch, 16, latents.shape[1], states.shape[-1]).eval()
        assert unet(torch.randn(2, 4, 16, 16), torch.tensor([10, 900]), states).sample.shape == (2, 4, 16, 16)


def test_architecture_file_errors_are_one_line(arch, tmp_path):
    partial = {k: v for k, v in arch.items() if k not in ("clip", "unet")}
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump(partial))
    with pytest.raises(StyleBoostError) as err:
        archs.load_architectures(path)
    message = single_line(str(err.value))
    assert str(path) in message and "clip, unet" in message and "vae" not in message
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(StyleBoostError, match="expected a mapping"):
        archs.load_architectures(empty)
    with pytest.raises(StyleBoostError, match="not found: .*absent.yaml"):
        archs.load_architectures(tmp_path / "absent.yaml")
    # a complete copy loads to the same dict
    full = tmp_path / "full.yaml"
    full.write_text(yaml.safe_dump(arch))
    assert archs.load_architectures(full) == arch


def test_architecture_file_that_is_not_yaml_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vae: [\n")
    with pytest.raises(StyleBoostError, match="bad.yaml"):
        archs.load_architectures(bad)


def test_style_encoder_config_file_and_unknown_base(arch, tmp_path):
    path = archs.style_encoder_config_file(arch, tmp_path)
    written = json.loads(path.read_text())
    assert written["image_size"] == arch["style_encoder"]["image_size"]
    assert written["name"] == f"toyworld-{arch['style_encoder']['base']}"
    bad = {**arch, "style_encoder": {**arch["style_encoder"], "base": "no-such-base"}}
    with pytest.raises(StyleBoostError, match="style_encoder.base 'no-such-base'"):
        archs.style_encoder_config_file(bad, tmp_path)


# --------------------------------------------------------------------------- pre-training helpers


def test_caption_table_puts_empty_first_and_maps_back():
    captions = ["a tree", "a house in pencil style", "a tree", "", "an animal", "a house in pencil style"]
    distinct, index = pretrain.caption_table(captions)
    assert distinct[0] == "" and len(distinct) == len(set(distinct)) == 4
    assert [distinct[k] for k in index.tolist()] == captions
    distinct, index = pretrain.caption_table(["b", "a", "b"])
    assert distinct == ["", "a", "b"] and index.tolist() == [2, 1, 2]  # '' is there even when unused


def test_distinct_caption_batches_never_repeat_a_caption():
    generator = torch.Generator().manual_seed(0)
    caption_index = torch.randint(1, 9, (200,), generator=generator)  # 8 captions; index 0 ('') has no rows
    caption_index[caption_index == 5] = 6  # and a gap: caption 5 has no rows either
    present = set(caption_index.tolist())
    seen = set()
    for _ in range(20):
        rows = pretrain.distinct_caption_batches(caption_index, 4, generator)
        picked = caption_index[rows].tolist()
        assert len(rows) == 4 and len(set(picked)) == 4 and set(picked) <= present
        seen.update(rows.tolist())
    assert len(seen) > 40  # rows are drawn within the caption groups, not always the first one
    everything = pretrain.distinct_caption_batches(caption_index, 64, generator)
    assert sorted(caption_index[everything].tolist()) == sorted(present)  # at most one per caption
    a = pretrain.distinct_caption_batches(caption_index, 4, torch.Generator().manual_seed(3))
    b = pretrain.distinct_caption_batches(caption_index, 4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_random_crops_are_windows_of_their_image():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    crops = pretrain.random_crops(images, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 3, 4, 4)
    for image, crop in zip(images, crops):
        windows = [image[:, t:t + 4, s:s + 4] for t in range(5) for s in range(5)]
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(-1)) for w in windows)


# --------------------------------------------------------------------------- the entry point


@pytest.fixture(scope="module")
def script():
    return load_entry_point("pretrain_toyworld")


@pytest.mark.parametrize("flags, named", [
    (["--size", "60"], "--size 60"),
    (["--vae_crop", "12"], "--vae_crop 12"),
    (["--unet_steps", "0"], "--unet_steps"),
    (["--unet_tune_steps", "0"], "--rare_token_share"),  # rare tokens are the third phase's: it cannot apply
    (["--rare_token_share", "1.5"], "--rare_token_share 1.5"),
])
def test_bad_settings_are_one_line_and_write_nothing(script, tmp_path, capsys, flags, named):
    out = tmp_path / "out"
    assert script.main(["--output_dir", str(out), *flags]) == 2
    assert named in single_line(capsys.readouterr().err)
    assert not out.exists()


TINY_RUN = ["--world_samples", "200", "--vae_steps", "3", "--unet_steps", "3", "--unet_extra_steps", "2",
            "--unet_tune_steps", "2", "--clip_steps", "3",
            "--encoder_steps", "4", "--encoder_contents", "20", "--quality_images", "1", "--quality_steps", "2",
            "--vae_batch_size", "8", "--unet_batch_size", "8", "--clip_batch_size", "16",
            "--workers", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def pretrained(script, tmp_path_factory):
    """One tiny pre-training run through the script (about 25 s on a CPU core); (output folder, stdout)."""
    from contextlib import redirect_stdout
    from io import StringIO

    out = tmp_path_factory.mktemp("toyworld") / "run"
    log = StringIO()
    before = torch.get_num_threads()
    try:
        with redirect_stdout(log):
            code = script.main(["--output_dir", str(out), *TINY_RUN])
    finally:
        torch.set_num_threads(before)
    assert code == 0, log.getvalue()[-2000:]
    return out, log.getvalue()


def test_pretrain_summary_records_stages_and_quality(pretrained):
    out, log = pretrained
    assert f"models in {out}" in log
    summary = json.loads((out / pretrain.SUMMARY_FILE).read_text())
    assert set(summary["stages"]) == {"world", "vae", "encode", "denoiser", "denoiser_extra", "denoiser_tune", "clip",
                                      "style_encoder", "quality"}
    assert all(seconds >= 0 for seconds in summary["stages"].values())
    assert summary["config"]["world_samples"] == 200 and summary["world"]["samples"] == 200
    assert summary["architectures"] == archs.load_architectures()
    assert all(summary["megabytes"][name] > 0 for name in ("pipeline", "clip", "style_encoder"))
    quality = summary["quality"]
    tables = [quality["content_zero_shot_generated"], quality["content_zero_shot_real"],
              quality["named_style_nearest_centroid"]]
    for table in tables:
        for value in (table["accuracy"], table["chance"], *table["per_class"].values()):
            assert 0.0 <= value <= 1.0
    class_captions = [scenes.CONTENTS[c].caption for c in scenes.CLASSES]
    assert list(quality["content_zero_shot_generated"]["per_class"]) == class_captions
    assert quality["content_zero_shot_generated"]["chance"] == round(1 / len(scenes.CLASSES), 3)
    assert list(quality["named_style_nearest_centroid"]["per_class"]) == list(NAMED_STYLES)
    clean = quality["cleanliness"]
    assert all(0.0 <= clean[k] <= 1.0 for k in ("content_clean", "styled_clean", "overall_clean"))
    assert set(clean["per_style_clean"]) == set(NAMED_STYLES) and clean["content_kid_x1e3"] is not None
    token = quality["rare_token"]
    assert token["token"] == "sks" and all(token[f"{judge}_{scale}_distance"] >= 0 for judge in ("style", "clip")
                                           for scale in ("token", "seed", "named_style"))
    assert quality["named_style_nearest_centroid"]["chance"] == round(1 / (1 + len(NAMED_STYLES)), 3)
    # the grids show what was judged: one column per image, one row per class / named style, at 2x
    with Image.open(out / "samples" / "contents.png") as grid:
        assert grid.size == (128, 128 * len(scenes.CLASSES))
    with Image.open(out / "samples" / "styles.png") as grid:
        assert grid.size == (128, 128 * len(NAMED_STYLES))
    # the world on disk is the world the seed draws
    world = np.load(out / "work" / "world.npz")
    first = render_world(WorldConfig(samples=3), workers=1)
    assert [str(c) for c in world["captions"][:3]] == [s.caption for s in first]
    assert world["pixels"][:3].tobytes() == np.stack([s.pixels for s in first]).tobytes()
    # the latent cache is safetensors (never a pickle read back with torch.load): mean and log-variance per image
    from safetensors.torch import load_file

    latents = load_file(str(out / "work" / "latents.safetensors"))["latents"]
    assert latents.shape[0] == len(world["captions"]) and latents.shape[1] == 8


def test_pretrained_pipeline_is_fp32_diffusers_with_unit_latents(pretrained):
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    out, _ = pretrained
    for part in ("unet", "vae", "text_encoder"):
        files = list((out / "pipeline" / part).glob("*.safetensors"))
        assert len(files) == 1, part
        with safe_open(str(files[0]), framework="pt") as weights:
            dtypes = {weights.get_slice(key).get_dtype() for key in weights.keys()}
        assert dtypes == {"F32"}, (part, dtypes)
    pipe = StableDiffusionPipeline.from_pretrained(out / "pipeline")  # default arguments: one dtype throughout
    assert pipe.tokenizer.model_max_length == 32 and pipe.safety_checker is None
    assert pipe.unet.config.sample_size == 16 and pipe.vae.config.latent_channels == 4
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"
    # scaling_factor is 1/std of the world's latents (measured on all 200 images)
    pixels = np.load(out / "work" / "world.npz")["pixels"]
    with torch.no_grad():
        latents = pipe.vae.encode(pretrain.to_unit_range(pixels)).latent_dist.mean
    assert float(latents.std() * pipe.vae.config.scaling_factor) == pytest.approx(1.0, abs=0.05)
    pipe.set_progress_bar_config(disable=True)
    # the SDE solver it ships with draws its fresh noise from the generator: a seed is still one image
    assert pipe.scheduler.config.algorithm_type == "sde-dpmsolver++"

    def draw(seed: int) -> np.ndarray:
        return pipe("a tree in pencil style", num_inference_steps=3, guidance_scale=4.0, output_type="np",
                    generator=torch.Generator().manual_seed(seed)).images[0]

    image = draw(0)
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
    np.testing.assert_array_equal(draw(0), image)
    assert np.abs(draw(1) - image).max() > 0.01


def test_pretrained_clip_and_style_encoder_load_as_users_load_them(pretrained):
    from styleboost.metrics.clip import load_clip
    from styleboost.style_encoder import create_style_encoder

    out, _ = pretrained
    clip = load_clip(f"local-dir:{out / 'clip'}")
    texts = clip.encode_texts(["a tree", "a house in pencil style", "a person"])
    assert texts.shape == (3, 64)
    torch.testing.assert_close(texts.norm(dim=1), torch.ones(3))
    assert not torch.allclose(texts[0], texts[1])
    pixels = np.load(out / "work" / "world.npz")["pixels"][:2]
    images = clip.encode_images(torch.from_numpy(pixels).permute(0, 3, 1, 2))
    assert images.shape == (2, 64)

    encoder = create_style_encoder(out / "style_encoder")
    assert sorted(encoder.config.class_names) == sorted([NATURAL, *NAMED_STYLES])
    examples = sorted((out / "work" / "encoder-data" / "pencil").glob("*.png"))[:2]
    vectors = encoder.embed(examples)
    assert vectors.shape == (2, encoder.embed_dim)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(2))


def test_pretrain_refuses_to_overwrite_without_the_flag(pretrained, script, capsys):
    out, _ = pretrained
    before = file_digests(out)
    capsys.readouterr()
    assert script.main(["--output_dir", str(out), *TINY_RUN]) == 2
    assert "--overwrite" in single_line(capsys.readouterr().err)
    assert file_digests(out) == before


def test_pretrain_resumes_at_the_missing_stage(pretrained, script, tmp_path, capsys):
    out, _ = pretrained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "clip")
    (copy / pretrain.SUMMARY_FILE).unlink()  # as if interrupted during the CLIP stage
    shutil.rmtree(copy / "work" / "encoder-data")  # and the style encoder's data lost: the quality bar draws it again
    kept = {name: file_digests(copy / name) for name in ("pipeline", "style_encoder", "work/vae")}
    capsys.readouterr()
    assert run_pretrain(script, copy) == 0
    log = capsys.readouterr().out
    for stage in ("world", "vae", "encode", "denoiser", "style_encoder"):
        assert f"[{stage}] already done, skipped" in log
    assert "[clip] already done" not in log
    summary = json.loads((copy / pretrain.SUMMARY_FILE).read_text())
    assert set(summary["reused_stages"]) == {"world", "vae", "encode", "denoiser", "denoiser_extra", "denoiser_tune",
                                             "style_encoder"}
    assert set(summary["stages"]) >= {"world", "vae", "encode", "denoiser", "denoiser_extra", "denoiser_tune", "clip",
                                      "style_encoder", "quality"}
    assert {name: file_digests(copy / name) for name in kept} == kept
    # the same seed and settings train the same CLIP again, and the same models judge the same
    name = "open_clip_model.safetensors"
    assert (copy / "clip" / name).read_bytes() == (out / "clip" / name).read_bytes()
    assert summary["quality"] == json.loads((out / pretrain.SUMMARY_FILE).read_text())["quality"]


def test_pretrain_resumes_at_the_rare_token_phase(pretrained, script, tmp_path, capsys):
    from diffusers import StableDiffusionPipeline

    out, _ = pretrained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / pretrain.SUMMARY_FILE).unlink()
    marker = copy / "pipeline" / pretrain.PHASES_FILE
    assert json.loads(marker.read_text()) == {"denoiser_steps": 3, "extra_steps": 2, "tune_steps": 2}
    # as an earlier release left its pipeline: two phases done, no rare-token phase
    marker.write_text(json.dumps({"denoiser_steps": 3, "extra_steps": 2}) + "\n")
    before = StableDiffusionPipeline.from_pretrained(copy / "pipeline")
    capsys.readouterr()
    assert run_pretrain(script, copy) == 0
    log = capsys.readouterr().out
    assert "[denoiser_extra] already done, skipped" in log and "[denoiser_tune] 2 steps" in log
    assert json.loads(marker.read_text()) == {"denoiser_steps": 3, "extra_steps": 2, "tune_steps": 2}
    after = StableDiffusionPipeline.from_pretrained(copy / "pipeline")
    unet_before, unet_after = before.unet.state_dict(), after.unet.state_dict()
    assert any(not torch.equal(unet_before[name], unet_after[name]) for name in unet_before)
    # the text encoder is frozen in this phase: sks keeps a representation of its own for fine-tuning to bind
    text_before, text_after = before.text_encoder.state_dict(), after.text_encoder.state_dict()
    assert all(torch.equal(text_before[name], text_after[name]) for name in text_before)


def run_pretrain(script, out: Path, *flags: str) -> int:
    before = torch.get_num_threads()
    try:
        return script.main(["--output_dir", str(out), *TINY_RUN, *flags])
    finally:
        torch.set_num_threads(before)


def test_normalise_latents_folds_a_resumed_globally_scaled_vae(pretrained, script, tmp_path, capsys):
    from diffusers import AutoencoderKL

    out, _ = pretrained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / pretrain.SUMMARY_FILE).unlink()
    # the VAE as the earlier release left it: shifted channels and one global scaling_factor
    old = AutoencoderKL.from_pretrained(copy / "work" / "vae")
    with torch.no_grad():
        old.quant_conv.bias[:4] += torch.tensor([-3.0, -3.0, 0.0, 5.0])
        old.post_quant_conv.bias -= old.post_quant_conv.weight[:, :, 0, 0] @ torch.tensor([-3.0, -3.0, 0.0, 5.0])
    old.register_to_config(scaling_factor=0.3)  # (the fixture's own VAE has one global scale too)
    old.save_pretrained(copy / "work" / "vae")
    latents_before = (copy / "work" / "latents.safetensors").read_bytes()
    capsys.readouterr()
    # its denoiser was trained on the old latents: refused, nothing touched
    def contents() -> dict[str, str]:  # the tokenizer is written anew on every start, same bytes
        return {name: digest for name, (digest, _) in file_digests(copy).items()}

    kept = contents()
    assert run_pretrain(script, copy, "--normalise_latents") == 2
    assert "predates the latent-channel fold" in single_line(capsys.readouterr().err)
    assert contents() == kept
    # interrupted before the denoiser: the VAE is folded and the latents encoded again
    shutil.rmtree(copy / "pipeline")
    assert run_pretrain(script, copy, "--normalise_latents") == 0
    assert "predates the latent-channel fold (scaling_factor 0.3)" in capsys.readouterr().out
    pipe_vae = AutoencoderKL.from_pretrained(copy / "pipeline" / "vae")
    assert pipe_vae.config.scaling_factor == 1.0
    assert (copy / "work" / "latents.safetensors").read_bytes() != latents_before
    with torch.no_grad():
        latents = pipe_vae.encode(pretrain.to_unit_range(np.load(copy / "work" / "world.npz")["pixels"])).latent_dist.mean
    torch.testing.assert_close(latents.mean((0, 2, 3)), torch.zeros(4), atol=0.05, rtol=0)


def test_latent_normalisation_leaves_decoding_unchanged(arch):
    vae = archs.build_vae(arch, 64).eval()
    images = pretrain.to_unit_range(np.stack([draw_sample(c, "pencil", 64, (0, k)).pixels
                                              for k, c in enumerate(scenes.CLASSES * 2)]))
    with torch.no_grad():
        before = vae.decode(vae.encode(images).latent_dist.mean).sample
        raw = vae.encode(images).latent_dist.mean
        pretrain.normalise_latent_channels(vae, images)
        latents = vae.encode(images).latent_dist.mean
        after = vae.decode(latents).sample
    assert raw.mean((0, 2, 3)).abs().max() > 0.01  # there was a shift to take out
    torch.testing.assert_close(latents.mean((0, 2, 3)), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(latents.std((0, 2, 3)), torch.ones(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(after, before, atol=1e-4, rtol=0)
    assert vae.config.scaling_factor == 1.0


def test_cleanliness_separates_clean_drawings_from_speckled_ones():
    from styleboost.toyworld.quality import busy_share, clean_share

    def drawings(seed: int) -> np.ndarray:
        return np.stack([draw_sample(c, NATURAL, 64, (seed, k)).pixels for k, c in enumerate(scenes.CLASSES * 3)])

    reference, clean = drawings(1), drawings(2)
    rng = np.random.default_rng(0)
    blotches = np.kron(rng.normal(0, 45, (len(clean), 16, 16, 3)), np.ones((1, 4, 4, 1)))  # latent-sized blobs
    speckled = np.clip(clean + blotches, 0, 255).astype(np.uint8)
    assert clean_share(clean, reference) >= 0.95
    assert clean_share(speckled, reference) <= 0.05
    assert busy_share(speckled).min() > busy_share(clean).max()


def test_rare_tokens_go_into_a_share_of_the_captions():
    captions = ["a house in pencil style", "a tree", ""] * 400
    marked = pretrain.with_rare_tokens(captions, 0.1, seed=0)
    assert marked == pretrain.with_rare_tokens(captions, 0.1, seed=0)
    changed = [(a, b) for a, b in zip(captions, marked) if a != b]
    assert 0.07 < len(changed) / len([c for c in captions if c]) < 0.13
    for before, after in changed:
        extra = [w for w in after.split() if w not in before.split()]
        assert len(extra) == 1 and extra[0] in pretrain.RARE_TOKENS
        assert after.split().count(extra[0]) == 1 and len(after.split()) == len(before.split()) + 1


def test_part_captions_bind_people_to_the_first_token_and_keep_the_images(tmp_path):
    sets = assets.make_experiment_sets(tmp_path / "sets", styleref_count=8, aux_count=1)
    by_part = assets.write_part_captions(sets.styleref, tmp_path / "by_part")
    captions = {p.stem.split("-", 1)[1]: p.read_text() for p in by_part.glob("*.txt")}
    assert "[V1]" in captions["portrait"] and "[V1]" in captions["person"], captions
    assert all("[V2]" in captions[c] and "[V1]" not in captions[c] for c in ("house", "landscape", "tree", "animal"))
    assert "[V]" not in "".join(captions.values())
    for image in sets.styleref.glob("*.png"):
        assert (by_part / image.name).read_bytes() == image.read_bytes()
