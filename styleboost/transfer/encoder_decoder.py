"""A per-style encoder-decoder after adaptive style transfer (Sanakoyeu et al. 2018, "A Style-Aware Content
Loss for Real-time HD Style Transfer"), kept small enough to train on one CPU thread.

One job: the networks and their file. An encoder ``E`` (a 7x7 convolution and two stride-2 ones, instance
norm) maps an image to a latent at 1/4 size; a decoder ``D`` (residual blocks, two nearest 2x upsamplings, a
7x7 convolution, a sigmoid) draws the image in the style it was trained on; a patch ``Discriminator`` tells
the style collection from outputs and photos while training. ``transfer_training`` trains them; here a model
folder is written and read back, and ``EncoderDecoder.restyle`` is the feed-forward transfer.

Model folder (the trainer's output folder)::

    model.safetensors   encoder.* and decoder.* weights; widths, steps, size and the StyleRef set in the metadata
    run.json            the training run (settings, losses before/after, train_seconds)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from styleboost.core.atomic import replace_via_temporary
from styleboost.core.errors import StyleBoostError
from styleboost.core.images import file_sha256

FORMAT = "styleboost-encoder-decoder/1"
MODEL_FILE = "model.safetensors"
DEFAULT_WIDTHS = (16, 32, 64)


def conv_block(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride),
            nn.InstanceNorm2d(c_out, affine=True), nn.ReLU()]


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_block(width, width), nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3),
                                  nn.InstanceNorm2d(width, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Sequential):
    """RGB (0..1) -> latent of ``widths[2]`` channels at 1/4 size."""

    def __init__(self, widths: tuple[int, int, int] = DEFAULT_WIDTHS) -> None:
        w0, w1, w2 = widths
        super().__init__(*conv_block(3, w0, 7), *conv_block(w0, w1, 3, 2), *conv_block(w1, w2, 3, 2))


class Decoder(nn.Sequential):
    """Latent -> RGB in 0..1: two residual blocks, two 2x upsamplings."""

    def __init__(self, widths: tuple[int, int, int] = DEFAULT_WIDTHS) -> None:
        w0, w1, w2 = widths
        super().__init__(Residual(w2), Residual(w2),
                         nn.Upsample(scale_factor=2, mode="nearest"), *conv_block(w2, w1),
                         nn.Upsample(scale_factor=2, mode="nearest"), *conv_block(w1, w0),
                         nn.ReflectionPad2d(3), nn.Conv2d(w0, 3, 7), nn.Sigmoid())


class Discriminator(nn.Sequential):
    """A patch discriminator: one logit per patch, "this is the style collection"."""

    def __init__(self, width: int = 32) -> None:
        super().__init__(
            nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.InstanceNorm2d(2 * width, affine=True), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 2 * width, 4, 2, 1), nn.InstanceNorm2d(2 * width, affine=True), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )


class EncoderDecoder(nn.Module):
    """``E`` and ``D`` of one style; ``restyle`` is ``D(E(x))``."""

    def __init__(self, widths: tuple[int, int, int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.encoder, self.decoder = Encoder(self.widths), Decoder(self.widths)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image))

    def restyle(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self(image).clamp(0, 1)


def save_model(model: EncoderDecoder, folder: Path, metadata: dict[str, str]) -> Path:
    """``folder/model.safetensors`` (float32), its widths and ``metadata`` in the header, written atomically."""
    path = Path(folder) / MODEL_FILE
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    header = {"format": FORMAT, "widths": json.dumps(list(model.widths)), **metadata}
    replace_via_temporary(path, lambda tmp: save_file(state, str(tmp), header))
    return path


def load_model(folder: str | Path) -> tuple[EncoderDecoder, dict[str, str], Path]:
    """(model, its metadata, its file) of a ``train_transfer.py`` output folder; one line if it is not one."""
    root = Path(folder).expanduser()
    path = root / MODEL_FILE
    if not root.is_dir():
        raise StyleBoostError(f"--model {root}: folder not found")
    if not path.is_file():
        raise StyleBoostError(f"--model {root}: no {MODEL_FILE} (train one with train_scripts/train_transfer.py)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise StyleBoostError(f"--model {path}: not a readable safetensors file ({err})") from None
    if metadata.get("format") != FORMAT:
        raise StyleBoostError(f"--model {path}: not an encoder-decoder written by styleboost (format {FORMAT})")
    model = EncoderDecoder(tuple(json.loads(metadata["widths"])))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise StyleBoostError(f"--model {path}: weights do not fit the recorded widths ({str(err)[:120]})") from None
    return model.eval().requires_grad_(False), metadata, path


def model_identity(folder: str | Path, metadata: dict[str, str], path: Path) -> dict[str, object]:
    """What records say of a model: its folder, file hash, training steps and size."""
    return {"model_dir": str(Path(folder).expanduser()), "model_sha256": file_sha256(path)[:16],
            "model_steps": int(metadata.get("steps", 0)), "model_size": int(metadata.get("size", 0))}
