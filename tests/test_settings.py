"""No silent settings: a setting that cannot apply is a notice (one line on stderr) or a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch
from helpers import one_line_error

from styleboost import cli
from styleboost.core import notice as notice_module
from styleboost.generation.generate import GenerateConfig, generate_images

FAST = dict(steps=2, images_per_prompt=1, progress=False)


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    """Notices print once per process; every test here sees its own."""
    monkeypatch.setattr(notice_module, "_seen", set())


pytestmark = pytest.mark.usefixtures("one_thread")


def notices(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("styleboost: ")]


# ----------------------------------------------------------------------------- training settings


def test_report_to_wandb_without_wandb_falls_back_to_no_tracker_with_a_notice(tmp_path, capsys, monkeypatch):
    from styleboost.training.accelerator import make_accelerator

    monkeypatch.setitem(sys.modules, "wandb", None)  # importlib.util.find_spec("wandb") -> None: not installed
    accelerator = make_accelerator(tmp_path, None, "wandb")
    assert notices(capsys) == ["styleboost: wandb is not installed; logging to no tracker (pip install wandb)"]
    assert accelerator.log_with == []


def test_train_text_encoder_with_textual_inversion_is_refused(train_main, capsys, base_args):
    line = one_line_error(train_main, capsys, base_args + ["--method", "textual_inversion", "--new_token", "<s>",
                                                           "--train_text_encoder"])
    assert "--train_text_encoder" in line and "textual_inversion" in line and "lora_ti" in line


def test_cache_latents_without_center_crop_says_crops_are_centred(train_config, capsys):
    from styleboost.training.data import ImageTransform, LatentCache

    train_config(cache_latents=True, random_flip=True)
    (line,) = notices(capsys)
    assert "--cache_latents" in line and "center crop" in line and "--center_crop" in line and "flips are kept" in line
    assert LatentCache(ImageTransform(32)).transform.center_crop  # what the notice says
    train_config(cache_latents=True, center_crop=True)
    train_config(cache_latents=False)
    assert notices(capsys) == []


@pytest.mark.parametrize("method", ["full", "textual_inversion"])
def test_export_kohya_without_a_lora_is_refused(train_main, capsys, base_args, method):
    line = one_line_error(train_main, capsys, base_args + ["--method", method, "--new_token", "<s>", "--export_kohya"])
    assert "--export_kohya" in line and f"--method {method}" in line


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_checkpoints_total_limit_below_one_is_refused(train_main, capsys, base_args, limit):
    line = one_line_error(train_main, capsys, base_args + ["--checkpoints_total_limit", limit])
    assert f"--checkpoints_total_limit {limit}" in line and "at least 1" in line


def test_learning_rates_of_parts_a_method_does_not_train_get_a_notice(train_config, capsys):
    train_config(method="lora", embedding_lr=1e-2)
    train_config(method="textual_inversion", new_token=["<s>"], text_encoder_lr=1e-2)
    first, second = notices(capsys)
    assert "--embedding_lr is unused" in first and "--method lora" in first
    assert "--text_encoder_lr is unused" in second and "--embedding_lr" in second
    train_config(method="lora_ti", new_token=["<s>"], embedding_lr=1e-2, train_text_encoder=True, text_encoder_lr=1e-4)
    assert notices(capsys) == []


def test_pivotal_tuning_token_embeddings_have_their_own_learning_rate(train_config):
    from styleboost.training.loop import build_run

    run = build_run(train_config(method="lora_ti", new_token=["<s>"], embedding_lr=0.05, train_text_encoder=True,
                                 text_encoder_lr=2e-4))
    embeddings = run.models.text_encoder.get_input_embeddings().weight
    lrs = {}
    for group in run.optimizer.param_groups:
        is_embeddings = any(p is embeddings for p in group["params"])
        lrs["embeddings" if is_embeddings else f"group {len(lrs)}"] = group["lr"]
    assert lrs.pop("embeddings") == 0.05
    assert sorted(lrs.values()) == [2e-4, 1e-3]  # text-encoder LoRA, UNet LoRA (--learning_rate)
    run.accelerator.end_training()


def test_embedding_lr_defaults_to_the_learning_rate(train_config):
    from styleboost.training.loop import load_models
    from styleboost.training.methods import build_method

    cfg = train_config(method="textual_inversion", new_token=["<s>"], learning_rate=3e-3)
    models, _ = load_models(cfg)
    method = build_method(cfg)
    method.apply(models)
    (group,) = method.param_groups(models, cfg, lr=6e-3)  # the (scaled) learning rate build_run passes
    assert group["lr"] == 6e-3 and group["weight_decay"] == 0.0


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_fp16_on_cpu_says_autocast_is_off(tmp_path, capsys):
    from styleboost.evaluation.config import EvaluateConfig
    from styleboost.evaluation.evaluate import evaluate
    from styleboost.testing import tiny_eval_models, write_styled_run, write_styleref

    write_styleref(tmp_path / "styleref", "woodcut", count=3, size=64)
    write_styled_run(tmp_path / "run", "woodcut", {"people": ["a woman in [V] style"]}, images_per_prompt=2, size=64)
    config = EvaluateConfig(runs=[f"a={tmp_path / 'run'}"], styleref=str(tmp_path / "styleref"), out=str(tmp_path / "r"),
                            metrics=["style"], image_size=64, workers=0, cache_dir="none", progress=False,
                            device="cpu", fp16=True)
    report = evaluate(config, tiny_eval_models())
    assert "styleboost: --fp16 autocast needs a CUDA device; scoring in fp32 on cpu" in notices(capsys)
    assert report["settings"]["fp16"] is False


# ----------------------------------------------------------------------------- generate re-runs


@pytest.fixture
def prompt_file(tmp_path) -> str:
    path = tmp_path / "people.txt"
    path.write_text("a portrait of a woman in [V] style\n")
    return str(path)


def save_random_lora(tiny_model_dir: str, folder: Path, seed: int) -> Path:
    """A random non-zero LoRA on the tiny UNet, saved the way training saves it."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    unet.add_adapter(LoraConfig(r=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights="gaussian"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=layers)
    return folder / "pytorch_lora_weights.safetensors"


def generate_cli(model: str, prompts: str, out: Path, *extra: str) -> list[str]:
    return ["generate", "--model", model, "--prompts", prompts, "--out", str(out), "--images-per-prompt", "1",
            "--steps", "2", "--no-progress", *extra]


def refusal(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("styleboost: error:")]
    assert len(lines) == 1 and "--overwrite" in lines[0] and "Traceback" not in err, err
    return lines[0]


def test_rerun_with_the_same_settings_skips_without_loading_the_model(tiny_model_dir, prompt_file, tmp_path,
                                                                      monkeypatch):
    import styleboost.generation.generate as generate

    config = GenerateConfig(model=tiny_model_dir, prompts=[prompt_file], out=str(tmp_path), **FAST)
    (record,) = generate_images(config)
    assert record["scheduler"] == "PNDMScheduler"  # the model's own, known before loading it
    os.utime(tmp_path / record["file"], ns=(1, 1))

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded although every image was done")

    monkeypatch.setattr(generate, "load_generation_pipeline", no_loading)
    assert generate_images(config) == [record]
    assert (tmp_path / record["file"]).stat().st_mtime_ns == 1
    assert json.loads((tmp_path / "runs.jsonl").read_text().splitlines()[-1])["skipped"] == 1


def test_rerun_with_another_scheduler_is_refused(tiny_model_dir, prompt_file, tmp_path, capsys):
    assert cli.main(generate_cli(tiny_model_dir, prompt_file, tmp_path)) == 0
    err = refusal(capsys, generate_cli(tiny_model_dir, prompt_file, tmp_path, "--scheduler", "euler"))
    assert "scheduler='PNDMScheduler'" in err and "'euler'" in err


def test_rerun_of_a_scheduler_run_with_the_model_default_is_refused(tiny_model_dir, prompt_file, tmp_path, capsys):
    assert cli.main(generate_cli(tiny_model_dir, prompt_file, tmp_path, "--scheduler", "euler")) == 0
    err = refusal(capsys, generate_cli(tiny_model_dir, prompt_file, tmp_path))
    assert "scheduler='euler'" in err and "'PNDMScheduler'" in err


def test_rerun_with_a_model_whose_scheduler_is_only_known_once_loaded(tiny_model_dir, prompt_file, tmp_path, capsys,
                                                                    monkeypatch):
    import styleboost.generation.generate as generate

    assert cli.main(generate_cli(tiny_model_dir, prompt_file, tmp_path, "--scheduler", "euler")) == 0
    known = generate.scheduler_name

    def unknown_before_loading(config, pipe=None):  # as for a checkpoint file or a hub id
        return known(config, pipe) if config.scheduler or pipe is not None else None

    monkeypatch.setattr(generate, "scheduler_name", unknown_before_loading)
    err = refusal(capsys, generate_cli(tiny_model_dir, prompt_file, tmp_path))
    assert "scheduler='euler'" in err and "'PNDMScheduler'" in err


def test_rerun_with_a_replaced_lora_file_at_the_same_path_is_refused(tiny_model_dir, prompt_file, tmp_path, capsys):
    lora = tmp_path / "lora"
    first = save_random_lora(tiny_model_dir, lora, seed=1)
    argv = generate_cli(tiny_model_dir, prompt_file, tmp_path / "out", "--lora", str(lora))
    assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main(argv) == 0  # the same file: skipped
    assert "1 images" in capsys.readouterr().out
    shutil.copy(save_random_lora(tiny_model_dir, tmp_path / "retrained", seed=2), first)  # retrained, same path
    err = refusal(capsys, argv)
    assert "lora_sha256=" in err


def test_rerun_with_replaced_embeddings_is_refused(tiny_model_dir, tmp_path, capsys):
    from safetensors.torch import save_file

    prompts = tmp_path / "style.txt"
    prompts.write_text("a cat in [V] style\n")
    embeddings = tmp_path / "emb" / "learned_embeds.safetensors"
    embeddings.parent.mkdir()
    save_file({"<my-style>": torch.full((32,), 0.5)}, str(embeddings))
    argv = generate_cli(tiny_model_dir, str(prompts), tmp_path / "out", "--embeddings", str(embeddings.parent))
    assert cli.main(argv) == 0
    save_file({"<my-style>": torch.full((32,), -0.5)}, str(embeddings))
    err = refusal(capsys, argv)
    assert "embeddings_sha256=" in err


# ----------------------------------------------------------------------------- warnings


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning])
def test_deprecation_warnings_attributed_to_styleboost_fail_the_tests(category):
    """pyproject's filterwarnings: a warning whose stacklevel points into a styleboost module is an error,
    one inside a third-party module stays ignored."""
    code = compile(f"import warnings\nwarnings.warn('old API', {category.__name__}, stacklevel=1)\n", "x.py", "exec")
    with pytest.raises(category, match="old API"):
        exec(code, {"__name__": "styleboost.some_module"})
    with warnings.catch_warnings(record=True) as caught:  # pytest shows deprecations by default: not these
        exec(code, {"__name__": "diffusers.some_module"})
    assert caught == []
