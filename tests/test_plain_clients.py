"""What we ship and write loads in plain diffusers: exactly the lines a user types, nothing of ours between
loading and drawing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

SHIPPED = "styleboost/toyworld/pretrained/pipeline"


@pytest.fixture(autouse=True)
def from_repository_root(monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the README's relative path


def test_shipped_pipeline_draws_with_default_arguments():
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained("styleboost/toyworld/pretrained/pipeline")
    image = pipe("a person in sks style").images[0]

    assert image.size == (64, 64)
    assert np.asarray(image).std() > 5  # a picture, not a flat or black square


def test_shipped_pipeline_draws_in_half_precision():
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained("styleboost/toyworld/pretrained/pipeline", torch_dtype=torch.float16)
    image = pipe("a person in sks style", num_inference_steps=10, output_type="np").images[0]

    assert {pipe.unet.dtype, pipe.text_encoder.dtype, pipe.vae.dtype} == {torch.float16}
    assert np.isfinite(image).all() and image.std() > 0.02


def test_an_untrained_token_leaves_the_shipped_base_drawing_as_it_was():
    """As rare tokens do in real Stable Diffusion: "X in sks style" keeps the style of "X" at the same seed,
    where a style the model was taught moves it far (the earlier base, never shown rare tokens, moved it a
    fifth as far as a named style did; this one about a thirtieth)."""
    from diffusers import StableDiffusionPipeline

    from styleboost.style_encoder import create_style_encoder

    pipe = StableDiffusionPipeline.from_pretrained("styleboost/toyworld/pretrained/pipeline")
    subjects = ["a person", "a portrait of a person", "a house", "a tree", "an animal"]

    def draw(prompts: list[str]) -> list:
        seeds = [torch.Generator().manual_seed(20_000 + k) for k in range(len(prompts))]
        return pipe(prompts, num_inference_steps=20, guidance_scale=4.0, generator=seeds).images

    plain = draw(subjects)
    untrained = draw([f"{s} in sks style" for s in subjects])
    named = draw([f"{s} in {style} style" for s, style in zip(subjects, ["pencil", "cyanotype", "pop-art",
                                                                          "night-vision", "duotone"])])
    encoder = create_style_encoder("styleboost/toyworld/pretrained/style_encoder")
    vectors = [encoder.embed(images) for images in (plain, untrained, named)]
    token_move = float((1 - torch.nn.functional.cosine_similarity(vectors[0], vectors[1])).mean())
    style_move = float((1 - torch.nn.functional.cosine_similarity(vectors[0], vectors[2])).mean())
    assert token_move < 0.05 * style_move, (token_move, style_move)


def test_full_finetune_in_mixed_precision_exports_a_pipeline_plain_diffusers_runs(train_config):
    from diffusers import StableDiffusionPipeline

    from styleboost.training.loop import train

    run = train(train_config(method="full", mixed_precision="bf16", max_train_steps=2))

    pipe = StableDiffusionPipeline.from_pretrained(str(run.output_dir))
    image = pipe("a portrait of a person in sks style", num_inference_steps=2, output_type="np").images[0]

    assert {pipe.unet.dtype, pipe.text_encoder.dtype, pipe.vae.dtype} == {torch.float32}
    assert np.isfinite(image).all()
