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


def test_full_finetune_in_mixed_precision_exports_a_pipeline_plain_diffusers_runs(train_config):
    from diffusers import StableDiffusionPipeline

    from styleboost.training.loop import train

    run = train(train_config(method="full", mixed_precision="bf16", max_train_steps=2))

    pipe = StableDiffusionPipeline.from_pretrained(str(run.output_dir))
    image = pipe("a portrait of a person in sks style", num_inference_steps=2, output_type="np").images[0]

    assert {pipe.unet.dtype, pipe.text_encoder.dtype, pipe.vae.dtype} == {torch.float32}
    assert np.isfinite(image).all()
