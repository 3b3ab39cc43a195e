"""FID and KID between two sets of feature vectors, through torchmetrics' implementations.

The vectors come from the feature cache (Inception-v3 for real use, any extractor in tests), so
torchmetrics gets a pass-through "feature extractor" and is fed the vectors: its mean/covariance
accumulation in float64, matrix square root and KID subset sampling are used as they are.
KID is the one that means something with a 15-20 image StyleRef set; it comes with its std over subsets.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


class PrecomputedFeatures(nn.Module):
    """The identity, sized: lets torchmetrics' FID/KID take feature vectors in place of images."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """FID of two feature sets (None when either has fewer than 2 vectors)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        return None
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kernel_distance(
    real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float] | tuple[None, None]:
    """KID mean and std over ``subsets`` random subsets of ``min(subset_size, len(real), len(fake))``
    vectors of each set (None, None when that is fewer than 2). Seeded: the same inputs give the same numbers."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    if size < 2:
        return None, None
    with warnings.catch_warnings():  # "will save all extracted features in buffer": these are few, and ours
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
