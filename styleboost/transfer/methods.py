"""The transfer methods behind one interface, chosen once per run: ``build_method(config, styles)`` returns a
``Method`` whose ``settings`` go into every record and whose call restyles one content tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from styleboost.transfer import adain
from styleboost.transfer.config import TransferConfig
from styleboost.transfer.gatys import GatysSettings, gatys_transfer, style_targets
from styleboost.transfer.vgg import FrozenVGG

Restyle = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, Any]]]  # content -> (image, record extras)


@dataclass
class Method:
    settings: dict[str, Any]  # the record fields that decide the pixels, besides content, style and size
    restyle: Restyle


def build_gatys(config: TransferConfig, styles: list[torch.Tensor]) -> Method:
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
    return Method({**recorded, "vgg_weights": vgg.weights_id}, restyle)


def build_adain(config: TransferConfig, styles: list[torch.Tensor]) -> Method:
    model = adain.load_adain(config.decoder, config.vgg_weights)
    target = model.style_statistics(styles)

    def restyle(content: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        with torch.no_grad():
            return model.transfer(content, target, config.alpha), {}

    return Method({"alpha": config.alpha, **model.identity()}, restyle)


BUILDERS = {"gatys": build_gatys, "adain": build_adain}


def build_method(config: TransferConfig, styles: list[torch.Tensor]) -> Method:
    return BUILDERS[config.method](config, styles)
