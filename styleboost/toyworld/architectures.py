"""The toy world's network shapes, read from ``configs/pretrain.yaml`` and built as diffusers/open_clip models.

One job: turn the architecture file into fresh (randomly initialised) modules of the formats users
load: an ``AutoencoderKL``, a ``UNet2DConditionModel``, a ``CLIPTextModel`` with the real CLIP BPE
tokenizer, an open_clip model config and a style-encoder config.
"""

from __future__ import annotations

import dataclasses
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from styleboost.core.errors import StyleBoostError
from styleboost.core.text import read_text
from styleboost.sd.tokenizer import build_clip_tokenizer
from styleboost.style_encoder.encoder_config import named_configs, read_config

CLIP_NAME = "styleboost-toyworld-clip"


def load_architectures(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The architecture file (default: the shipped ``configs/pretrain.yaml``) as a dict."""
    if path is None:
        text = resources.files("styleboost.toyworld").joinpath("configs/pretrain.yaml").read_text()
    else:
        text = read_text(path, what="--architectures file")
    try:
        arch = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise StyleBoostError(f"--architectures {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(arch, dict):
        raise StyleBoostError(f"--architectures {path}: expected a mapping of sections")
    missing = {"vae", "unet", "text_encoder", "clip", "style_encoder", "tokenizer_max_length"} - set(arch or {})
    if missing:
        raise StyleBoostError(f"--architectures {path}: missing section(s) {', '.join(sorted(missing))}")
    return arch


def build_tokenizer(folder: str | os.PathLike, max_length: int):
    """The real CLIP BPE tokenizer (built offline from open_clip's vocabulary), padding prompts to ``max_length``."""
    tokenizer = build_clip_tokenizer(folder)
    tokenizer.model_max_length = max_length
    return tokenizer


def build_vae(arch: dict[str, Any], size: int):
    from diffusers import AutoencoderKL

    spec = dict(arch["vae"])
    return AutoencoderKL(in_channels=3, out_channels=3, sample_size=size, **spec)


def build_text_encoder(arch: dict[str, Any], tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    spec = arch["text_encoder"]
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        projection_dim=spec["hidden_size"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **spec,
    )
    return CLIPTextModel(config)


def build_unet(arch: dict[str, Any], latent_size: int, latent_channels: int, cross_attention_dim: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        cross_attention_dim=cross_attention_dim,
        **arch["unet"],
    )


def sd_scheduler_config() -> dict[str, Any]:
    """Stable Diffusion 1.x's noise schedule (scaled-linear betas, 1000 steps, epsilon prediction)."""
    return dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                prediction_type="epsilon", steps_offset=1)


def register_clip(arch: dict[str, Any], folder: str | os.PathLike) -> str:
    """Register the world's open_clip architecture (written to ``folder``) and return its name."""
    import open_clip

    path = Path(folder) / f"{CLIP_NAME}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(arch["clip"]))
    open_clip.add_model_config(path)
    return CLIP_NAME


def style_encoder_config_file(arch: dict[str, Any], folder: str | os.PathLike) -> Path:
    """A style-encoder architecture JSON: the named ``base`` config with the world's overrides."""
    spec = dict(arch["style_encoder"])
    base = spec.pop("base")
    configs = named_configs()
    if base not in configs:
        raise StyleBoostError(f"style_encoder.base {base!r}: choose from {', '.join(sorted(configs))}")
    cfg = dataclasses.replace(read_config(configs[base]), name=f"toyworld-{base}", **spec)
    path = Path(folder) / "style-encoder-architecture.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg.to_dict(), indent=2))
    return path
