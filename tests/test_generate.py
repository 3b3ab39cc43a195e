"""styleboost.generation.generate against the tiny pipeline: files, seeds, re-runs, LoRA, embeddings, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleboost import cli
from styleboost.generation.generate import GenerateConfig, generate_images
from styleboost.sd.prompts import read_prompt_file

FAST = dict(steps=2, guidance=7.5, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("prompts") / "people.txt"
    path.write_text("# test prompts\n\na portrait of a woman in [V] style\n   \n# another comment\na dog\n")
    return str(path)


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, tmp_path_factory) -> str:
    """A random (non-zero) LoRA on the tiny UNet, saved the way training saves it."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"))
    torch.manual_seed(1)
    with torch.no_grad():  # "gaussian" init leaves lora_B at zero: make the LoRA do something
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("lora")
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers)
    return str(folder)


def _config(model: str, prompts: str, out: Path, **kw) -> GenerateConfig:
    return GenerateConfig(model=model, prompts=[prompts], out=str(out), **{**FAST, **kw})


def _pixels(out: Path, record: dict) -> np.ndarray:
    return np.asarray(Image.open(out / record["file"]), dtype=np.int16)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_read_prompt_file_skips_blank_and_comment_lines(prompt_file):
    assert read_prompt_file(prompt_file) == ["a portrait of a woman in [V] style", "a dog"]


def test_writes_images_metadata_and_grids(tiny_model_dir, prompt_file, tmp_path):
    records = generate_images(_config(tiny_model_dir, prompt_file, tmp_path, images_per_prompt=3, seed=5))
    assert [r["file"] for r in records[:3]] == [f"images/people/p000_s{s}.png" for s in (5, 6, 7)]
    assert len(list((tmp_path / "images" / "people").glob("*.png"))) == 6
    assert sorted(p.name for p in (tmp_path / "grids" / "people").iterdir()) == ["p000.png", "p001.png"]
    assert Image.open(tmp_path / "grids" / "people" / "p000.png").size == (96, 32)
    meta = _lines(tmp_path / "metadata.jsonl")
    assert meta == records
    first = meta[0]
    assert first["prompt"] == "a portrait of a woman in sks style"
    assert first["prompt_template"] == "a portrait of a woman in [V] style"
    assert (first["prompt_set"], first["prompt_index"], first["height"], first["width"]) == ("people", 0, 32, 32)
    assert (first["steps"], first["scheduler"], first["lora"]) == (2, "PNDMScheduler", None)
    image = Image.open(tmp_path / first["file"])
    assert image.size == (32, 32)
    assert image.text["prompt"] == "a portrait of a woman in sks style"
    assert image.text["seed"] == "5"
    assert json.loads(image.text["styleboost"]) == first


def test_batch_size_does_not_change_images(tiny_model_dir, prompt_file, tmp_path):
    one = generate_images(_config(tiny_model_dir, prompt_file, tmp_path / "b1", images_per_prompt=3, batch_size=1))
    two = generate_images(_config(tiny_model_dir, prompt_file, tmp_path / "b2", images_per_prompt=3, batch_size=2))
    for a, b in zip(one, two):
        diff = np.abs(_pixels(tmp_path / "b1", a) - _pixels(tmp_path / "b2", b))
        # Same noise per seed; batched float maths may round a rare pixel to the next level.
        assert diff.max() <= 1 and (diff == 0).mean() > 0.99, a["file"]
    seeds_differ = np.abs(_pixels(tmp_path / "b1", one[0]) - _pixels(tmp_path / "b1", one[1]))
    assert seeds_differ.mean() > 5


def test_rerun_skips_and_overwrite_regenerates(tiny_model_dir, prompt_file, tmp_path):
    config = _config(tiny_model_dir, prompt_file, tmp_path, images_per_prompt=2)
    records = generate_images(config)
    files = [tmp_path / r["file"] for r in records]
    for f in files:
        os.utime(f, ns=(1, 1))
    assert generate_images(config) == records
    assert [f.stat().st_mtime_ns for f in files] == [1] * 4
    assert len(_lines(tmp_path / "metadata.jsonl")) == 4

    (tmp_path / "metadata.jsonl").unlink()  # lost metadata is rebuilt from the PNG text, nothing redrawn
    generate_images(config)
    assert _lines(tmp_path / "metadata.jsonl") == records
    assert [f.stat().st_mtime_ns for f in files] == [1] * 4

    config.overwrite = True
    assert generate_images(config) == records
    assert all(f.stat().st_mtime_ns > 1 for f in files)
    assert len(_lines(tmp_path / "metadata.jsonl")) == 4
    assert len(_lines(tmp_path / "runs.jsonl")) == 4


def test_rerun_with_other_settings_is_refused(tiny_model_dir, prompt_file, tmp_path, capsys):
    generate_images(_config(tiny_model_dir, prompt_file, tmp_path, images_per_prompt=1))
    argv = ["generate", "--model", tiny_model_dir, "--prompts", prompt_file, "--out", str(tmp_path),
            "--images-per-prompt", "1", "--steps", "3", "--no-progress"]
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "steps=2" in err and "--overwrite" in err and len(err.splitlines()) == 1


def test_token_fills_placeholder_and_scheduler_choice(tiny_model_dir, prompt_file, tmp_path, capsys):
    argv = ["generate", "--model", tiny_model_dir, "--prompts", prompt_file, "--out", str(tmp_path),
            "--images-per-prompt", "1", "--steps", "2", "--token", "zwx", "--scheduler", "euler_a",
            "--negative-prompt", "blurry, [V]", "--no-progress"]
    assert cli.main(argv) == 0
    first = _lines(tmp_path / "metadata.jsonl")[0]
    assert first["prompt"] == "a portrait of a woman in zwx style"
    assert first["negative_prompt"] == "blurry, zwx"
    assert first["scheduler"] == "euler_a"
    assert "2 images" in capsys.readouterr().out


def test_set_token_picks_the_token_a_prompt_file_draws_with(tiny_model_dir, prompt_file, tmp_path):
    """A run with a token per part of the style (Multi-StyleForge): people prompts with one, the rest with the other."""
    other = tmp_path / "non_people.txt"
    other.write_text("a house in [V] style\na tree in [V1] and [V2] style\n")
    config = GenerateConfig(model=tiny_model_dir, prompts=[prompt_file, str(other)], out=str(tmp_path / "out"),
                            tokens=["sks", "ohwx"], set_tokens=["non_people=2"], images_per_prompt=1, **FAST)
    prompts = [r["prompt"] for r in generate_images(config)]
    assert prompts == ["a portrait of a woman in sks style", "a dog", "a house in ohwx style",
                       "a tree in sks and ohwx style"]
    assert _lines(tmp_path / "out" / "runs.jsonl")[0]["seconds_per_image"] > 0


def test_lora_changes_images_and_scale_zero_is_the_base_model(tiny_model_dir, prompt_file, lora_dir, tmp_path):
    base = generate_images(_config(tiny_model_dir, prompt_file, tmp_path / "base", images_per_prompt=1))
    lora = generate_images(_config(tiny_model_dir, prompt_file, tmp_path / "lora", images_per_prompt=1, lora=lora_dir))
    zero = generate_images(
        _config(tiny_model_dir, prompt_file, tmp_path / "zero", images_per_prompt=1, lora=lora_dir, lora_scale=0.0)
    )
    assert lora[0]["lora"] == str(Path(lora_dir).resolve()) and lora[0]["lora_scale"] == 1.0
    assert np.abs(_pixels(tmp_path / "base", base[0]) - _pixels(tmp_path / "lora", lora[0])).mean() > 1
    for b, z in zip(base, zero):
        assert np.array_equal(_pixels(tmp_path / "base", b), _pixels(tmp_path / "zero", z))


def test_lora_run_json_gives_the_token(tiny_model_dir, prompt_file, lora_dir, tmp_path):
    (tmp_path / "lora").mkdir()
    for name in ("pytorch_lora_weights.safetensors",):
        (tmp_path / "lora" / name).write_bytes((Path(lora_dir) / name).read_bytes())
    (tmp_path / "lora" / "run.json").write_text(json.dumps({"tokens": ["ohwx"]}))
    records = generate_images(
        _config(tiny_model_dir, prompt_file, tmp_path / "out", images_per_prompt=1, lora=str(tmp_path / "lora"))
    )
    assert records[0]["prompt"] == "a portrait of a woman in ohwx style"


def test_full_model_run_json_gives_the_token(tiny_model_dir, prompt_file, tmp_path):
    import shutil

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model / "run.json").write_text(json.dumps({"tokens": ["<v1>", "<v2>"], "config": {"token": ["sks"]}}))
    records = generate_images(_config(str(model), prompt_file, tmp_path / "out", images_per_prompt=1))
    assert records[0]["prompt"] == "a portrait of a woman in <v1> style"


def test_learned_embeddings_load_and_change_the_image(tiny_model_dir, tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "emb").mkdir()
    torch.manual_seed(3)
    save_file({"<my-style>": torch.randn(32) * 3}, str(tmp_path / "emb" / "learned_embeds.safetensors"))
    prompts = tmp_path / "style.txt"
    prompts.write_text("a cat in [V] style\n")
    plain = generate_images(_config(tiny_model_dir, str(prompts), tmp_path / "plain", images_per_prompt=1,
                                    tokens=["<my-style>"]))
    learned = generate_images(_config(tiny_model_dir, str(prompts), tmp_path / "learned", images_per_prompt=1,
                                      embeddings=str(tmp_path / "emb")))
    assert learned[0]["prompt"] == plain[0]["prompt"] == "a cat in <my-style> style"
    assert learned[0]["embeddings"].endswith("learned_embeds.safetensors")
    diff = np.abs(_pixels(tmp_path / "plain", plain[0]) - _pixels(tmp_path / "learned", learned[0]))
    assert diff.mean() > 1


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_prompts", "prompt file not found"),
        ("empty_prompts", "has no prompts"),
        ("missing_lora", "--lora folder not found"),
        ("lora_without_weights", "has no pytorch_lora_weights.safetensors"),
        ("zero_images", "--images-per-prompt must be at least 1"),
        ("odd_height", "--height 30 is not a positive multiple of 8"),
        ("odd_width", "--width 36 is not a positive multiple of 8"),
        ("pickle_embeddings", "is a pickle file"),
        ("set_token_without_number", "--set-token 'people': write SET=N"),
        ("set_token_of_no_prompt_file", "--set-token pets=...: no prompt file is named 'pets'"),
    ],
)
def test_bad_input_is_one_line(case, expected, tiny_model_dir, prompt_file, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("# nothing here\n\n")
    (tmp_path / "lora").mkdir()
    (tmp_path / "embeds.bin").write_bytes(b"\x80")
    extra = {
        "missing_prompts": ["--prompts", str(tmp_path / "nope.txt")],
        "empty_prompts": ["--prompts", str(tmp_path / "empty.txt")],
        "missing_lora": ["--lora", str(tmp_path / "no-lora")],
        "lora_without_weights": ["--lora", str(tmp_path / "lora")],
        "zero_images": ["--images-per-prompt", "0"],
        "odd_height": ["--height", "30"],
        "odd_width": ["--width", "36"],
        "pickle_embeddings": ["--embeddings", str(tmp_path / "embeds.bin")],
        "set_token_without_number": ["--set-token", "people"],
        "set_token_of_no_prompt_file": ["--set-token", "pets=2"],
    }[case]
    argv = ["generate", "--model", tiny_model_dir, "--prompts", prompt_file, "--out", str(tmp_path / "out")]
    assert cli.main(argv + extra) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- prompt files as users write them

LONG = ", ".join(["a red house by the sea"] * 14)  # 84 words, over the text encoder's 77 tokens


def test_a_prompt_file_that_is_not_utf8_is_one_line_naming_it(tiny_model_dir, tmp_path, capsys):
    prompts = tmp_path / "caf\u00e9s.txt"
    prompts.write_bytes("# mes prompts\nun caf\u00e9 in [V] style\n".encode("latin-1"))
    argv = ["generate", "--model", tiny_model_dir, "--prompts", str(prompts), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"prompt file {prompts} is not UTF-8 text (byte 0xe9 at offset 20, line 2); save it as UTF-8" in err
    assert not (tmp_path / "out").exists()


def test_a_long_prompt_that_would_lose_its_token_is_refused(tiny_model_dir, tmp_path, capsys):
    prompts = tmp_path / "long.txt"
    prompts.write_text(f"a dog\n# the long one\n{LONG}, in [V] style\n")
    argv = ["generate", "--model", tiny_model_dir, "--prompts", str(prompts), "--out", str(tmp_path / "out"),
            "--steps", "2", "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len([line for line in err.splitlines() if "styleboost" in line]) == 1
    assert (f"styleboost: error: {prompts} line 3: 'a red house by the sea, ...' has 103 tokens (start and end "
            "included), over the 77") in err
    assert "its token 'sks' would be cut off" in err
    assert not (tmp_path / "out").exists()


def test_a_long_prompt_is_drawn_cut_with_one_notice_and_recorded_as_drawn(tiny_model_dir, tmp_path, capfd,
                                                                          monkeypatch):
    from transformers import CLIPTokenizer

    from styleboost.generation import generate

    prompts = tmp_path / "long.txt"
    prompts.write_text(f"[V] style, {LONG}\n")
    given: list[str] = []

    def spy(pipe, prompt_list, seeds, **kwargs):
        given.extend(prompt_list)
        return draw(pipe, prompt_list, seeds, **kwargs)

    draw = generate.draw_images
    monkeypatch.setattr(generate, "draw_images", spy)
    config = _config(tiny_model_dir, str(prompts), tmp_path / "out", images_per_prompt=2)
    records = generate_images(config)
    err = capfd.readouterr().err
    notices = [line for line in err.splitlines() if "tokens (start and end included)" in line]
    assert len(notices) == 1 and notices[0].startswith(f"styleboost: {prompts} line 1: 'sks style, a red house by")
    assert "it is cut after '... house by the sea, a red'" in notices[0]
    assert "truncated" not in err and "Token indices sequence length" not in err  # no warning of diffusers' own

    written = f"sks style, {LONG}"
    tokenizer = CLIPTokenizer.from_pretrained(tiny_model_dir, subfolder="tokenizer")
    for record in records + _lines(tmp_path / "out" / "metadata.jsonl"):
        assert record["prompt_as_written"] == written and record["prompt_template"] == f"[V] style, {LONG}"
        assert written.startswith(record["prompt"] + " ") and len(tokenizer(record["prompt"]).input_ids) <= 77
    assert given == [records[0]["prompt"]] * 2
    assert Image.open(tmp_path / "out" / records[0]["file"]).text["prompt"] == records[0]["prompt"]

    assert generate_images(config) == records  # a rerun counts them as done
    assert given == [records[0]["prompt"]] * 2


@pytest.mark.parametrize("name, algorithm, karras", [
    ("dpmpp_2m", "dpmsolver++", False), ("dpmpp_2m_karras", "dpmsolver++", True),
    ("dpmpp_2m_sde", "sde-dpmsolver++", False)])
def test_a_named_dpm_solver_is_that_solver_whatever_the_model_ships(name, algorithm, karras):
    from types import SimpleNamespace

    from diffusers import DPMSolverMultistepScheduler

    from styleboost.generation.pipeline import set_scheduler

    shipped = DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", use_karras_sigmas=True)
    pipe = SimpleNamespace(scheduler=shipped)
    set_scheduler(pipe, name)
    assert pipe.scheduler.config.algorithm_type == algorithm
    assert pipe.scheduler.config.use_karras_sigmas is karras
    assert pipe.scheduler.config.beta_schedule == shipped.config.beta_schedule
