"""Pixels in, normalised tensors out: how a style encoder sees an image.

Inference: resize the shorter side to the encoder's ``image_size`` and take the centre square (the
whole image keeps its scale, so brush and dot sizes are seen as drawn). Training adds augmentations
that keep style and change content: crops (zoomed, or at the image's own scale), flips and small
rotations, never colour jitter (colour is part of style).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

from styleboost.core.images import open_rgb, to_rgb

ImageLike = Union[Image.Image, str, os.PathLike]
# Side of a scale-keeping training crop, as a share of image_size: inside the 0.85 left after a rotation.
NATIVE_CROP = 0.75


def to_uint8_tensor(image: ImageLike) -> torch.Tensor:
    """A ``(3, H, W)`` uint8 tensor from a PIL image or an image file (one-line error if it will not decode)."""
    pil = to_rgb(image) if isinstance(image, Image.Image) else open_rgb(image)
    return v2.functional.pil_to_tensor(pil)


@dataclass(frozen=True)
class Preprocess:
    """Resize, crop and normalise as an encoder's config says."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float ``(..., 3, H, W)`` -> the encoder's input scale."""
        pixels = pixels.float() / 255 if pixels.dtype == torch.uint8 else pixels.float()
        mean = torch.tensor(self.mean, device=pixels.device).view(3, 1, 1)
        std = torch.tensor(self.std, device=pixels.device).view(3, 1, 1)
        return (pixels - mean) / std

    def eval_transform(self) -> v2.Transform:
        return v2.Compose([
            v2.Resize(self.image_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(self.image_size),
        ])

    def train_transform(self, min_scale: float = 0.35, max_rotation: float = 8.0, zoom: bool = True) -> v2.Transform:
        """Flips, rotations up to ``max_rotation`` degrees, and crops: with ``zoom`` crops covering ``min_scale``..1
        of the image resized back to ``image_size`` (marks seen larger than drawn), without it crops of
        ``NATIVE_CROP`` of the side at the image's own scale (marks seen as drawn, as ``eval_transform`` sees them).

        The rotation is followed by a centre crop that cuts away the filled corners."""
        keep = 0.85 if max_rotation else 1.0
        crop = (v2.RandomResizedCrop(self.image_size, scale=(min_scale, 1.0), ratio=(0.8, 1.25), antialias=True)
                if zoom else v2.RandomCrop(round(self.image_size * NATIVE_CROP)))
        return v2.Compose([
            v2.Resize(self.image_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
            v2.RandomRotation(max_rotation, interpolation=InterpolationMode.BILINEAR),
            v2.CenterCrop(max(8, round(self.image_size * keep))),
            crop,
            v2.RandomHorizontalFlip(),
        ])

    def batch(self, images: Sequence[ImageLike] | torch.Tensor) -> torch.Tensor:
        """Images (PIL, paths, or a uint8/[0, 1] ``(N, 3, H, W)`` tensor) -> a normalised input batch."""
        transform = self.eval_transform()
        if isinstance(images, torch.Tensor):
            return self.normalise(transform(images))
        return torch.stack([self.normalise(transform(to_uint8_tensor(im))) for im in images])
