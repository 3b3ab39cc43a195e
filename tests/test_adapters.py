"""LoRA variants and data weighting: DoRA, LoRA on convolutions (LoCon), LoRA kept to named UNet blocks, repeats.

Every export is loaded the way a user loads it, ``StableDiffusionPipeline.from_pretrained(base)`` (or the SDXL
pipeline) and ``load_lora_weights(folder)``, and must draw what the trained model in memory draws, which is not the
base's image. SD 1.x and the tiny SDXL both, since the variants work on any diffusers UNet.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import load_base, one_line_error, render
from safetensors import safe_open
from safetensors.torch import load_file

from styleboost.core.errors import StyleBoostError
from styleboost.training.adapters import CONV_PARENTS
from styleboost.training.data import DrawSampler, ImageTransform, StyleBoostDataset, load_examples
from styleboost.training.loop import build_run, finish, train, train_loop
from styleboost.training.methods import UNET_LORA_TARGETS
from styleboost.training.validation import inference_pipeline

PROMPT = "a portrait of a person in sks style"
KOHYA = "pytorch_lora_weights_kohya.safetensors"
FAST = dict(max_train_steps=3, learning_rate=2e-2, skip_final_samples=True)

pytestmark = pytest.mark.usefixtures("one_thread")


def lora_modules(model) -> set[str]:
    """The names of the modules that hold LoRA parameters."""
    return {n.split(".lora_")[0] for n, _ in model.named_parameters() if ".lora_" in n}


def assert_reloads_as_trained(run, base_dir: str, weight_name: str | None = None, *, sdxl: bool = False) -> np.ndarray:
    """The run's file loaded into the plain base pipeline draws the trained model's image, not the base's."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    trained = render(inference_pipeline(run), PROMPT)
    plain = (StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline).from_pretrained(base_dir)
    untrained = render(plain, PROMPT)
    plain.load_lora_weights(str(run.output_dir), **({"weight_name": weight_name} if weight_name else {}))
    assert np.abs(trained - untrained).max() > 1e-3
    reloaded = render(plain, PROMPT)
    np.testing.assert_allclose(reloaded, trained, atol=1e-5)
    return reloaded


def test_dora_trains_magnitudes_on_every_lora_part_and_reloads_in_plain_diffusers(train_config, tiny_model_dir):
    run = build_run(train_config(use_dora=True, train_text_encoder=True, **FAST))
    magnitudes = {f"{target}.{n}": p.detach().clone() for target in ("unet", "text_encoder")
                  for n, p in run.models.module(target).named_parameters() if "lora_magnitude_vector" in n}
    assert any(k.startswith("unet.") for k in magnitudes) and any(k.startswith("text_encoder.") for k in magnitudes)
    train_loop(run)
    finish(run)
    after = {f"{target}.{n}": p for target in ("unet", "text_encoder")
             for n, p in run.models.module(target).named_parameters() if "lora_magnitude_vector" in n}
    assert any(not torch.equal(magnitudes[k], after[k]) for k in magnitudes)  # the magnitudes are trained

    saved = load_file(str(run.output_dir / "pytorch_lora_weights.safetensors"))
    assert {k.split(".")[0] for k in saved if "lora_magnitude_vector" in k} == {"unet", "text_encoder"}
    assert_reloads_as_trained(run, tiny_model_dir)


def test_dora_with_a_kohya_export_is_one_line_error(train_main, capsys, base_args):
    line = one_line_error(train_main, capsys, [*base_args, "--use_dora", "--export_kohya"])
    assert "--use_dora" in line and "--export_kohya" in line and "dora_scale" in line


def test_conv_lora_covers_resnet_and_sampler_convs_and_both_files_reload_alike(train_config, tiny_model_dir):
    run = train(train_config(lora_conv=True, conv_rank=2, conv_alpha=1.0, rank=4, lora_alpha=8, export_kohya=True,
                             **FAST))
    unet, base = run.models.unet, load_base(tiny_model_dir).unet
    kinds = {n: type(m).__name__ for n, m in base.named_modules()}
    convs = {n for n, m in base.named_modules() if isinstance(m, torch.nn.Conv2d)
             and kinds[n.rpartition(".")[0]] in CONV_PARENTS}
    assert {n.rsplit(".", 1)[-1] for n in convs} == {"conv1", "conv2", "conv_shortcut", "conv"}
    attention = {n for n in kinds if n.endswith(tuple(f".{t}" for t in UNET_LORA_TARGETS))}
    assert lora_modules(unet) == convs | attention  # not conv_in, conv_out or the attentions' proj_in/proj_out
    ranks = {n: p.shape[0] for n, p in unet.named_parameters() if "lora_A" in n}
    assert {r for n, r in ranks.items() if ".conv1." in n or ".conv2." in n or "samplers" in n} == {2}
    assert {r for n, r in ranks.items() if "conv_shortcut" in n or ".to_" in n} == {4}
    assert all(p.abs().sum() > 0 for n, p in unet.named_parameters() if "lora_B" in n and ".conv" in n)

    kohya = load_file(str(run.output_dir / KOHYA))
    alphas = {k.removesuffix(".alpha"): v.item() for k, v in kohya.items() if k.endswith(".alpha")}
    assert {v for k, v in alphas.items() if k.endswith(("_conv1", "_conv2", "_conv"))} == {1.0}
    assert {v for k, v in alphas.items() if k.endswith(("_conv_shortcut", "_to_q", "_to_out_0"))} == {8.0}
    with safe_open(str(run.output_dir / KOHYA), "pt") as f:
        meta = f.metadata()
    assert meta["ss_network_module"] == "networks.lora"
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "1"}

    diffusers_image = assert_reloads_as_trained(run, tiny_model_dir)
    kohya_image = assert_reloads_as_trained(run, tiny_model_dir, weight_name=KOHYA)
    np.testing.assert_allclose(kohya_image, diffusers_image, atol=1e-5)


def test_lora_blocks_put_adapters_only_under_the_named_blocks(train_config, tiny_model_dir):
    # down_blocks.1 holds only ResNets, so the file's first key is a conv's: it must reload all the same
    blocks = ["down_blocks.1", "up_blocks.1.attentions.0"]
    run = train(train_config(lora_blocks=blocks, lora_conv=True, export_kohya=True, **FAST))
    modules = lora_modules(run.models.unet)
    assert all(any(m.startswith(f"{b}.") for b in blocks) for m in modules), sorted(modules)
    assert all(any(m.startswith(f"{b}.") for m in modules) for b in blocks)
    assert any(".resnets." in m for m in modules) and any(".to_q" in m for m in modules)
    saved = load_file(str(run.output_dir / "pytorch_lora_weights.safetensors"))
    assert {k.split(".lora_")[0].removeprefix("unet.") for k in saved} == modules

    assert_reloads_as_trained(run, tiny_model_dir)
    assert_reloads_as_trained(run, tiny_model_dir, weight_name=KOHYA)


@pytest.mark.parametrize("block, expected", [
    ("up_blocks.7", ["--lora_blocks up_blocks.7", "up_blocks.1.attentions.0"]),
    ("b-lora", ["--lora_blocks b-lora", "SDXL", "up_blocks.0.attentions.1", "mid_block.attentions.0"]),
])
def test_a_block_with_nothing_to_train_is_one_line_error(train_main, capsys, base_args, block, expected):
    line = one_line_error(train_main, capsys, [*base_args, "--lora_blocks", "mid_block", block])
    assert all(text in line for text in expected), line


def test_b_lora_with_dora_on_sdxl_trains_only_the_style_block_and_reloads_in_plain_diffusers(
    train_config, sdxl_model_dir
):
    run = train(train_config(pretrained_model_name_or_path=sdxl_model_dir, lora_blocks=["b-lora"], use_dora=True,
                             train_text_encoder=True, **FAST))
    modules = lora_modules(run.models.unet)
    assert modules and all(m.startswith("up_blocks.0.attentions.1.") for m in modules), sorted(modules)
    assert {m.rsplit(".", 1)[-1] for m in modules} == {"to_q", "to_k", "to_v", "0"}
    saved = load_file(str(run.output_dir / "pytorch_lora_weights.safetensors"))
    assert {k.split(".")[0] for k in saved if "lora_magnitude_vector" in k} == {"unet", "text_encoder",
                                                                                 "text_encoder_2"}
    assert_reloads_as_trained(run, sdxl_model_dir, sdxl=True)


def test_conv_lora_on_sdxl_reloads_alike_from_the_diffusers_and_the_kohya_file(train_config, sdxl_model_dir):
    run = train(train_config(pretrained_model_name_or_path=sdxl_model_dir, lora_conv=True, conv_rank=2,
                             conv_alpha=1.0, rank=4, lora_alpha=8, train_text_encoder=True, export_kohya=True, **FAST))
    assert any(".resnets." in m for m in lora_modules(run.models.unet))
    kohya = load_file(str(run.output_dir / KOHYA))
    assert {k.split("_")[1] for k in kohya} == {"unet", "te1", "te2"}
    assert {v.item() for k, v in kohya.items() if k.endswith("_conv1.alpha")} == {1.0}
    assert {v.item() for k, v in kohya.items() if k.startswith("lora_te2_") and k.endswith(".alpha")} == {8.0}
    diffusers_image = assert_reloads_as_trained(run, sdxl_model_dir, sdxl=True)
    kohya_image = assert_reloads_as_trained(run, sdxl_model_dir, weight_name=KOHYA, sdxl=True)
    np.testing.assert_allclose(kohya_image, diffusers_image, atol=1e-5)


def test_adapter_settings_that_cannot_apply_are_refused_or_noted(train_config, capsys):
    for flag in ("use_dora", "lora_conv"):
        with pytest.raises(StyleBoostError, match=f"^--{flag} .*--method textual_inversion") as err:
            train_config(method="textual_inversion", new_token=["<s>"], **{flag: True})
        assert "\n" not in str(err.value)
    with pytest.raises(StyleBoostError, match="^--lora_blocks .*--method full"):
        train_config(method="full", lora_blocks=["mid_block"])
    with pytest.raises(StyleBoostError, match="--styleref_repeats"):
        train_config(styleref_repeats=0)
    capsys.readouterr()
    train_config(conv_rank=8, conv_alpha=4.0)
    assert "--conv_rank and --conv_alpha are unused without --lora_conv" in capsys.readouterr().err


class DrawRecorder:
    """A stand-in latent cache that records which image each draw took."""

    def __init__(self):
        self.paths: list = []

    def get(self, path, flip):
        self.paths.append(path)
        return torch.zeros(8, 2, 2), torch.zeros(6)  # latent distribution, size ids


@pytest.mark.parametrize("repeats, styleref_counts, aux_counts", [
    ((1, 1), [1, 1, 1, 1], [1, 1, 2]),  # the default: an epoch as long as the larger set, the smaller one cycled
    ((3, 4), [3, 3, 3, 3], [4, 4, 4]),  # equal products: every image exactly its repeats
    ((2, 1), [2, 2, 2, 2], [2, 3, 3]),  # StyleRef fills the epoch; Aux is cycled to keep up
])
def test_an_epoch_draws_each_image_as_often_as_its_repeats(style_dirs, repeats, styleref_counts, aux_counts):
    styleref = load_examples(style_dirs[0], "[V] style", ["sks"], flag="--styleref_dir", needs_token=True)
    aux = load_examples(style_dirs[1], "a person", ["sks"], flag="--aux_dir", needs_token=False)
    assert (len(styleref), len(aux)) == (4, 3)
    recorder = DrawRecorder()
    dataset = StyleBoostDataset(styleref, aux, ImageTransform(8), seed=0, latent_cache=recorder,
                                styleref_repeats=repeats[0], aux_repeats=repeats[1])
    assert len(dataset) == max(4 * repeats[0], 3 * repeats[1])
    for key in DrawSampler(len(dataset), seed=5, total=len(dataset)):  # one epoch
        dataset[key]
    counts = Counter(recorder.paths)
    assert sorted(counts[e.path] for e in styleref) == styleref_counts
    assert sorted(counts[e.path] for e in aux) == aux_counts


def test_repeats_set_the_epoch_of_a_training_run(train_config):
    run = build_run(train_config(styleref_repeats=3, aux_repeats=4, max_train_steps=1))
    assert len(run.dataloader.dataset) == 12
