"""Training a per-style encoder-decoder (adaptive style transfer, Sanakoyeu et al. 2018) on a StyleRef folder and
content images, for ``styleboost transfer --method encoder-decoder --model DIR``.

Each step: the discriminator learns to tell StyleRef images (real) from outputs ``D(E(x))`` and from the content
photos themselves (both fake); then the encoder and decoder learn to fool it, with two content terms:
the style-aware content loss ``||E(x) - E(D(E(x)))||^2`` in the encoder's own latent space, and the
transformed-image loss, the MSE of ``x`` and ``D(E(x))`` after a fixed ``pool`` x ``pool`` average pool (which
keeps the layout and lets the style change the texture). Generator loss =
``adversarial_weight`` x adversarial + ``content_weight`` x content + ``transformed_weight`` x transformed.

One job: these losses and settings, behind ``train_scripts/train_transfer.py`` and ``train_transfer(config)``;
the loop, checkpoints (both optimizers, the discriminator, the RNG) and exact resume are the shared
``trainer``'s, the images and the batches by (seed, step) ``training_data``'s. The output folder is a model
folder (``encoder_decoder``) with ``run.json`` (status, losses before/after on a fixed batch, train_seconds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from styleboost.core.settings import option
from styleboost.transfer import trainer
from styleboost.transfer.encoder_decoder import Discriminator, EncoderDecoder, save_model
from styleboost.transfer.inputs import style_set_record
from styleboost.transfer.trainer import Job, LoopSettings, seeded, train_job
from styleboost.transfer.training_data import FIXED_BATCH, FIXED_STEP, draw_batch, image_stack, images_under


@dataclass(kw_only=True)
class TransferTrainConfig(LoopSettings):
    """Every setting of an encoder-decoder training run (YAML keys and flags alike)."""

    styleref_dir: str = option(help="The style collection: a StyleRef folder (images; captions are ignored).")
    max_train_steps: int = option(200, "Optimizer steps (of each of the two optimizers).")
    learning_rate: float = option(2e-4, "Adam learning rate of the encoder-decoder and the discriminator.")
    checkpointing_steps: int = option(100, "Save resumable state every N steps.")
    adversarial_weight: float = option(1.0, "Weight of the adversarial term.")
    content_weight: float = option(10.0, "Weight of the style-aware content loss (in the encoder's latent space).")
    transformed_weight: float = option(100.0, "Weight of the transformed-image loss (MSE after average pooling).")
    pool: int = option(4, "Side of the transformed-image loss's average pool, in pixels.")
    widths: list[int] = option([16, 32, 64], "Encoder widths at full, 1/2 and 1/4 size (the decoder mirrors them).")


def config_from_args(argv: list[str] | None = None, prog: str | None = None) -> TransferTrainConfig:
    return trainer.config_from_args(TransferTrainConfig, argv, prog, "Train a per-style encoder-decoder.")


def adversarial(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


class EncoderDecoderJob(Job):
    """The encoder-decoder, the discriminator and their two Adam optimizers, for the shared loop."""

    name = "encoder-decoder"

    def __init__(self, cfg: TransferTrainConfig) -> None:
        self.cfg = cfg
        self.style_files = images_under(cfg.styleref_dir, "--styleref_dir")
        self.styles = image_stack(self.style_files, cfg.size)
        self.contents = image_stack(images_under(cfg.content_dir, "--content_dir"), cfg.size)
        model = seeded(cfg.seed, lambda: EncoderDecoder(tuple(cfg.widths)))
        critic = seeded(cfg.seed + 1, Discriminator)
        betas = (0.5, 0.999)
        super().__init__([model, critic], [torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, betas=betas),
                                           torch.optim.Adam(critic.parameters(), lr=cfg.learning_rate, betas=betas)])

    def batches(self, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        return (draw_batch(self.contents, size, cfg.seed, step, 0), draw_batch(self.styles, size, cfg.seed, step, 1))

    def critic_loss(self, content: torch.Tensor, style: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        critic = self.modules[1]
        fake = (adversarial(critic(output), False) + adversarial(critic(content), False)) / 2
        return adversarial(critic(style), True) + fake

    def generator_losses(self, content: torch.Tensor, output: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, (model, critic) = self.cfg, self.modules
        model = self.accelerator.unwrap_model(model)
        terms = {"adversarial": adversarial(critic(output), True),
                 "content": F.mse_loss(model.encoder(output), model.encoder(content)),
                 "transformed": F.mse_loss(F.avg_pool2d(output, cfg.pool, 1), F.avg_pool2d(content, cfg.pool, 1))}
        terms["loss"] = (cfg.adversarial_weight * terms["adversarial"] + cfg.content_weight * terms["content"]
                         + cfg.transformed_weight * terms["transformed"])
        return terms

    def step(self, step: int) -> dict[str, float]:
        (model, critic), (optimizer, critic_optimizer) = self.modules, self.optimizers
        content, style = self.batches(step, self.cfg.batch_size)
        output = model(content)
        critic.requires_grad_(True)
        critic_loss = self.critic_loss(content, style, output.detach())
        critic_optimizer.zero_grad()
        self.accelerator.backward(critic_loss)
        critic_optimizer.step()
        critic.requires_grad_(False)  # the generator's step moves only the encoder-decoder
        terms = self.generator_losses(content, output)
        optimizer.zero_grad()
        self.accelerator.backward(terms["loss"])
        optimizer.step()
        return {"discriminator": critic_loss.item(), **{k: v.item() for k, v in terms.items()}}

    def fixed_loss(self) -> dict[str, float]:
        with torch.no_grad():
            content, style = self.batches(FIXED_STEP, FIXED_BATCH)
            output = self.modules[0](content)
            terms = {"discriminator": self.critic_loss(content, style, output),
                     **self.generator_losses(content, output)}
        return {k: round(v.item(), 6) for k, v in terms.items()}

    def export(self, out: Path) -> dict[str, Any]:
        cfg = self.cfg
        style = style_set_record(cfg.styleref_dir, self.style_files)
        path = save_model(self.unwrapped()[0], out, {"steps": str(cfg.max_train_steps), "size": str(cfg.size),
                                                     "seed": str(cfg.seed), "style": json.dumps(style)})
        return {"exported": str(path)}


def train_transfer(cfg: TransferTrainConfig) -> Path:
    """Train, checkpoint and export the encoder-decoder of ``cfg.styleref_dir``; returns the output (model) folder,
    whose run.json has status "finished" and train_seconds."""
    return train_job(cfg, EncoderDecoderJob)
