"""Style descriptors: the Gatys style representation and friends, read off backbone feature maps.

For each layer: channel means and standard deviations (``meanstd``) and the Gram matrix of channel
correlations (``gram``, upper triangle); plus the backbone's pooled vector (``pool``). A Gram
matrix of C channels has C(C+1)/2 entries, so each layer can first be projected to
``gram_channels`` channels by a 1x1 convolution: learned for a trained head, a fixed seeded random
projection for the training-free ``gram-*`` encoders (Gram of projected features = the projected
Gram matrix, R^T G R, so inner products between Gram matrices are approximately kept).
"""

from __future__ import annotations

import torch
from torch import nn

from styleboost.style_encoder.encoder_config import EncoderConfig


def gram_upper(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> the upper triangle of each image's ``C x C`` Gram matrix / (H W), ``(B, C(C+1)/2)``."""
    flat = features.flatten(2).float()
    gram = flat @ flat.transpose(1, 2) / flat.shape[-1]
    rows, cols = torch.triu_indices(gram.shape[1], gram.shape[2], device=gram.device)
    return gram[:, rows, cols]


def mean_std(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> per-channel mean and standard deviation, ``(B, 2C)``."""
    flat = features.flatten(2).float()
    return torch.cat([flat.mean(-1), flat.std(-1, unbiased=False)], dim=1)


def signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    """Power normalisation of second-order statistics (tames the few huge Gram entries)."""
    return torch.sign(x) * torch.sqrt(x.abs() + 1e-8)


class StyleDescriptors(nn.Module):
    """Turn ``(maps, pooled)`` into a list of descriptor blocks, one tensor ``(B, d_i)`` each."""

    def __init__(self, channels: list[int], pooled_dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        self.features = list(cfg.features)
        self.reducers = nn.ModuleList()
        gram_sizes = list(channels)
        if "gram" in self.features and cfg.gram_channels:
            generator = torch.Generator().manual_seed(cfg.init_seed + 1)
            for c in channels:
                out = min(c, cfg.gram_channels)
                conv = nn.Conv2d(c, out, 1, bias=False)
                weight = torch.linalg.qr(torch.randn(c, out, generator=generator))[0].T  # orthonormal rows
                conv.weight.data.copy_(weight[:, :, None, None])
                conv.weight.requires_grad_(cfg.gram_trainable)
                self.reducers.append(conv)
            gram_sizes = [min(c, cfg.gram_channels) for c in channels]
        self.sizes: list[int] = []
        if "meanstd" in self.features:
            self.sizes += [2 * c for c in channels]
        if "gram" in self.features:
            self.sizes += [c * (c + 1) // 2 for c in gram_sizes]
        if "pool" in self.features:
            self.sizes.append(pooled_dim)

    def forward(self, maps: list[torch.Tensor], pooled: torch.Tensor) -> list[torch.Tensor]:
        blocks: list[torch.Tensor] = []
        if "meanstd" in self.features:
            blocks += [mean_std(m) for m in maps]
        if "gram" in self.features:
            projected = [r(m) for r, m in zip(self.reducers, maps)] if len(self.reducers) else maps
            blocks += [signed_sqrt(gram_upper(m)) for m in projected]
        if "pool" in self.features:
            blocks.append(pooled.float())
        return blocks
