"""Gatys et al.'s optimisation-based transfer: the image itself is optimised with L-BFGS so that its conv4_2
features match the content image's and its Gram matrices over relu1_1..relu5_1 match the style set's
(several style images: their Gram matrices averaged)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from styleboost.transfer.vgg import CONV4_2, STYLE_LAYERS, FrozenVGG, gram

LAYERS = [*STYLE_LAYERS, CONV4_2]


@dataclass(frozen=True)
class GatysSettings:
    steps: int = 200  # L-BFGS function evaluations
    content_weight: float = 1.0
    style_weight: float = 1e3
    init: str = "content"  # or "noise"
    seed: int = 0  # of the noise start
    progress: bool = True


def style_targets(vgg: FrozenVGG, styles: list[torch.Tensor]) -> list[torch.Tensor]:
    """The style set's Gram matrix at each style layer, averaged over its images (which may differ in size)."""
    per_image = [vgg(style, STYLE_LAYERS) for style in styles]
    return [torch.stack([gram(maps[i])[0] for maps in per_image]).mean(0) for i in STYLE_LAYERS]


def losses(vgg: FrozenVGG, image: torch.Tensor, content: torch.Tensor,
           targets: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss at conv4_2, style loss summed over the style layers) of ``image``."""
    maps = vgg(image, LAYERS)
    content_loss = F.mse_loss(maps[CONV4_2], content)
    style_loss = sum(F.mse_loss(gram(maps[i])[0], target) for i, target in zip(STYLE_LAYERS, targets))
    return content_loss, style_loss


def start_image(content: torch.Tensor, settings: GatysSettings) -> torch.Tensor:
    if settings.init == "content":
        return content.clone(memory_format=torch.contiguous_format)
    generator = torch.Generator().manual_seed(settings.seed)
    return torch.rand(content.shape, generator=generator)


def gatys_transfer(vgg: FrozenVGG, content: torch.Tensor, targets: list[torch.Tensor],
                   settings: GatysSettings) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """The restyled ``(1, 3, H, W)`` image and the loss history (``content``, ``style``: one value per evaluation)."""
    content_features = vgg(content, [CONV4_2])[CONV4_2]
    image = start_image(content, settings).requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1, max_iter=settings.steps, tolerance_grad=0, tolerance_change=0,
                                  history_size=50)
    history: dict[str, list[float]] = {"content": [], "style": []}
    bar = tqdm(total=settings.steps, desc="gatys", unit="step", disable=not settings.progress, leave=False)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        content_loss, style_loss = losses(vgg, image, content_features, targets)
        loss = settings.content_weight * content_loss + settings.style_weight * style_loss
        loss.backward()
        history["content"].append(content_loss.item())
        history["style"].append(style_loss.item())
        bar.update(1)
        return loss

    optimizer.step(closure)
    bar.close()
    return image.detach().clamp(0, 1), history
