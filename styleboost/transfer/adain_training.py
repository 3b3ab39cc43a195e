"""Training the AdaIN decoder (Huang & Belongie 2017): content and style images through the frozen VGG19 encoder,
AdaIN, the decoder, and the encoder again; content loss (decoded image's relu4_1 against the AdaIN target) plus
``style_weight`` x style loss (its mean and std at relu1_1..relu4_1 against the style image's), plus, when
``identity_weight`` > 0, an identity loss that is not in the AdaIN paper: the L1 distance between a content or
style image and the decoding of its own features (SANet's pixel identity loss, Park & Lee 2019). Against our
random-weight encoder the paper's losses alone leave the decoder unable to give back the content after hundreds
of steps (0.15 mean error on 0..1); the identity term teaches it to invert the encoder first.

One job: the AdaIN losses and settings behind ``train_scripts/train_adain.py``; the loop, checkpoints and exact
resume (``--resume_from_checkpoint latest``) are the shared ``trainer``'s, the images and batches by (seed, step)
``training_data``'s.

Output folder::

    decoder.safetensors   the trained decoder (widths and encoder weights in its metadata), for --decoder
    checkpoint-N/         accelerate state (decoder, optimizer, RNG), for --resume_from_checkpoint
    run.json              settings, versions, the loss on a fixed batch before and after, seconds
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import option
from styleboost.transfer import trainer
from styleboost.transfer.adain import AdaIN, Decoder, adain, save_decoder
from styleboost.transfer.trainer import Job, LoopSettings, seeded, train_job
from styleboost.transfer.training_data import FIXED_BATCH, FIXED_STEP, draw_batch, image_stack, images_under
from styleboost.transfer.vgg import ADAIN_STYLE_LAYERS, RELU4_1, mean_std

DECODER_FILE = "decoder.safetensors"


@dataclass(kw_only=True)
class AdainTrainConfig(LoopSettings):
    """Every setting of an AdaIN decoder training run (YAML keys and flags alike)."""

    style_dir: str = option(help="Style images: a folder, searched recursively (e.g. the synthetic style set's train/).")
    style_weight: float = option(10.0, "Weight of the style loss (the paper's lambda).")
    identity_weight: float = option(0.0, "Weight of the pixel identity loss |D(E(x)) - x| on the content and style "
                                         "images (not in the paper; 0: the paper's losses only).")
    widths: list[int] = option([128, 64, 32], "Decoder widths at 1/8, 1/4 and 1/2 size (the paper: 256 128 64).")
    vgg_weights: str = option("random", "Encoder VGG19 weights: torchvision, a .safetensors file, or random.")
    half: bool = option(False, "Write decoder.safetensors in float16 (half the size; loaded back to float32).")

    def validate(self) -> None:
        super().validate()
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise StyleBoostError(f"--widths {self.widths}: three positive widths")


def config_from_args(argv: list[str] | None = None, prog: str | None = None) -> AdainTrainConfig:
    return trainer.config_from_args(AdainTrainConfig, argv, prog, "Train an AdaIN decoder.")


def adain_losses(model: AdaIN, decoder, content: torch.Tensor, style: torch.Tensor,
                 style_weight: float, identity_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """The paper's content loss (at relu4_1, against the AdaIN target) and style loss (mean/std, relu1_1..4_1),
    and with ``identity_weight`` the pixel identity loss of both inputs decoded from their own features."""
    with torch.no_grad():
        style_maps = model.encoder(style, ADAIN_STYLE_LAYERS)
        content_features = model.encoder(content, [RELU4_1])[RELU4_1]
        target = adain(content_features, *mean_std(style_maps[RELU4_1]))
    decoded_maps = model.encoder(decoder(target), ADAIN_STYLE_LAYERS)
    content_loss = F.mse_loss(decoded_maps[RELU4_1], target)
    style_loss = sum(F.mse_loss(a, b) for i in ADAIN_STYLE_LAYERS
                     for a, b in zip(mean_std(decoded_maps[i]), mean_std(style_maps[i])))
    terms = {"content": content_loss, "style": style_loss, "loss": content_loss + style_weight * style_loss}
    if identity_weight:
        own = torch.cat([content_features, style_maps[RELU4_1]])
        terms["identity"] = F.l1_loss(decoder(own), torch.cat([content, style]))
        terms["loss"] = terms["loss"] + identity_weight * terms["identity"]
    return terms


class AdainJob(Job):
    """The decoder, its Adam optimizer, and the content and style images, for the shared loop."""

    name = "adain decoder"

    def __init__(self, cfg: AdainTrainConfig) -> None:
        self.cfg = cfg
        self.contents = image_stack(images_under(cfg.content_dir, "--content_dir"), cfg.size)
        self.styles = image_stack(images_under(cfg.style_dir, "--style_dir"), cfg.size)
        decoder = seeded(cfg.seed, lambda: Decoder(tuple(cfg.widths)))
        self.model = AdaIN(decoder, cfg.vgg_weights)
        super().__init__([decoder], [torch.optim.Adam(decoder.parameters(), lr=cfg.learning_rate)])

    def losses(self, step: int, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        content = draw_batch(self.contents, batch_size, cfg.seed, step, 0)
        style = draw_batch(self.styles, batch_size, cfg.seed, step, 1)
        return adain_losses(self.model, self.modules[0], content, style, cfg.style_weight, cfg.identity_weight)

    def step(self, step: int) -> dict[str, float]:
        terms = self.losses(step, self.cfg.batch_size)
        self.accelerator.backward(terms["loss"])
        optimizer = self.optimizers[0]
        optimizer.step()
        optimizer.zero_grad()
        return {k: v.item() for k, v in terms.items()}

    def fixed_loss(self) -> dict[str, float]:
        with torch.no_grad():
            terms = self.losses(FIXED_STEP, FIXED_BATCH)
        return {k: round(v.item(), 6) for k, v in terms.items()}

    def export(self, out: Path) -> dict[str, Any]:
        cfg = self.cfg
        extra = {"steps": str(cfg.max_train_steps), "size": str(cfg.size), "seed": str(cfg.seed)}
        save_decoder(self.unwrapped()[0], out / DECODER_FILE, self.model.encoder.weights_id, extra,
                     dtype=torch.float16 if cfg.half else torch.float32)
        return {"exported": str(out / DECODER_FILE)}


def train_adain(cfg: AdainTrainConfig) -> Path:
    """Train, checkpoint and export the decoder; returns the output folder."""
    return train_job(cfg, AdainJob)
