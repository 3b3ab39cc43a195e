"""SDXL as one more family: the tiny random SDXL pipeline trained by the shared loop, its conditioning checked
against diffusers' own ``encode_prompt``, its crops' time ids, and every export loaded in plain diffusers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import killed_after_first_checkpoint, overfit, render
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from styleboost.training.loop import build_run, compute_loss, finish, train, train_loop
from styleboost.training.validation import inference_pipeline

PROMPT = "a portrait of a person in sks style"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def sdxl_config(train_config, sdxl_model_dir):
    def make(**overrides):
        return train_config(**{"pretrained_model_name_or_path": sdxl_model_dir, **overrides})

    return make


def load_sdxl(folder: str):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(folder)


def test_text_conditioning_is_what_the_sdxl_pipeline_computes(sdxl_config, sdxl_model_dir):
    run = build_run(sdxl_config())
    captions = [run.styleref[0].caption, run.aux[0].caption]  # the conditioning of every caption is precomputed
    ours = run.conditioning(captions)
    pipe = load_sdxl(sdxl_model_dir)
    context, _, pooled, _ = pipe.encode_prompt(captions, device="cpu", do_classifier_free_guidance=False)
    torch.testing.assert_close(ours["encoder_hidden_states"], context)
    torch.testing.assert_close(ours["text_embeds"], pooled)
    assert context.shape[-1] == 32 + 48  # both encoders' hidden states, concatenated
    run.accelerator.end_training()


def test_lora_overfits_without_running_the_frozen_text_encoders(sdxl_config):
    run = build_run(sdxl_config(max_train_steps=30, learning_rate=3e-2))
    base = {n: p.detach().clone() for n, p in run.models.unet.named_parameters() if "lora_" not in n}
    calls = []
    for encoder in run.models.text_encoders():
        encoder.register_forward_hook(lambda *args: calls.append(1))
    batch = next(iter(run.dataloader))
    losses = overfit(run, batch, 30)
    assert losses[-1] < 0.9 * losses[0], losses  # the random tiny SDXL UNet's LoRA moves slowly (2.23 -> 1.91)
    assert not calls  # the captions' conditioning was computed once, before training
    after = dict(run.models.unet.named_parameters())
    assert all(torch.equal(base[n], after[n]) for n in base)
    run.accelerator.end_training()


def test_time_ids_record_the_crop_each_image_was_trained_with(sdxl_config, tmp_path):
    from styleboost.training.data import ImageTransform

    image = Image.new("RGB", (64, 40), "red")  # resized to 51 x 32 for 32 px: 19 columns to crop from
    centered = ImageTransform(32, center_crop=True)
    rng = np.random.default_rng(0)
    assert centered.apply(image, rng)[1].tolist() == [40, 64, 0, 9, 32, 32]  # (h, w), (top, left), target
    assert centered.apply(image, rng, flip=True)[1].tolist() == [40, 64, 0, 10, 32, 32]  # the crop, mirrored

    folder = tmp_path / "wide"
    folder.mkdir()
    for k in range(2):
        Image.new("RGB", (64, 40), (40 * k, 90, 200)).save(folder / f"{k}.png")
    run = build_run(sdxl_config(styleref_dir=str(folder), styleref_prompt="[V] style", aux_mode="none",
                                center_crop=True, resolution=32))
    seen = []
    unet = run.nets["unet"]
    unet.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["added_cond_kwargs"]["time_ids"]),
                                   with_kwargs=True)
    compute_loss(run, next(iter(run.dataloader)))
    assert seen[0].tolist() == [[40, 64, 0, 9, 32, 32]] * 2
    run.accelerator.end_training()


def test_lora_on_unet_and_both_text_encoders_reloads_in_plain_diffusers_and_as_kohya(sdxl_config, sdxl_model_dir):
    run = train(sdxl_config(max_train_steps=6, learning_rate=2e-2, train_text_encoder=True, export_kohya=True))
    trained = render(inference_pipeline(run), PROMPT)

    pipe = load_sdxl(sdxl_model_dir)
    untrained = render(pipe, PROMPT)
    pipe.load_lora_weights(str(run.output_dir))
    assert np.abs(trained - untrained).max() > 1e-3
    np.testing.assert_allclose(render(pipe, PROMPT), trained, atol=1e-5)

    kohya_file = run.output_dir / "pytorch_lora_weights_kohya.safetensors"
    prefixes = {key.split("_")[1] for key in load_file(str(kohya_file))}
    assert prefixes == {"unet", "te1", "te2"}
    with safe_open(str(kohya_file), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["ss_v2"] == "False"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    kohya = load_sdxl(sdxl_model_dir)
    kohya.load_lora_weights(str(run.output_dir), weight_name=kohya_file.name)
    np.testing.assert_allclose(render(kohya, PROMPT), trained, atol=1e-5)

    card = (run.output_dir / "README.md").read_text()
    assert "StableDiffusionXLPipeline.from_pretrained" in card and "stable-diffusion-xl" in card


def test_pivotal_tuning_adds_the_token_to_both_encoders_and_exports_clip_l_and_clip_g(sdxl_config, sdxl_model_dir):
    token = "<neon>"
    run = build_run(sdxl_config(method="lora_ti", new_token=[token], max_train_steps=4, learning_rate=5e-2))
    rows_before = {n: e.get_input_embeddings().weight.detach().clone()
                   for n, e in zip(run.models.text_encoder_names, run.models.text_encoders())}
    train_loop(run)
    finish(run)
    for name, encoder in zip(run.models.text_encoder_names, run.models.text_encoders()):
        changed = (encoder.get_input_embeddings().weight.detach() != rows_before[name]).any(dim=1)
        assert changed.nonzero().flatten().tolist() == run.models.token_ids[name]

    prompt = f"a portrait of a person in {token} style"
    trained = render(inference_pipeline(run), prompt)
    webui = load_file(str(run.output_dir / "embeddings" / "neon.safetensors"))
    assert {k: tuple(v.shape) for k, v in webui.items()} == {"clip_l": (1, 32), "clip_g": (1, 48)}

    pipe = load_sdxl(sdxl_model_dir)  # as diffusers documents loading SDXL embeddings
    pipe.load_textual_inversion(webui["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(webui["clip_g"], token=token, text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    pipe.load_lora_weights(str(run.output_dir))
    np.testing.assert_allclose(render(pipe, prompt), trained, atol=1e-5)

    with safe_open(str(run.output_dir / "learned_embeds.safetensors"), framework="pt") as handle:
        assert json.loads(handle.metadata()["tokens"]) == [token]


def test_full_finetune_exports_a_pipeline_folder_plain_diffusers_runs(sdxl_config):
    run = train(sdxl_config(method="full", max_train_steps=2, learning_rate=1e-3))
    trained = render(inference_pipeline(run), PROMPT)
    np.testing.assert_allclose(render(load_sdxl(str(run.output_dir)), PROMPT), trained, atol=1e-5)


def test_a_resumed_sdxl_run_ends_with_the_same_weights(sdxl_config, tmp_path, monkeypatch):
    common = dict(max_train_steps=4, checkpointing_steps=2, learning_rate=1e-2, random_flip=True,
                  train_text_encoder=True, skip_final_samples=True)
    straight = train(sdxl_config(output_dir=str(tmp_path / "straight"), **common))
    killed_after_first_checkpoint(sdxl_config, tmp_path / "resumed", monkeypatch, **common)
    resumed = train(sdxl_config(output_dir=str(tmp_path / "resumed"), resume_from_checkpoint="latest", **common))
    assert resumed.start_step == 2
    a = load_file(str(straight.output_dir / "pytorch_lora_weights.safetensors"))
    b = load_file(str(resumed.output_dir / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("text_encoder_2.") for k in a)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)


def test_generated_class_images_are_drawn_by_the_sdxl_pipeline(sdxl_config):
    run = build_run(sdxl_config(aux_mode="generated", aux_dir=None, num_aux_images=2, aux_inference_steps=2))
    images = sorted((run.output_dir / "aux_generated").glob("*.png"))
    assert len(images) == 2 and Image.open(images[0]).size == (32, 32)
    assert run.aux and all(e.caption == "a photo of a person" for e in run.aux)
    run.accelerator.end_training()


def test_a_replacement_vae_is_used_and_a_bad_one_is_one_line(sdxl_config, sdxl_model_dir, train_main, base_args, capsys):
    from diffusers import AutoencoderKL

    vae_folder = AutoencoderKL.from_pretrained(sdxl_model_dir, subfolder="vae")
    with torch.no_grad():
        vae_folder.encoder.conv_in.weight.mul_(0.5)
    vae_dir = sdxl_model_dir + "-vae"
    vae_folder.save_pretrained(vae_dir)
    run = build_run(sdxl_config(pretrained_vae_model_name_or_path=vae_dir))
    torch.testing.assert_close(run.models.vae.encoder.conv_in.weight, vae_folder.encoder.conv_in.weight)
    assert run.models.vae.dtype == torch.float32
    run.accelerator.end_training()
    finished = train(sdxl_config(pretrained_vae_model_name_or_path=vae_dir, max_train_steps=1, skip_final_samples=True,
                                 output_dir=str(run.output_dir) + "-2"))
    recorded = json.loads((finished.output_dir / "run.json").read_text())["vae"]
    assert recorded == {"source": str(Path(vae_dir).resolve()), "dtype": "float32"}

    from helpers import one_line_error

    line = one_line_error(train_main, capsys, base_args + ["--pretrained_vae_model_name_or_path", "/no/such/vae"])
    assert "--pretrained_vae_model_name_or_path" in line and "/no/such/vae" in line


def test_the_smoke_protocol_generates_and_evaluates_an_sdxl_lora(sdxl_config, sdxl_model_dir, style_dirs, tmp_path,
                                                                 capsys):
    """``eval/run_protocol.py`` (styleboost generate + evaluate) on the SDXL base and an SDXL LoRA run."""
    from test_protocol import ROOT, load_script

    run = train(sdxl_config(max_train_steps=3, learning_rate=5e-2, skip_final_samples=True))
    out = tmp_path / "out"
    args = ["--protocol", str(ROOT / "eval" / "protocols" / "smoke.yaml"), "--model", sdxl_model_dir,
            "--run", "base=", "--run", f"lora={run.output_dir}", "--styleref", style_dirs[0], "--out", str(out),
            "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert load_script("run_protocol").main(args) == 0, capsys.readouterr().err
    base, lora = (sorted((out / "generated" / r / "images" / "validation").glob("*.png")) for r in ("base", "lora"))
    assert len(base) == len(lora) == 10 and Image.open(lora[0]).size == (32, 32)  # the model's own size
    assert np.abs(np.asarray(Image.open(base[0]), int) - np.asarray(Image.open(lora[0]), int)).mean() > 1
    report = json.loads((out / "report" / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["base", "lora"] and report["runs"][1]["count"] == 10


def test_two_token_textual_inversion_reloads_and_generates_on_sdxl(sdxl_config, sdxl_model_dir, tmp_path):
    from conftest import two_token_settings

    from styleboost.generation.generate import GenerateConfig, generate_images
    from styleboost.sd.weights import load_embeddings, read_embeddings

    run = train(sdxl_config(**two_token_settings(tmp_path / "multi"), max_train_steps=4))
    prompt = "a house in <v1> style, <v2> style"
    trained = render(inference_pipeline(run), prompt)

    embeddings = read_embeddings(run.output_dir / "learned_embeds.safetensors")
    assert list(embeddings) == ["<v1>", "<v2>"]
    pipe = load_sdxl(sdxl_model_dir)
    load_embeddings(pipe, embeddings)
    np.testing.assert_allclose(render(pipe, prompt), trained, atol=1e-5)
    for name, token in (("v1", "<v1>"), ("v2", "<v2>")):  # each webui file holds that token's two rows
        rows = load_file(str(run.output_dir / "embeddings" / f"{name}.safetensors"))
        torch.testing.assert_close(rows["clip_g"][0], embeddings[token]["clip_g"][0])

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a house in [V1] style\n")
    config = dict(model=sdxl_model_dir, prompts=[str(prompts)], steps=2, progress=False)
    styled = generate_images(GenerateConfig(out=str(tmp_path / "styled"), embeddings=str(run.output_dir), **config))
    plain = generate_images(GenerateConfig(out=str(tmp_path / "plain"), tokens=["a"], **config))
    assert styled[0]["prompt"] == "a house in <v1> style" and styled[0]["height"] == 32
    image = (np.asarray(Image.open(tmp_path / d / r[0]["file"]), int) for d, r in (("styled", styled), ("plain", plain)))
    assert np.abs(next(image) - next(image)).mean() > 1


def test_an_sdxl_single_file_checkpoint_loads_with_a_local_config_and_offline_without_one_is_one_line(
    sdxl_model_dir, sdxl_config, tmp_path, monkeypatch
):
    import huggingface_hub.constants
    from diffusers import StableDiffusionXLPipeline

    from styleboost.core.errors import StyleBoostError
    from styleboost.sd.loading import load_pipeline
    from styleboost.testing import save_original_checkpoint

    checkpoint = save_original_checkpoint(sdxl_model_dir, tmp_path / "tiny-sdxl.safetensors")
    keys = load_file(str(checkpoint))
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert "model.diffusion_model.label_emb.0.0.weight" in keys  # the added (pooled text + sizes) embedding
    expected = render(load_sdxl(sdxl_model_dir), PROMPT)
    plain = StableDiffusionXLPipeline.from_single_file(str(checkpoint), config=sdxl_model_dir)
    np.testing.assert_allclose(render(plain, PROMPT), expected, atol=1e-6)

    ours = load_pipeline(str(checkpoint), single_file_config=sdxl_model_dir)  # the class comes from the config
    assert type(ours).__name__ == "StableDiffusionXLPipeline"
    run = build_run(sdxl_config(pretrained_model_name_or_path=str(checkpoint), single_file_config=sdxl_model_dir))
    assert run.models.family.name == "stable-diffusion-xl"
    run.accelerator.end_training()

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(StyleBoostError) as err:
        load_pipeline(str(checkpoint))
    assert "\n" not in str(err.value) and str(checkpoint) in str(err.value) and "--single_file_config" in str(err.value)


def test_a_float32_vae_decodes_in_float32_under_the_runs_autocast(sdxl_model_dir):
    from styleboost.sd.sampling import draw_images

    pipe = load_sdxl(sdxl_model_dir)
    pipe.set_progress_bar_config(disable=True)
    decoded = []
    pipe.vae.decoder.conv_out.register_forward_hook(lambda module, args, out: decoded.append(out.dtype))
    unet_outputs = []
    pipe.unet.conv_out.register_forward_hook(lambda module, args, out: unet_outputs.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as validation images are drawn under bf16 training
        draw_images(pipe, ["a house"], [0], num_inference_steps=1, output_type="np")
    assert unet_outputs[0] == torch.bfloat16  # autocast is on for the UNet ...
    assert decoded == [torch.float32]  # ... and off for the VAE, which overflows in half precision
    assert pipe.vae.decode.__func__ is type(pipe.vae).decode  # the pipeline's VAE is as it was afterwards
