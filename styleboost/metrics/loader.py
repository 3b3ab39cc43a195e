"""Decoding image files into batches of uint8 squares, in DataLoader worker processes.

Every scored image is brought to one square size (shorter side resized, centre crop) so images of
mixed sizes batch together; each feature extractor then resizes the batch to its own input on the
device. Decoding is the CPU-heavy part of scoring, so it runs in ``workers`` processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import open_rgb


def decode_square(path: Path, size: int) -> torch.Tensor:
    """``(3, size, size)`` uint8: the image decoded as RGB, shorter side resized to ``size``, centre-cropped."""
    # PIL, not torchvision.io (deprecated since torchvision 0.29): the same libjpeg/libpng pixels, every format
    pixels = TF.pil_to_tensor(open_rgb(path))
    if min(pixels.shape[-2:]) != size:
        pixels = TF.resize(pixels, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(pixels, [size, size])


class SquareImages(Dataset):
    """Image files as uint8 squares; a file that fails to decode yields an empty tensor and is reported."""

    def __init__(self, paths: Sequence[Path], size: int) -> None:
        self.paths = list(paths)
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        try:
            return index, decode_square(self.paths[index], self.size)
        except (OSError, RuntimeError, ValueError, SyntaxError, StyleBoostError):  # PIL raises SyntaxError too
            return index, torch.empty(0, dtype=torch.uint8)


def _stack(items: list[tuple[int, torch.Tensor]]) -> tuple[list[int], torch.Tensor, list[int]]:
    """(indices, the decoded images stacked, indices that failed to decode)."""
    good = [(i, t) for i, t in items if t.numel()]
    failed = [i for i, t in items if not t.numel()]
    stacked = torch.stack([t for _, t in good]) if good else torch.empty(0, dtype=torch.uint8)
    return [i for i, _ in good], stacked, failed


def square_batches(
    paths: Sequence[Path], size: int, batch_size: int, workers: int
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Yield ``(indices into paths, (B, 3, size, size) uint8)`` batches in order; one-line error for a bad file."""
    loader = DataLoader(
        SquareImages(paths, size), batch_size=batch_size, num_workers=workers, collate_fn=_stack,
        pin_memory=torch.cuda.is_available(),
    )
    for indices, pixels, failed in loader:
        if failed:
            raise StyleBoostError(f"{paths[failed[0]]}: the image does not decode")
        yield indices, pixels
