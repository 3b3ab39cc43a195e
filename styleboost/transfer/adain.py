r"""AdaIN (Huang & Belongie 2017): feed-forward arbitrary style transfer. A frozen VGG19 encodes content and
style to relu4_1, adaptive instance normalisation gives the content features the style's per-channel mean
and std, ``alpha`` blends them with the content features, and a trained decoder turns them into an image.

The decoder mirrors the encoder (nearest upsampling, reflection padding); its widths are stored in its
safetensors metadata together with the encoder weights it was trained against, so a decoder is never run on
features of another encoder. The shipped decoder (``pretrained/adain_decoder.safetensors``, float16, loaded
back to float32) was trained against VGG19 with our fixed-seed random weights (``random-seed0-<fingerprint>``),
which is what runs offline here (see ``vgg``), on offline data, with exactly (two CPU threads; the README says
what it does and does not do)::

    export OMP_NUM_THREADS=2
    styleboost make-style-set /tmp/adain-ship/styleset --size 64 --train-contents 16 --heldout-contents 4
    python -c "from styleboost.transfer.training_data import write_contents; write_contents('/tmp/adain-ship/content', 160)"
    python train_scripts/train_adain.py --content_dir /tmp/adain-ship/content \
      --style_dir /tmp/adain-ship/styleset/train --output_dir /tmp/adain-ship/run4 --max_train_steps 1200 \
      --checkpointing_steps 200 --learning_rate 1e-3 --style_weight 1 --identity_weight 10 --half --no-progress
    cp /tmp/adain-ship/run4/decoder.safetensors styleboost/transfer/pretrained/adain_decoder.safetensors
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
from styleboost.transfer.vgg import RELU4_1, FrozenVGG, mean_std, weights_identity

FORMAT = "styleboost-adain-decoder/1"
PAPER_WIDTHS = (256, 128, 64)
SHIPPED_DECODER = Path(__file__).resolve().parent / "pretrained" / "adain_decoder.safetensors"
ENCODER_CHANNELS = 512  # relu4_1


def conv(c_in: int, c_out: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3)]
    return layers + [nn.ReLU()] if relu else layers


def upsample() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


class Decoder(nn.Sequential):
    """relu4_1 features (512 channels, 1/8 size) -> RGB image: the encoder mirrored, three 2x upsamplings."""

    def __init__(self, widths: tuple[int, int, int] = PAPER_WIDTHS) -> None:
        w0, w1, w2 = widths
        super().__init__(
            *conv(ENCODER_CHANNELS, w0), upsample(),
            *conv(w0, w0), *conv(w0, w0), *conv(w0, w0), *conv(w0, w1), upsample(),
            *conv(w1, w1), *conv(w1, w2), upsample(),
            *conv(w2, w2), *conv(w2, 3, relu=False),
        )
        self.widths = tuple(widths)


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor) -> torch.Tensor:
    """Content features normalised per channel, then given the style's mean and std."""
    mean, std = mean_std(content)
    return (content - mean) / std * style_std + style_mean


class AdaIN(nn.Module):
    """The frozen encoder and a decoder; ``transfer`` restyles, ``encode`` reads relu4_1 and earlier layers."""

    def __init__(self, decoder: Decoder, vgg_weights: str, source: str = "") -> None:
        super().__init__()
        self.encoder = FrozenVGG(RELU4_1, vgg_weights)
        self.decoder = decoder
        self.source = source

    def style_statistics(self, styles: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The style set's relu4_1 mean and std, averaged over its images (style interpolation, equal weights)."""
        with torch.no_grad():
            stats = [mean_std(self.encoder(style, [RELU4_1])[RELU4_1]) for style in styles]
        return torch.stack([m for m, _ in stats]).mean(0), torch.stack([s for _, s in stats]).mean(0)

    def transfer(self, content: torch.Tensor, target: tuple[torch.Tensor, torch.Tensor], alpha: float) -> torch.Tensor:
        features = self.encoder(content, [RELU4_1])[RELU4_1]
        blended = alpha * adain(features, *target) + (1 - alpha) * features
        return self.decoder(blended).clamp(0, 1)

    def identity(self) -> dict[str, str]:
        """What records say of the networks: the decoder file (and hash) and the encoder weights."""
        path = Path(self.source)
        sha = file_sha256(path)[:16] if path.is_file() else None
        return {"decoder": self.source, "decoder_sha256": sha, "vgg_weights": self.encoder.weights_id}


def save_decoder(decoder: Decoder, path: Path, vgg_weights_id: str, extra: dict[str, str] | None = None,
                 dtype: torch.dtype = torch.float32) -> Path:
    """The decoder as safetensors (``dtype``: float16 halves the file), its widths and encoder in the metadata,
    written under a temporary name."""
    metadata = {"format": FORMAT, "widths": json.dumps(list(decoder.widths)), "vgg_weights": vgg_weights_id,
                "dtype": str(dtype).removeprefix("torch."), **(extra or {})}
    state = {k: v.detach().to(dtype).contiguous().cpu() for k, v in decoder.state_dict().items()}
    replace_via_temporary(Path(path), lambda tmp: save_file(state, str(tmp), metadata))
    return Path(path)


def decoder_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise StyleBoostError(f"--decoder {path}: not a readable safetensors file ({err})") from None
    if metadata.get("format") != FORMAT:
        raise StyleBoostError(f"--decoder {path}: not an AdaIN decoder written by styleboost (format {FORMAT})")
    return metadata


def load_decoder(path: str | Path | None) -> tuple[Decoder, dict[str, str], Path]:
    """(decoder, its metadata, its path): the file given, else the shipped one."""
    file = Path(path).expanduser() if path else SHIPPED_DECODER
    if not file.is_file():
        raise StyleBoostError(f"--decoder {file}: file not found" + ("" if path else " (no shipped decoder)"))
    metadata = decoder_metadata(file)
    decoder = Decoder(tuple(json.loads(metadata["widths"])))
    try:
        decoder.load_state_dict({k: v.float() for k, v in load_file(str(file)).items()})  # float16 files too
    except RuntimeError as err:
        raise StyleBoostError(f"--decoder {file}: its weights do not fit its recorded widths ({str(err)[:120]})") from None
    return decoder.eval().requires_grad_(False), metadata, file


def load_adain(decoder_path: str | None, vgg_weights: str) -> AdaIN:
    """The AdaIN model of ``--decoder`` (default: shipped) on the encoder it was trained against."""
    decoder, metadata, file = load_decoder(decoder_path)
    if metadata["vgg_weights"] != weights_identity(vgg_weights):
        raise StyleBoostError(f"--decoder {file} was trained on VGG19 weights {metadata['vgg_weights']}, not "
                              f"{weights_identity(vgg_weights)} (--vgg-weights {vgg_weights})")
    return AdaIN(decoder, vgg_weights, str(file))
