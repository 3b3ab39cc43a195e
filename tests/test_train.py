"""Training on the tiny model: losses fall, only the intended weights change, outputs reload exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_styleref_images
from helpers import load_base, overfit, render
from safetensors.torch import load_file

from styleboost.training.loop import build_run, compute_loss, train
from styleboost.training.validation import inference_pipeline

PROMPT = "a portrait of a person in sks style"


def fixed_batch(run):
    return next(iter(run.dataloader))


def test_lora_overfits_a_fixed_batch_and_leaves_the_base_unet_untouched(train_config):
    run = build_run(train_config(max_train_steps=30, learning_rate=3e-2))
    base = {n: p.detach().clone() for n, p in run.models.unet.named_parameters() if "lora_" not in n}
    batch = fixed_batch(run)
    losses = overfit(run, batch, 30)
    assert losses[-1] < 0.7 * losses[0], losses
    after = {n: p for n, p in run.models.unet.named_parameters() if "lora_" not in n}
    assert all(torch.equal(base[n], after[n]) for n in base)
    assert any(p.abs().sum() > 0 for n, p in run.models.unet.named_parameters() if "lora_B" in n)


def test_saved_lora_reproduces_the_trained_model_in_plain_diffusers(train_config, tiny_model_dir):
    run = train(train_config(max_train_steps=8, learning_rate=2e-2, export_kohya=True))
    trained = render(inference_pipeline(run), PROMPT)

    plain = load_base(tiny_model_dir)
    untrained = render(plain, PROMPT)
    plain.load_lora_weights(str(run.output_dir))
    reloaded = render(plain, PROMPT)

    kohya = load_base(tiny_model_dir)
    kohya.load_lora_weights(str(run.output_dir), weight_name="pytorch_lora_weights_kohya.safetensors")

    assert np.abs(trained - untrained).max() > 1e-3  # training changed the output ...
    np.testing.assert_allclose(reloaded, trained, atol=1e-5)  # ... and the file reproduces it
    np.testing.assert_allclose(render(kohya, PROMPT), trained, atol=1e-5)


def test_non_default_lora_alpha_round_trips(train_config, tiny_model_dir):
    run = train(train_config(max_train_steps=4, learning_rate=2e-2, rank=4, lora_alpha=16, export_kohya=True))
    trained = render(inference_pipeline(run), PROMPT)
    plain = load_base(tiny_model_dir)
    plain.load_lora_weights(str(run.output_dir))
    np.testing.assert_allclose(render(plain, PROMPT), trained, atol=1e-5)
    kohya = load_file(str(run.output_dir / "pytorch_lora_weights_kohya.safetensors"))
    alphas = {v.item() for k, v in kohya.items() if k.endswith(".alpha")}
    assert alphas == {16.0}


@pytest.mark.parametrize("weight", [0.0, 2.5])
def test_loss_is_instance_plus_weighted_prior(train_config, weight):
    run = build_run(train_config(prior_loss_weight=weight))
    terms = compute_loss(run, fixed_batch(run))
    assert terms["prior_loss"].item() > 0
    expected = terms["instance_loss"] + weight * terms["prior_loss"]
    torch.testing.assert_close(terms["loss"], expected)


def test_aux_mode_none_has_no_prior_term(train_config):
    run = build_run(train_config(aux_mode="none", aux_dir=None))
    terms = compute_loss(run, fixed_batch(run))
    assert "prior_loss" not in terms
    torch.testing.assert_close(terms["loss"], terms["instance_loss"])


def test_generated_aux_images_come_from_the_frozen_model_before_training(train_config, tiny_model_dir):
    cfg = train_config(aux_mode="generated", aux_dir=None, num_aux_images=2, aux_inference_steps=2,
                       aux_prompt="a photo of a person", max_train_steps=2)
    run = build_run(cfg)
    folder = run.output_dir / "aux_generated"
    files = sorted(folder.glob("*.png"))
    assert len(files) == 2 and len(run.aux) == 2
    assert (folder / "class_0000.txt").read_text() == "a photo of a person"
    frozen = load_base(tiny_model_dir)
    frozen.set_progress_bar_config(disable=True)
    expected = frozen("a photo of a person", num_inference_steps=2, guidance_scale=cfg.guidance_scale,
                      generator=torch.Generator().manual_seed(cfg.seed), height=32, width=32).images[0]
    from PIL import Image

    # drawn in a batch of 2 vs alone: float sums differ in the last bits, so a pixel may round one level apart
    difference = np.abs(np.asarray(Image.open(files[0]), dtype=int) - np.asarray(expected, dtype=int))
    assert difference.max() <= 1 and difference.mean() < 0.05


def test_full_finetune_saves_a_pipeline_that_reproduces_outputs(train_config):
    from diffusers import StableDiffusionPipeline

    run = train(train_config(method="full", max_train_steps=3, learning_rate=1e-3))
    trained = render(inference_pipeline(run), PROMPT)
    reloaded = StableDiffusionPipeline.from_pretrained(str(run.output_dir))
    np.testing.assert_allclose(render(reloaded, PROMPT), trained, atol=1e-5)


def test_textual_inversion_changes_only_new_token_rows(train_config, tiny_model_dir):
    cfg = train_config(method="textual_inversion", new_token=["<neon>"], initializer_token="painting",
                       max_train_steps=4, learning_rate=5e-2)
    run = build_run(cfg)
    weight = run.models.text_encoder.get_input_embeddings().weight
    before = weight.detach().clone()
    unet_before = {n: p.detach().clone() for n, p in run.models.unet.named_parameters()}
    from styleboost.training.loop import finish, train_loop

    train_loop(run)
    finish(run)
    changed = (weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == run.models.token_ids["text_encoder"]
    assert all(torch.equal(unet_before[n], p) for n, p in run.models.unet.named_parameters())

    prompt = "a portrait of a person in <neon> style"
    trained = render(inference_pipeline(run), prompt)
    plain = load_base(tiny_model_dir)
    from styleboost.sd.weights import load_embeddings, read_embeddings

    embeddings = read_embeddings(run.output_dir / "learned_embeds.safetensors")
    assert list(embeddings) == ["<neon>"]
    load_embeddings(plain, embeddings)
    np.testing.assert_allclose(render(plain, prompt), trained, atol=1e-5)
    # plain diffusers reads the single-token file directly too
    direct = load_base(tiny_model_dir)
    direct.load_textual_inversion(str(run.output_dir))
    np.testing.assert_allclose(render(direct, prompt), trained, atol=1e-5)


def test_lora_ti_trains_adapter_and_token_rows(train_config):
    run = build_run(train_config(method="lora_ti", new_token=["<neon>"], max_train_steps=3, learning_rate=5e-2))
    weight = run.models.text_encoder.get_input_embeddings().weight
    before = weight.detach().clone()
    from styleboost.training.loop import train_loop

    train_loop(run)
    changed = (weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == run.models.token_ids["text_encoder"]
    assert any(p.abs().sum() > 0 for n, p in run.models.unet.named_parameters() if "lora_B" in n)


def test_multi_token_captions_choose_the_token_they_train(train_config, tmp_path):
    folder = tmp_path / "multi"
    paths = write_styleref_images(folder, 4, size=32, seed=3)
    for i, path in enumerate(paths):  # people-ish images train [V1], the rest [V2]
        path.with_suffix(".txt").write_text(f"an image in [V{1 + i % 2}] style")
    cfg = train_config(styleref_dir=str(folder), method="textual_inversion", new_token=["<v1>", "<v2>"],
                       aux_mode="none", aux_dir=None, max_train_steps=2, train_batch_size=1, learning_rate=5e-2)
    run = build_run(cfg)
    assert [e.caption for e in run.styleref] == ["an image in <v1> style", "an image in <v2> style"] * 2
    weight = run.models.text_encoder.get_input_embeddings().weight
    before = weight.detach().clone()
    from styleboost.training.loop import train_loop

    train_loop(run)  # 2 steps of batch 1: each step trains the token of its one caption
    changed = (weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert set(changed) <= set(run.models.token_ids["text_encoder"]) and changed


def test_v_prediction_models_train_towards_velocity(train_config, tiny_vpred_model_dir):
    from styleboost.training.step import prediction_target

    run = build_run(train_config(pretrained_model_name_or_path=tiny_vpred_model_dir))
    scheduler = run.models.noise_scheduler
    assert scheduler.config.prediction_type == "v_prediction"
    latents, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 900])
    torch.testing.assert_close(prediction_target(scheduler, latents, noise, t), scheduler.get_velocity(latents, noise, t))
    assert not torch.allclose(prediction_target(scheduler, latents, noise, t), noise)


def test_cached_latents_give_the_same_loss(train_config, tmp_path):
    plain = build_run(train_config(center_crop=True, output_dir=str(tmp_path / "plain")))
    cached = build_run(train_config(center_crop=True, cache_latents=True, output_dir=str(plain.output_dir) + "-c"))
    batch_plain, batch_cached = fixed_batch(plain), fixed_batch(cached)
    assert "latent_dist" in batch_cached["instance"]
    a = compute_loss(plain, batch_plain)["loss"]
    b = compute_loss(cached, batch_cached)["loss"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_min_snr_weighting_changes_the_loss(train_config):
    plain = build_run(train_config())
    weighted = build_run(train_config(snr_gamma=1.0, output_dir=str(plain.output_dir) + "-snr"))
    a = compute_loss(plain, fixed_batch(plain))["loss"]
    b = compute_loss(weighted, fixed_batch(weighted))["loss"]
    assert b.item() < a.item()  # min(snr, 1)/snr <= 1 for every timestep


def test_run_writes_manifest_samples_and_model_card(train_config):
    run = train(train_config(max_train_steps=2))
    manifest = json.loads((run.output_dir / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["final_step"] == 2 and manifest["train_seconds"] > 0
    assert manifest["config"]["max_train_steps"] == 2 and manifest["tokens"] == ["sks"]
    assert len(manifest["data"]["styleref"]) == 4 and len(manifest["data"]["aux"]) == 3
    assert all(len(h) == 64 for h in manifest["data"]["styleref"].values())
    assert manifest["versions"]["diffusers"]
    assert (run.output_dir / "samples.png").is_file()
    card = (run.output_dir / "README.md").read_text()
    assert "samples.png" in card and "load_lora_weights" in card


def test_text_encoder_lora_is_saved_and_reloaded(train_config, tiny_model_dir):
    run = train(train_config(train_text_encoder=True, max_train_steps=6, learning_rate=3e-2))
    state = load_file(str(run.output_dir / "pytorch_lora_weights.safetensors"))
    assert any(k.startswith("text_encoder.") for k in state) and any(k.startswith("unet.") for k in state)
    trained = render(inference_pipeline(run), PROMPT)
    plain = load_base(tiny_model_dir)
    plain.load_lora_weights(str(run.output_dir))
    np.testing.assert_allclose(render(plain, PROMPT), trained, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients(train_config, tmp_path):
    def lora_grads(**extra):
        run = build_run(train_config(**extra))
        terms = compute_loss(run, fixed_batch(run))
        terms["loss"].backward()
        return {n: p.grad.clone() for n, p in run.models.unet.named_parameters() if p.grad is not None}

    plain = lora_grads()
    checkpointed = lora_grads(gradient_checkpointing=True, output_dir=str(tmp_path / "checkpointed"))
    assert plain.keys() == checkpointed.keys() and plain
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-4, atol=1e-6)


def test_bf16_mixed_precision_keeps_trainable_weights_in_float32(train_config):
    run = train(train_config(mixed_precision="bf16", max_train_steps=3))
    lora = [p for n, p in run.models.unet.named_parameters() if "lora_" in n]
    frozen = [p for n, p in run.models.unet.named_parameters() if "lora_" not in n]
    assert all(p.dtype == torch.float32 for p in lora) and all(p.dtype == torch.bfloat16 for p in frozen)
    assert all(np.isfinite(h["loss"]) for h in run.history)


def test_missing_gpu_extras_fall_back_with_a_notice(train_config, capsys):
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") or importlib.util.find_spec("xformers"):
        pytest.skip("the GPU extras are installed here")
    run = train(train_config(use_8bit_adam=True, enable_xformers_memory_efficient_attention=True, max_train_steps=2))
    err = capsys.readouterr().err
    assert "bitsandbytes is not installed" in err and "xformers unavailable" in err
    assert isinstance(run.optimizer.optimizer, torch.optim.AdamW)


def test_aux_dir_without_a_prior_term_is_announced(train_config, capsys):
    run = build_run(train_config(aux_mode="none"))  # the fixture's aux_dir stays set
    assert run.aux == []
    assert "is not used with --aux_mode none" in capsys.readouterr().err


def test_generated_mode_refuses_a_folder_of_other_images(train_config, style_dirs):
    from styleboost.core.errors import StyleBoostError

    with pytest.raises(StyleBoostError, match="did not generate"):
        build_run(train_config(aux_mode="generated", aux_dir=style_dirs[1], num_aux_images=2, aux_inference_steps=1))


def test_generated_class_images_are_reused_only_with_the_same_settings(train_config, tmp_path):
    from styleboost.core.errors import StyleBoostError

    cache = tmp_path / "class-images"
    settings = dict(aux_mode="generated", aux_dir=str(cache), num_aux_images=2, aux_inference_steps=1)
    build_run(train_config(**settings))
    drawn = {p.name: p.read_bytes() for p in cache.glob("*.png")}
    again = build_run(train_config(**settings, output_dir=str(tmp_path / "second")))
    assert len(again.aux) == 2 and {p.name: p.read_bytes() for p in cache.glob("*.png")} == drawn
    with pytest.raises(StyleBoostError, match="aux_prompt|prompt="):
        build_run(train_config(**settings, aux_prompt="a photo of a dog", output_dir=str(tmp_path / "third")))
