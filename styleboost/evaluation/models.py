"""Which networks a metric set needs, and loading them: ``EvalModels``, ``needs``, ``build_models``,
``only_needed``, the VGG19 backbone of the Gram distance, and the feature extractors a scoring pass runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.evaluation.config import EvaluateConfig
from styleboost.metrics.cache import file_identity
from styleboost.metrics.clip import ClipModel, load_clip
from styleboost.metrics.extractors import (
    GATYS_VGG19_LAYERS,
    ClipImages,
    FeatureExtractor,
    GramMatrices,
    StyleVectors,
    inception_features,
)
from styleboost.style_encoder import create_style_encoder
from styleboost.style_encoder.backbones import VGG19Features

# EvalModels attribute -> its entry in the report's "models"
MODEL_INFO_KEYS = {"style": "style_encoder", "clip": "clip", "fid": "fid_features", "gram": "gram"}
# --gram-weights random draws VGG19 from this seed: one network on every run, so Gram distances compare
GRAM_RANDOM_SEED = 0


@dataclass
class EvalModels:
    """The networks an evaluation uses; any of them may be None when no chosen metric needs it.

    Tests and benchmarks pass their own (tiny) models here; ``build_models`` loads the real ones."""

    style: FeatureExtractor | None = None
    clip: ClipModel | None = None
    fid: FeatureExtractor | None = None
    gram: GramMatrices | None = None
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the report says of each


def needs(config: EvaluateConfig) -> set[str]:
    """Which models the chosen metrics need: style, clip, fid, gram."""
    wanted = set(config.metrics)
    models = set()
    if wanted & {"style", "diversity"}:
        models.add("style")
    if wanted & {"clip_t", "clip_i", "diversity"} or (wanted & {"fid", "kid"} and config.fid_features == "clip"):
        models.add("clip")
    if wanted & {"fid", "kid"}:
        models.add("fid")
    if "gram" in wanted:
        models.add("gram")
    return models


def load_gram_backbone(weights: str) -> GramMatrices:
    """VGG19 at relu1_1..relu5_1 with ImageNet weights (torchvision), a local .safetensors file, or random
    (drawn from ``GRAM_RANDOM_SEED``, leaving the global random state as it was)."""
    pretrained = None if weights == "random" else weights
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(GRAM_RANDOM_SEED)
            backbone = VGG19Features(GATYS_VGG19_LAYERS, pretrained)
    except (OSError, RuntimeError) as err:  # a failed download or an unreadable file
        raise StyleBoostError(
            f"--gram-weights {weights}: VGG19 weights could not be loaded ({first_line(err)[:160]}); "
            "pass a local .safetensors file of vgg19().features, or random"
        ) from None
    weights_id = file_identity(weights) if Path(weights).is_file() else weights
    return GramMatrices(backbone, weights_id=f"vgg19:{weights_id}")


def build_models(config: EvaluateConfig) -> EvalModels:
    """Load the networks the chosen metrics need, as the config names them."""
    wanted = needs(config)
    models = EvalModels()
    if "style" in wanted:
        models.style = StyleVectors(create_style_encoder(config.encoder))
        models.info["style_encoder"] = {"name": config.encoder, "key": models.style.key}
    if "clip" in wanted:
        models.clip = load_clip(config.clip)
        models.info["clip"] = {"name": config.clip, "key": models.clip.key}
    if "fid" in wanted:
        if config.fid_features == "clip":
            models.fid = ClipImages(models.clip)
        else:
            models.fid = inception_features(config.inception_weights)
        models.info["fid_features"] = {"name": config.fid_features, "key": models.fid.key}
    if "gram" in wanted:
        models.gram = load_gram_backbone(config.gram_weights)
        models.info["gram"] = {"name": "vgg19 relu1_1..relu5_1", "weights": config.gram_weights, "key": models.gram.key}
    return models


def only_needed(models: EvalModels, config: EvaluateConfig) -> EvalModels:
    """``models`` without the networks no chosen metric uses (so none of them runs)."""
    unused = [name for name in MODEL_INFO_KEYS if name not in needs(config)]
    info = {k: v for k, v in models.info.items() if k not in {MODEL_INFO_KEYS[n] for n in unused}}
    return dataclasses.replace(models, **{name: None for name in unused}, info=info)


def extractors_of(models: EvalModels) -> dict[str, FeatureExtractor]:
    """The cached feature vectors each image gets: style, CLIP image and FID features (those the models have)."""
    named = {"style": models.style, "clip": ClipImages(models.clip) if models.clip else None, "fid": models.fid}
    return {name: ex for name, ex in named.items() if ex is not None}
