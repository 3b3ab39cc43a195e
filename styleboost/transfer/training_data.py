"""What the transfer trainers read: the images of a folder as one tensor, the batch of each step, and offline
content images.

One job: the data side shared by ``adain_training`` and ``transfer_training``. Every image of a folder (searched
recursively) is decoded and centre-cropped once to a square tensor; each step's batch is drawn from a generator
seeded by (seed, step, stream), so a resumed run sees exactly the batches an uninterrupted one would. Step 0 is
never trained: its draw is the fixed batch the loss is measured on before and after training.

``write_contents`` renders plain (unstyled) content images offline: the synthetic style set's contents (crops
of scikit-image's sample photos and procedural scenes of people, houses, trees, landscapes), with no style
applied, for training a decoder where no photo collection can be downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from styleboost.core.atomic import save_image_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.images import IMAGE_SUFFIXES, survey
from styleboost.styles.synthstyle import make_contents
from styleboost.transfer.inputs import load_tensor

FIXED_STEP = 0  # the draw of the fixed batch: training steps start at 1
FIXED_BATCH = 8  # its size: the losses before and after training are measured on it


def images_under(folder: str | Path, flag: str) -> list[Path]:
    """Every image file under ``folder`` (sub-folders too) that decodes; one line for a missing or empty folder."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise StyleBoostError(f"{flag} {root}: folder not found")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise StyleBoostError(f"{flag} {root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return [info.path for info in survey(files, flag=f"{flag} {root}")]


def image_stack(files: list[Path], size: int) -> torch.Tensor:
    """The images centre-cropped to ``size`` squares: ``(N, 3, size, size)`` in 0..1."""
    return torch.cat([load_tensor(p, size, square=True) for p in files])


def draw_batch(images: torch.Tensor, batch_size: int, seed: int, step: int, stream: int) -> torch.Tensor:
    """The batch of ``step``: indices from a generator seeded by (seed, step, stream), the same on every resume."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + 8 * step + stream)
    return images[torch.randint(len(images), (batch_size,), generator=generator)]


def write_contents(folder: str | Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """``count`` plain synthetic content images (photo crops and scenes, no style) as PNGs in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for content in make_contents("train", count, size=size, seed=seed):
        save_image_atomic(content.image, folder / f"{content.id}.png")
    return folder
