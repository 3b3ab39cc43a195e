"""The transfer methods behind one interface, chosen once per run: ``build_method(config)`` returns a ``Method``
whose ``style`` and ``settings`` go into every record and whose call restyles one content tensor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import torch

from styleboost.core.errors import StyleBoostError
from styleboost.transfer import adain, encoder_decoder
from styleboost.transfer.config import TransferConfig
from styleboost.transfer.gatys import GatysSettings, gatys_transfer, style_targets
from styleboost.transfer.inputs import image_paths, load_tensor, style_set_record
from styleboost.transfer.vgg import FrozenVGG

Restyle = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, Any]]]  # content -> (image, record extras)


@dataclass
class Method:
    style: dict[str, Any]  # the record fields naming the style set (style, style_files, style_sha256)
    settings: dict[str, Any]  # the record fields that decide the pixels, besides content, style and size
    restyle: Restyle


def style_images(config: TransferConfig) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """The record of ``--style`` and its images at the run's size."""
    if not config.style:
        raise StyleBoostError(f"--style is required with --method {config.method}")
    files = image_paths(config.style, "--style")
    return style_set_record(config.style, files), [load_tensor(p, config.size) for p in files]


def build_gatys(config: TransferConfig) -> Method:
    style, styles = style_images(config)
    vgg = FrozenVGG(29, config.vgg_weights)
    targets = style_targets(vgg, styles)
    settings = GatysSettings(config.steps, config.content_weight, config.style_weight, config.init, config.seed,
                             config.progress)

    def restyle(content: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        image, history = gatys_transfer(vgg, content, targets, settings)
        return image, {"content_loss": history["content"][-1], "style_loss": history["style"][-1],
                       "start_style_loss": history["style"][0]}

    recorded = {"steps": config.steps, "content_weight": config.content_weight, "style_weight": config.style_weight,
                "init": config.init, "noise_seed": config.seed if config.init == "noise" else None}
    return Method(style, {**recorded, "vgg_weights": vgg.weights_id}, restyle)


def build_adain(config: TransferConfig) -> Method:
    model = adain.load_adain(config.decoder, config.vgg_weights)
    style, styles = style_images(config)
    target = model.style_statistics(styles)

    def restyle(content: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        with torch.no_grad():
            return model.transfer(content, target, config.alpha), {}

    return Method(style, {"alpha": config.alpha, **model.identity()}, restyle)


def build_encoder_decoder(config: TransferConfig) -> Method:
    """The style is the one the model was trained on (its StyleRef set, as recorded at training)."""
    if not config.model:
        raise StyleBoostError("--model is required with --method encoder-decoder (a train_transfer.py output folder)")
    if config.style:
        raise StyleBoostError("--style is not used with --method encoder-decoder: the model was trained on its style")
    model, metadata, path = encoder_decoder.load_model(config.model)

    def restyle(content: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        return model.restyle(content), {}

    return Method(json.loads(metadata["style"]), encoder_decoder.model_identity(config.model, metadata, path),
                  restyle)


BUILDERS = {"gatys": build_gatys, "adain": build_adain, "encoder-decoder": build_encoder_decoder}


def build_method(config: TransferConfig) -> Method:
    return BUILDERS[config.method](config)
