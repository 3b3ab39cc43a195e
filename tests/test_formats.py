"""Formats other tools read: original-layout single-file checkpoints, kohya/webui LoRA, webui embeddings.

Every file is read back the way its other tool (or plain diffusers) reads it, and must give the same image.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import two_token_settings
from helpers import load_base, render
from safetensors import safe_open
from safetensors.torch import load_file

from styleboost.core.errors import StyleBoostError
from styleboost.sd.loading import load_pipeline
from styleboost.testing import save_original_checkpoint
from styleboost.training.loop import train
from styleboost.training.validation import inference_pipeline

PROMPT = "a portrait of a person in sks style"
KOHYA = "pytorch_lora_weights_kohya.safetensors"


@pytest.fixture(scope="module")
def original_checkpoint(tiny_model_dir, tmp_path_factory) -> Path:
    return save_original_checkpoint(tiny_model_dir, tmp_path_factory.mktemp("single") / "tiny-sd-original.safetensors")


def test_original_layout_checkpoint_loads_in_plain_diffusers_and_in_the_trainer(original_checkpoint, tiny_model_dir):
    import torch
    from diffusers import StableDiffusionPipeline

    keys = load_file(str(original_checkpoint))
    prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")
    assert all(k.startswith(prefixes) for k in keys) and {p for p in prefixes if any(k.startswith(p) for k in keys)} \
        == set(prefixes)
    assert keys["first_stage_model.decoder.mid.attn_1.q.weight"].ndim == 4  # the VAE attention as a 1x1 conv
    assert "model.diffusion_model.input_blocks.1.0.in_layers.0.weight" in keys

    expected = render(StableDiffusionPipeline.from_pretrained(tiny_model_dir), PROMPT)
    plain = StableDiffusionPipeline.from_single_file(str(original_checkpoint), config=tiny_model_dir)
    np.testing.assert_array_equal(render(plain, PROMPT), expected)

    with warnings.catch_warnings():  # diffusers >= 0.40 deprecates torch_dtype=: the loader must not use it
        warnings.simplefilter("error", FutureWarning)
        ours = load_pipeline(str(original_checkpoint), torch_dtype=torch.float32, single_file_config=tiny_model_dir)
        folder = load_pipeline(tiny_model_dir, torch_dtype=torch.float32)
    np.testing.assert_array_equal(render(ours, PROMPT), expected)
    np.testing.assert_array_equal(render(folder, PROMPT), expected)


def test_single_file_offline_without_config_is_one_line_naming_the_file_and_the_flag(
    original_checkpoint, tmp_path, monkeypatch
):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(StyleBoostError) as err:
        load_pipeline(str(original_checkpoint))
    message = str(err.value)
    assert "\n" not in message and str(original_checkpoint) in message and "--single_file_config" in message
    with pytest.raises(StyleBoostError, match="--model-config"):
        load_pipeline(str(original_checkpoint), config_flag="--model-config")


def test_generate_draws_from_a_single_file_with_model_config(
    original_checkpoint, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    import huggingface_hub.constants
    from PIL import Image

    from styleboost import cli

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    prompts = tmp_path / "p.txt"
    prompts.write_text("a house in [V] style\n")
    fast = ["--prompts", str(prompts), "--steps", "2", "--images-per-prompt", "1", "--no-progress"]
    image = "images/p/p000_s0.png"

    assert cli.main(["generate", "--model", tiny_model_dir, "--out", str(tmp_path / "folder"), *fast]) == 0
    assert cli.main(["generate", "--model", str(original_checkpoint), "--model-config", tiny_model_dir,
                     "--out", str(tmp_path / "file"), *fast]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "file" / image)),
                                  np.asarray(Image.open(tmp_path / "folder" / image)))
    capsys.readouterr()
    assert cli.main(["generate", "--model", str(original_checkpoint), "--out", str(tmp_path / "none"), *fast]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model-config" in err and str(original_checkpoint) in err


@pytest.mark.parametrize("config", ["checkpoint", "missing"])
def test_single_file_config_must_be_a_pipeline_folder(original_checkpoint, tmp_path, config):
    value = str(original_checkpoint) if config == "checkpoint" else str(tmp_path / "no-such-folder")
    with pytest.raises(StyleBoostError, match="^--single_file_config") as err:
        load_pipeline(str(original_checkpoint), single_file_config=value)
    assert "\n" not in str(err.value)


def caption_tags(folder: str) -> dict[str, int]:
    """kohya's count for one folder: comma-separated, lower-cased tags of each caption file, [V] filled."""
    counts: Counter = Counter()
    for caption in Path(folder).glob("*.txt"):
        text = caption.read_text().strip().replace("[V]", "sks")
        counts.update(t.strip().lower() for t in text.split(",") if t.strip())
    return dict(counts)


def kohya_module_names(pipe) -> set[str]:
    """The kohya names of every UNet and text-encoder module (CLIP's layers under ``text_model.``, as webui and
    ComfyUI name them also where transformers >= 5.6 flattened that level away)."""
    te = pipe.text_encoder
    te_names = {n if hasattr(te, "text_model") else f"text_model.{n}" for n, _ in te.named_modules() if n}
    return {"lora_unet_" + n.replace(".", "_") for n, _ in pipe.unet.named_modules() if n} | {
        "lora_te_" + n.replace(".", "_") for n in te_names
    }


def test_kohya_lora_carries_webui_metadata_and_reproduces_the_trained_model(train_config, tiny_model_dir, style_dirs):
    run = train(train_config(max_train_steps=4, learning_rate=2e-2, rank=4, lora_alpha=8, train_text_encoder=True,
                             export_kohya=True))
    path = run.output_dir / KOHYA
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == "4" and float(meta["ss_network_alpha"]) == 8.0
    assert meta["ss_resolution"] == "(32, 32)" and meta["modelspec.resolution"] == "32x32"
    assert meta["modelspec.trigger_phrase"] == "sks style"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.sai_model_spec"] == "1.0.0" and meta["modelspec.prediction_type"] == "epsilon"
    assert meta["ss_num_train_images"] == "4" and meta["ss_max_train_steps"] == "4"
    assert float(meta["ss_learning_rate"]) == 2e-2 and meta["ss_output_name"] == "run"
    assert meta["ss_sd_model_name"] == Path(tiny_model_dir).name
    styleref, aux = style_dirs
    assert json.loads(meta["ss_tag_frequency"]) == {
        Path(styleref).name: caption_tags(styleref), Path(aux).name: caption_tags(aux)
    }

    state = load_file(str(path))
    alphas = [v.item() for k, v in state.items() if k.endswith(".alpha")]
    assert alphas and set(alphas) == {8.0}
    modules = {k.split(".")[0] for k in state}
    assert any(m.startswith("lora_unet_") for m in modules) and any(m.startswith("lora_te_") for m in modules)
    base = load_base(tiny_model_dir)
    assert modules <= kohya_module_names(base), sorted(modules - kohya_module_names(base))[:5]

    trained = render(inference_pipeline(run), PROMPT)
    untrained = render(base, PROMPT)
    base.load_lora_weights(str(run.output_dir), weight_name="pytorch_lora_weights_kohya.safetensors")
    assert np.abs(trained - untrained).max() > 1e-3
    np.testing.assert_allclose(render(base, PROMPT), trained, atol=1e-5)


def test_kohya_metadata_marks_a_v_prediction_model_as_sd2(train_config, tiny_vpred_model_dir):
    run = train(train_config(pretrained_model_name_or_path=tiny_vpred_model_dir, max_train_steps=1, export_kohya=True))
    with safe_open(str(run.output_dir / KOHYA), "pt") as f:
        meta = f.metadata()
    assert meta["ss_v2"] == "True" and meta["ss_base_model_version"] == "sd_v2_v"
    assert meta["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert meta["modelspec.prediction_type"] == "v"


def test_two_token_embeddings_load_per_file_in_plain_diffusers(train_config, tiny_model_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    run = train(train_config(**two_token_settings(tmp_path / "multi"), max_train_steps=2))
    prompt = "a house in <v1> style, a portrait in <v2> style"
    trained = render(inference_pipeline(run), prompt)

    learned = load_file(str(run.output_dir / "learned_embeds.safetensors"))
    for token in ("<v1>", "<v2>"):
        webui = load_file(str(run.output_dir / "embeddings" / f"{token.strip('<>')}.safetensors"))
        assert list(webui) == ["emb_params"] and webui["emb_params"].shape == (1, 32)
        np.testing.assert_array_equal(webui["emb_params"][0].numpy(), learned[token].numpy())

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    pipe.load_textual_inversion(str(run.output_dir / "embeddings" / "v1.safetensors"), token="<v1>")
    pipe.load_textual_inversion(str(run.output_dir / "embeddings" / "v2.safetensors"), token="<v2>")
    np.testing.assert_allclose(render(pipe, prompt), trained, atol=1e-5)

    card = (run.output_dir / "README.md").read_text()
    for token in ("v1", "v2"):
        assert f'pipe.load_textual_inversion("{run.output_dir}/embeddings/{token}.safetensors", token="<{token}>")' in card
