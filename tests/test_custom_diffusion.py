"""Custom Diffusion (``--method custom_diffusion``): only the cross-attention K/V projections and the new token's
rows train, the exported file reloads in plain diffusers (SD and SDXL), generate and the protocol draw with a run
folder, and a resumed run ends where a straight one does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import killed_after_first_checkpoint, one_line_error, overfit, render
from PIL import Image
from safetensors.torch import load_file

from styleboost.sd.weights import CUSTOM_DIFFUSION_FILE, read_embeddings
from styleboost.training.loop import build_run, train
from styleboost.training.validation import inference_pipeline

TOKEN = "<cd-style>"
PROMPT = f"a portrait of a person in {TOKEN} style"
KV = re.compile(r"\.attn2\.to_[kv]\.weight$")
pytestmark = pytest.mark.usefixtures("one_thread")


def cd_settings(**overrides) -> dict:
    return dict(method="custom_diffusion", new_token=[TOKEN], max_train_steps=4, learning_rate=5e-2) | overrides


def card_lines(run_dir: Path) -> str:
    """The model card's usage snippet as printed, without its last line (which draws a 50-step image)."""
    card = (run_dir / "README.md").read_text()
    snippet = re.search(r"## Use\n\n```python\n(.*?)```", card, flags=re.S).group(1)
    return "\n".join(line for line in snippet.splitlines() if not line.startswith("image = "))


def test_overfits_a_fixed_batch_changing_only_cross_attention_kv_and_the_token_row(train_config):
    run = build_run(train_config(**cd_settings(max_train_steps=16, learning_rate=3e-2)))
    unet_before = {n: p.detach().clone() for n, p in run.models.unet.named_parameters()}
    text_before = {n: p.detach().clone() for n, p in run.models.text_encoder.named_parameters()}
    trained = {n for n, p in run.models.unet.named_parameters() if p.requires_grad}
    assert trained and all(KV.search(n) for n in trained)
    assert len(trained) == 2 * sum(n.endswith(".attn2") for n, _ in run.models.unet.named_modules())
    assert all(p.dtype == torch.float32 for n, p in run.models.unet.named_parameters() if n in trained)

    batch = next(iter(run.dataloader))
    losses = overfit(run, batch, 16)
    assert losses[-1] < 0.9 * losses[0], losses  # K/V alone fit less than LoRA on every projection

    for name, param in run.models.unet.named_parameters():
        assert torch.equal(param, unet_before[name]) != (name in trained), name
    embeddings = "embeddings.token_embedding.weight"
    for name, param in run.models.text_encoder.named_parameters():
        if not name.endswith(embeddings):
            assert torch.equal(param, text_before[name]), name
            continue
        changed = (param.detach() != text_before[name]).any(dim=1)
        assert changed.nonzero().flatten().tolist() == run.models.token_ids["text_encoder"]


def test_mixed_precision_keeps_the_trained_kv_weights_in_fp32(train_config):
    run = build_run(train_config(**cd_settings(mixed_precision="bf16")))
    dtypes = {n: p.dtype for n, p in run.models.unet.named_parameters()}
    assert {d for n, d in dtypes.items() if KV.search(n)} == {torch.float32}
    assert {d for n, d in dtypes.items() if not KV.search(n)} == {torch.bfloat16}


@pytest.fixture(scope="module")
def cd_run(tiny_model_dir, style_dirs, tmp_path_factory):
    """One trained Custom Diffusion run on the tiny model, and its image of PROMPT from the model in memory."""
    from styleboost.training.config import TrainConfig

    cfg = TrainConfig(pretrained_model_name_or_path=tiny_model_dir, styleref_dir=style_dirs[0], aux_dir=style_dirs[1],
                      output_dir=str(tmp_path_factory.mktemp("cd") / "run"), train_batch_size=2, report_to="none",
                      num_validation_images=1, validation_inference_steps=2, **cd_settings())
    cfg.validate()
    run = train(cfg)
    return run, render(inference_pipeline(run), PROMPT)


def test_the_plain_diffusers_lines_reproduce_the_trained_model(cd_run, tiny_model_dir):
    from diffusers import StableDiffusionPipeline

    run, trained = cd_run
    out = run.output_dir
    state = load_file(str(out / CUSTOM_DIFFUSION_FILE))
    weights = {k for k, v in state.items() if v.numel()}
    assert weights and all(re.search(r"\.attn2\.processor\.to_[kv]_custom_diffusion\.weight$", k) for k in weights)
    empty = {k for k, v in state.items() if not v.numel()}  # self-attention: a weightless processor each
    assert empty == {n for n in run.models.unet.attn_processors if ".attn1." in n}

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    base = render(pipe, PROMPT)
    pipe.unet.load_attn_procs(str(out), weight_name="pytorch_custom_diffusion_weights.safetensors", _pipeline=pipe)
    pipe.load_textual_inversion(str(out / "learned_embeds.safetensors"))
    np.testing.assert_allclose(render(pipe, PROMPT), trained, atol=1e-5)
    assert np.abs(trained - base).max() > 1e-3

    lines = card_lines(out)  # the model card prints the same lines; run as printed, they load the same model
    assert f'pipe.unet.load_attn_procs("{out}", weight_name="{CUSTOM_DIFFUSION_FILE}", _pipeline=pipe)' in lines
    namespace: dict = {}
    exec(compile(lines, "README.md snippet", "exec"), namespace)  # noqa: S102 - our own card, as printed
    np.testing.assert_allclose(render(namespace["pipe"], PROMPT), trained, atol=1e-5)


def test_generate_and_the_protocol_draw_with_the_run_folder(cd_run, tiny_model_dir, tmp_path):
    from styleboost.evaluation.protocol import run_source
    from styleboost.generation.generate import GenerateConfig, generate_images
    from styleboost.generation.pipeline import load_generation_pipeline

    run, trained = cd_run
    source = run_source("cd", str(run.output_dir), tiny_model_dir)
    assert source.lora == str(run.output_dir)
    assert source.embeddings == str(run.output_dir / "learned_embeds.safetensors")

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a portrait of a person in [V] style\n")
    config = dict(model=tiny_model_dir, prompts=[str(prompts)], steps=2, guidance=7.5, progress=False, device="cpu")
    embeddings = read_embeddings(source.embeddings)
    pipe = load_generation_pipeline(GenerateConfig(out=str(tmp_path / "x"), lora=source.lora, **config), embeddings)
    np.testing.assert_allclose(render(pipe, PROMPT), trained, atol=1e-5)

    drawn = {}
    for name, lora in (("cd", str(run.output_dir)), ("base", None)):
        out = tmp_path / name
        records = generate_images(GenerateConfig(out=str(out), lora=lora, tokens=[TOKEN], **config))
        drawn[name] = np.asarray(Image.open(out / records[0]["file"]), dtype=np.int16)
    assert records[0]["prompt"] == PROMPT
    assert np.abs(drawn["cd"] - drawn["base"]).mean() > 1


def test_sdxl_run_reloads_in_plain_diffusers(train_config, sdxl_model_dir):
    from diffusers import StableDiffusionXLPipeline

    run = train(train_config(pretrained_model_name_or_path=sdxl_model_dir, **cd_settings(max_train_steps=2)))
    trained = render(inference_pipeline(run), PROMPT)
    base = render(StableDiffusionXLPipeline.from_pretrained(sdxl_model_dir), PROMPT)
    namespace: dict = {}  # the card's lines: the attention processors, then each token's clip_l and clip_g rows
    exec(compile(card_lines(run.output_dir), "README.md snippet", "exec"), namespace)  # noqa: S102 - our own card
    np.testing.assert_allclose(render(namespace["pipe"], PROMPT), trained, atol=1e-5)
    assert np.abs(trained - base).max() > 1e-3


def test_a_resumed_run_ends_with_the_same_weights(train_config, tmp_path, monkeypatch):
    common = cd_settings(max_train_steps=4, checkpointing_steps=2, learning_rate=1e-2, lr_scheduler="cosine")
    straight = train(train_config(output_dir=str(tmp_path / "straight"), **common))
    killed_after_first_checkpoint(train_config, tmp_path / "resumed", monkeypatch, **common)
    resumed = train(train_config(output_dir=str(tmp_path / "resumed"), resume_from_checkpoint="latest", **common))
    assert resumed.start_step == 2 and len(resumed.history) == 2
    for name in (CUSTOM_DIFFUSION_FILE, "learned_embeds.safetensors"):
        a, b = load_file(str(straight.output_dir / name)), load_file(str(resumed.output_dir / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
    assert json.loads((resumed.output_dir / "run.json").read_text())["config"]["method"] == "custom_diffusion"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], "--method custom_diffusion trains new token embeddings: give --new_token"),
        (["--new_token", TOKEN, "--train_text_encoder"], "--train_text_encoder does not apply to --method custom_"),
        (["--new_token", TOKEN, "--export_kohya"], "--export_kohya writes a LoRA, but --method custom_diffusion"),
        (["--new_token", TOKEN, "--use_dora"], "--use_dora changes a LoRA, but --method custom_diffusion trains none"),
        (["--new_token", TOKEN, "--lora_conv"], "--lora_conv changes a LoRA"),
        (["--new_token", TOKEN, "--lora_blocks", "mid_block"], "--lora_blocks changes a LoRA"),
    ],
)
def test_settings_that_do_not_apply_are_one_line(flags, expected, train_main, capsys, base_args):
    line = one_line_error(train_main, capsys, base_args + ["--method", "custom_diffusion", *flags])
    assert expected in line
