"""The frozen VGG19 every transfer method reads: built from torchvision's architecture with ImageNet weights,
a local safetensors file, or random weights drawn from a fixed seed (offline), and read at named layers.

Random VGG features are a known, honest baseline for texture statistics (Gram matrices and channel
statistics of random convolutions still separate textures); they are what runs offline here, where no
ImageNet VGG19 can be downloaded, and what the shipped AdaIN decoder was trained against.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.core.images import file_sha256
from styleboost.core.notice import notice
from styleboost.metrics.extractors import GATYS_VGG19_LAYERS, IMAGENET_MEAN, IMAGENET_STD
from styleboost.style_encoder.backbones import VGG19Features

RANDOM = "random"
RANDOM_SEED = 0  # --vgg-weights random draws VGG19 from this seed: one network on every run
CONV4_2 = 21  # torchvision vgg19().features index of conv4_2, Gatys et al.'s content layer
RELU4_1 = 20  # ... of relu4_1, AdaIN's encoder output
STYLE_LAYERS = GATYS_VGG19_LAYERS  # relu1_1 .. relu5_1
ADAIN_STYLE_LAYERS = GATYS_VGG19_LAYERS[:4]  # relu1_1 .. relu4_1


class FrozenVGG(nn.Module):
    """``vgg19().features`` up to ``last`` (an index), frozen, fed 0..1 RGB, returning the maps at chosen indices."""

    def __init__(self, last: int, weights: str) -> None:
        super().__init__()
        self.features = seeded_vgg19(last, weights)
        self.weights_id = weights_identity(weights)
        self.requires_grad_(False).eval()

    def forward(self, image: torch.Tensor, indices: list[int]) -> dict[int, torch.Tensor]:
        x = TF.normalize(image, list(IMAGENET_MEAN), list(IMAGENET_STD))
        maps = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in indices:
                maps[index] = x
            if index >= max(indices):
                break
        return maps


def seeded_vgg19(last: int, weights: str) -> nn.Sequential:
    """VGG19's layers up to ``last``: ImageNet (``torchvision``), a .safetensors file, or ``random`` from
    ``RANDOM_SEED`` (with a notice), leaving the global random state as it was."""
    if weights == RANDOM:
        notice(f"--vgg-weights random: VGG19 has random weights drawn from seed {RANDOM_SEED} (no ImageNet "
               "weights offline); a texture-statistics baseline, not the paper's network")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            backbone = VGG19Features([29], None if weights == RANDOM else weights)
    except (OSError, RuntimeError) as err:  # a failed download or an unreadable file
        raise StyleBoostError(f"--vgg-weights {weights}: VGG19 weights could not be loaded "
                              f"({first_line(err)[:160]}); pass a local .safetensors file of vgg19().features, "
                              "or random") from None
    return backbone.features[: last + 1]


@functools.lru_cache(maxsize=1)
def random_fingerprint() -> str:
    """The first 12 hex digits of the sha256 of the random VGG19's parameter bytes: torch builds that draw
    another network from the same seed get another fingerprint (decoders trained on one refuse the other)."""
    digest = hashlib.sha256()
    for tensor in seeded_vgg19(29, RANDOM).state_dict().values():
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def weights_identity(weights: str) -> str:
    """What the records say of the weights: ``random-seed0-<fingerprint>``, ``torchvision`` or
    ``<file>@<sha256 prefix>``."""
    if weights == RANDOM:
        return f"random-seed{RANDOM_SEED}-{random_fingerprint()}"
    if Path(weights).is_file():
        return f"{Path(weights).name}@{file_sha256(Path(weights))[:16]}"
    return weights


def gram(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations of ``(B, C, H, W)`` maps divided by ``H W``: ``(B, C, C)``."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / flat.shape[-1]


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over space, shaped ``(B, C, 1, 1)``."""
    flat = features.flatten(2)
    return flat.mean(-1)[..., None, None], (flat.var(-1, unbiased=False) + eps).sqrt()[..., None, None]
