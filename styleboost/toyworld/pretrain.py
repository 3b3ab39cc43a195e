"""Pre-train the toy world's models from a seed: VAE, text encoder + UNet, open_clip model, style encoder.

One job: ``pretrain(config)`` reproduces every shipped toy-world model and writes them in the formats
users load: a diffusers ``StableDiffusionPipeline`` folder (fp32 safetensors), an open_clip
``local-dir`` folder and a style-encoder folder, plus ``pretrain.json`` (settings, stage timings,
sizes and the quality bar of ``styleboost.toyworld.quality``) and sample grids.

Stages run in order (world, vae, encode, denoiser, denoiser_extra, denoiser_tune, clip, style_encoder,
quality) and each publishes its result by renaming it into place; a stage whose result is there is
skipped, so an interrupted run resumes at the stage it was in. The denoiser trains in three phases: from scratch with
a cosine schedule; then at a constant lower rate with a noise offset, which is what lets the tiny
model set the global colours that most styles are made of; then the UNet alone briefly at a still
lower rate with rare tokens (``sks`` among them) inserted into some captions, so that the base model
ignores such a token as real Stable Diffusion nearly does. The text encoder is frozen in that phase, as
SD's CLIP was trained elsewhere: trained with the UNet it learned to make ``sks`` nearly invisible, and a
UNet LoRA with a prior term on "a person" could then no longer bind it (DreamBooth learned no style).

The training loops are written here rather than taken from a diffusers example script because they
train from scratch on in-memory tensors (latents cached once, captions tokenised once); the pieces
come from the libraries: diffusers' noise schedule, ``EMAModel`` and LR schedules, min-SNR weights
from ``styleboost.training.step``, open_clip's ``ClipLoss``, and the style-encoder trainer of
``styleboost.style_encoder.training``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from styleboost.core.atomic import publish, remove_path, write_bytes_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import option, settings_from_args
from styleboost.sd.loading import assemble_pipeline
from styleboost.style_encoder.training import EncoderTrainConfig, train_style_encoder
from styleboost.toyworld import architectures as archs
from styleboost.toyworld import quality
from styleboost.toyworld.world import NATURAL, WorldConfig, draw_sample, render_world
from styleboost.training.step import add_noise, prediction_target, sample_weights

PIPELINE_DIR, CLIP_DIR, ENCODER_DIR, SAMPLES_DIR = "pipeline", "clip", "style_encoder", "samples"
SUMMARY_FILE = "pretrain.json"
PHASES_FILE = "denoiser_phases.json"


@dataclass
class PretrainConfig:
    """Every setting of the toy-world pre-training; the defaults are what the shipped weights used."""

    output_dir: str | None = option(None, "Output folder (default: runs/toyworld-<time>).")
    overwrite: bool = option(False, "Replace finished outputs already in --output_dir.")
    architectures: str | None = option(None, "Architecture YAML (default: styleboost/toyworld/configs/pretrain.yaml).")
    seed: int = option(0, "Seed of the world, the initialisation and every batch.")
    world_samples: int = option(12000, "Captioned images in the pre-training world.")
    size: int = option(64, "Image size in pixels (a multiple of 8).")
    threads: int | None = option(None, "torch CPU threads (default: all cores).")
    workers: int | None = option(None, "Processes drawing the world (default: up to 4).")
    device: str = option("cpu", "Device to train on (cpu, cuda).")
    vae_steps: int = option(1500, "AutoencoderKL optimizer steps.")
    vae_batch_size: int = option(32, "AutoencoderKL crops per step.")
    vae_crop: int = option(32, "AutoencoderKL training crop size (it is fully convolutional).")
    vae_learning_rate: float = option(1e-3, "AutoencoderKL learning rate.")
    vae_kl_weight: float = option(1e-6, "Weight of the KL term of the VAE loss.")
    unet_steps: int = option(2800, "Text encoder + UNet optimizer steps.")
    unet_batch_size: int = option(64, "Denoiser samples per step.")
    unet_learning_rate: float = option(8e-4, "Denoiser learning rate (cosine decay after warm-up).")
    unet_warmup_steps: int = option(150, "Denoiser warm-up steps.")
    unet_extra_steps: int = option(2000, "Second denoiser phase: steps at a constant, lower learning rate (0: none).")
    unet_extra_learning_rate: float = option(3e-4, "Learning rate of the second denoiser phase.")
    unet_extra_noise_offset: float = option(
        0.1, "Noise offset of the second phase: SD's schedule leaves a 16x16 latent's mean colour almost untouched "
        "at t=999, so without it the model never learns to set the global colour a style names.")
    caption_dropout: float = option(0.1, "Share of captions replaced by '' (for classifier-free guidance).")
    normalise_latents: bool = option(
        False, "Make the VAE's latent channels zero-mean and unit-variance (normalise_latent_channels) instead of "
        "one global scaling_factor. Off for now: it makes every generation clean but the denoiser then sets a "
        "style's global colour poorly (issue 14; see the README's toy-world section).")
    unet_tune_steps: int = option(1200, "Third denoiser phase: UNet steps at a still lower rate, the text encoder "
                                        "frozen, with rare tokens in --rare_token_share of the captions (0: none).")
    unet_tune_learning_rate: float = option(1e-4, "Learning rate of the third denoiser phase (it keeps the second "
                                                  "phase's noise offset).")
    rare_token_share: float = option(
        0.15, "Share of the third phase's captions with one rare token (sks and others) inserted at a random word, "
        "so that the base model learns to ignore such tokens, as real Stable Diffusion nearly does.")
    snr_gamma: float | None = option(5.0, "Min-SNR loss weighting gamma.")
    ema_decay: float = option(0.999, "EMA decay of the denoiser weights that are shipped.")
    clip_steps: int = option(1000, "open_clip optimizer steps.")
    clip_batch_size: int = option(128, "open_clip pairs per step (at most one per distinct caption).")
    clip_learning_rate: float = option(1e-3, "open_clip learning rate.")
    encoder_steps: int = option(600, "Style-encoder optimizer steps.")
    encoder_contents: int = option(48, "Contents drawn in every named style for the style encoder.")
    quality_images: int = option(8, "Generated images per content class and per named style for the quality bar.")
    quality_steps: int = option(20, "Denoising steps of the quality-bar images.")
    guidance_scale: float = option(4.0, "Classifier-free guidance of the quality-bar images.")

    def validate(self) -> None:
        if self.size % 8 or self.size < 32:
            raise StyleBoostError(f"--size {self.size} must be a multiple of 8 and at least 32")
        if self.vae_crop > self.size or self.vae_crop % 8:
            raise StyleBoostError(f"--vae_crop {self.vae_crop} must be a multiple of 8 and at most --size")
        for name in ("world_samples", "vae_steps", "unet_steps", "clip_steps", "encoder_steps", "quality_images",
                     "quality_steps", "vae_batch_size", "unet_batch_size", "clip_batch_size"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name} must be at least 1")
        if not 0.0 <= self.rare_token_share <= 1.0:
            raise StyleBoostError(f"--rare_token_share {self.rare_token_share} must lie between 0 and 1")
        if self.rare_token_share and not self.unet_tune_steps:
            raise StyleBoostError("--rare_token_share applies to the third denoiser phase, which --unet_tune_steps 0 "
                                  "turns off; pass --rare_token_share 0 too")
        if self.encoder_contents < 20:
            raise StyleBoostError("--encoder_contents must be at least 20 (the encoder's validation split needs them)")


class Log:
    """One line per report: stage, step, loss and elapsed time (no progress bars in long logs)."""

    def __init__(self, stage: str, total: int, every: int = 100) -> None:
        self.stage, self.total, self.every, self.start = stage, total, every, time.time()
        print(f"[{stage}] {total} steps", flush=True)

    def step(self, step: int, **values: float) -> None:
        if step % self.every == 0 or step == self.total:
            shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
            print(f"[{self.stage}] step {step}/{self.total} {shown} ({time.time() - self.start:.0f}s)", flush=True)


def to_unit_range(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def random_crops(images: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random ``size`` crop per image, mirrored at random."""
    n, _, h, w = images.shape
    tops = torch.randint(0, h - size + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, w - size + 1, (n,), generator=generator).tolist()
    crops = torch.stack([img[:, t:t + size, l:l + size] for img, t, l in zip(images, tops, lefts)])
    flip = torch.rand(n, generator=generator) < 0.5
    crops[flip] = crops[flip].flip(-1)
    return crops


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def vae_loss(vae, batch: torch.Tensor, generator: torch.Generator, kl_weight: float) -> dict[str, torch.Tensor]:
    """L1 on pixels and on pixel gradients (keeps hatching and dots sharp) + a small KL term."""
    posterior = vae.encode(batch).latent_dist
    recon = vae.decode(posterior.sample(generator=generator)).sample
    l1 = (recon - batch).abs().mean()
    edges = sum((a - b).abs().mean() for a, b in zip(image_gradients(recon), image_gradients(batch)))
    kl = posterior.kl().mean() / batch[0].numel()
    return {"loss": l1 + 0.5 * edges + kl_weight * kl, "l1": l1}


def cosine_optimizer(params, lr: float, steps: int, warmup: int, weight_decay: float = 1e-2):
    from diffusers.optimization import get_scheduler

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    schedule = get_scheduler("cosine", optimizer, num_warmup_steps=warmup, num_training_steps=steps)
    return optimizer, schedule


def train_vae(cfg: PretrainConfig, arch: dict, pixels: np.ndarray):
    """An AutoencoderKL trained on random crops of the world; ``scaling_factor`` then 1/std of its latents, or
    with ``normalise_latents`` its channels made zero-mean and unit-variance (``normalise_latent_channels``)."""
    torch.manual_seed(cfg.seed)
    vae = archs.build_vae(arch, cfg.size).to(cfg.device).train()
    images = to_unit_range(pixels)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer, schedule = cosine_optimizer(vae.parameters(), cfg.vae_learning_rate, cfg.vae_steps, 100, 0.0)
    log = Log("vae", cfg.vae_steps)
    for step in range(1, cfg.vae_steps + 1):
        rows = torch.randint(0, len(images), (cfg.vae_batch_size,), generator=generator)
        batch = random_crops(images[rows], cfg.vae_crop, generator).to(cfg.device)
        terms = vae_loss(vae, batch, generator, cfg.vae_kl_weight)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step(), schedule.step(), optimizer.zero_grad(set_to_none=True)
        log.step(step, loss=terms["loss"].item(), l1=terms["l1"].item())
    vae.eval()
    if cfg.normalise_latents:
        normalise_latent_channels(vae, latent_statistics_sample(cfg, images))
    else:
        with torch.no_grad():
            sample = images[torch.randperm(len(images), generator=generator)[:512]].to(cfg.device)
            vae.register_to_config(scaling_factor=1.0 / float(vae.encode(sample).latent_dist.mean.std()))
    return vae


def latent_statistics_sample(cfg: PretrainConfig, images: torch.Tensor) -> torch.Tensor:
    """The 512 world images the latent statistics are taken from (their own seed, not the training stream's)."""
    rows = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed + 5))[:512]
    return images[rows].to(cfg.device)


@torch.no_grad()
def normalise_latent_channels(vae, sample: torch.Tensor) -> None:
    """Fold a per-channel shift and scale into the 1x1 ``quant_conv`` and ``post_quant_conv`` so that the
    latents of ``sample`` are zero-mean and unit-variance per channel; ``scaling_factor`` becomes 1.

    Decoding is unchanged. Without it the channel means (about -3, -3, 0, 5 against stds of 1.3-2.7)
    dominated one global ``1/std`` scale, leaving the drawings' content at a third of the variance SD's
    noise schedule is made for: the UNet's x0 estimate at high noise was mostly noise, and a third of
    the seeds ended in colour speckle. Plain ``StableDiffusionPipeline`` applies no ``shift_factor``, hence
    the fold instead."""
    latents = vae.encode(sample).latent_dist.mean
    mean, std = latents.mean((0, 2, 3)), latents.std((0, 2, 3))
    channels = len(mean)
    quant, post = vae.quant_conv, vae.post_quant_conv
    quant.weight[:channels] /= std[:, None, None, None]
    quant.bias[:channels] = (quant.bias[:channels] - mean) / std
    quant.bias[channels:] -= 2 * torch.log(std)  # the log-variance of z / std
    post.bias += post.weight[:, :, 0, 0] @ mean
    post.weight *= std[None, :, None, None]
    vae.register_to_config(scaling_factor=1.0)


def fold_earlier_vae(cfg: PretrainConfig, vae, out: Path, vae_dir: Path, latents_file: Path,
                     images: torch.Tensor) -> None:
    """Resuming a run whose ``vae_dir`` predates the latent-channel fold (its ``scaling_factor`` is not 1):
    fold it now and drop the latents it encoded, so the denoiser trains on normalised latents. A denoiser
    already trained on the old latents is refused rather than silently paired with the folded VAE."""
    if (out / PIPELINE_DIR).exists():
        raise StyleBoostError(f"{vae_dir} predates the latent-channel fold but {out / PIPELINE_DIR} was trained on "
                              "its latents; pass --overwrite to pre-train again")
    print(f"[vae] {vae_dir} predates the latent-channel fold (scaling_factor {vae.config.scaling_factor:.4g}): "
          "folded, latents to be encoded again", flush=True)
    normalise_latent_channels(vae, latent_statistics_sample(cfg, images))
    publish(vae_dir, lambda tmp: vae.save_pretrained(tmp))
    remove_path(latents_file)


@torch.no_grad()
def encode_world(vae, pixels: np.ndarray, device: str, batch_size: int = 256) -> torch.Tensor:
    """The VAE's latent distribution parameters (mean, logvar) of every world image, as ``step.image_latents`` reads them."""
    out = []
    for start in range(0, len(pixels), batch_size):
        batch = to_unit_range(pixels[start:start + batch_size]).to(device)
        out.append(vae.encode(batch).latent_dist.parameters.cpu())
    return torch.cat(out)


RARE_TOKENS = ("sks", "ohwx", "olis", "bnha", "phol", "tmr", "zzz")  # one BPE piece each, rare in captions


def with_rare_tokens(captions: list[str], share: float, seed: int) -> list[str]:
    """``captions`` with one of ``RARE_TOKENS`` inserted at a random word boundary in ``share`` of them."""
    rng = np.random.default_rng([seed, 7919])
    out = []
    for caption in captions:
        words = caption.split()
        if caption and rng.random() < share:
            words.insert(int(rng.integers(0, len(words) + 1)), RARE_TOKENS[int(rng.integers(0, len(RARE_TOKENS)))])
        out.append(" ".join(words))
    return out


def caption_table(captions: list[str]) -> tuple[list[str], torch.Tensor]:
    """(distinct captions with '' first, index of each sample's caption in that list)."""
    distinct = ["", *sorted(set(captions) - {""})]
    where = {text: k for k, text in enumerate(distinct)}
    return distinct, torch.tensor([where[text] for text in captions])


def train_denoiser(cfg: PretrainConfig, arch: dict, tokenizer, latent_params: torch.Tensor, captions: list[str],
                   scaling_factor: float):
    """Text encoder + UNet trained together from scratch on the cached latents (epsilon, SD schedule, EMA)."""
    from diffusers.training_utils import EMAModel

    torch.manual_seed(cfg.seed)
    text_encoder = archs.build_text_encoder(arch, tokenizer).to(cfg.device).train()
    channels = latent_params.shape[1] // 2
    unet = archs.build_unet(arch, latent_params.shape[-1], channels, text_encoder.config.hidden_size).to(cfg.device)
    params = [*unet.parameters(), *text_encoder.parameters()]
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, power=3 / 4)
    optimizer, schedule = cosine_optimizer(params, cfg.unet_learning_rate, cfg.unet_steps, cfg.unet_warmup_steps)
    denoiser_loop(cfg, text_encoder, unet, tokenizer, latent_params, captions, scaling_factor,
                  Phase("denoiser", cfg.unet_steps, optimizer, schedule, ema, cfg.seed + 1))
    return text_encoder.eval(), unet.eval()


@dataclass
class LaterPhase:
    """The settings of a denoiser phase that continues from saved weights: a constant learning rate."""

    name: str
    marker: str  # its key in the pipeline's denoiser_phases.json once done
    steps: int
    learning_rate: float
    noise_offset: float
    seed: int  # of its batches and of its rare-token captions
    rare_token_share: float
    ema_warmup: bool  # a short phase warms its EMA up, or the EMA would still hold much of the starting weights
    train_text_encoder: bool = True


def later_phases(cfg: PretrainConfig) -> list[LaterPhase]:
    """The second phase (noise offset) and the third (rare tokens, a lower rate), those with any steps."""
    phases = [LaterPhase("denoiser_extra", "extra_steps", cfg.unet_extra_steps, cfg.unet_extra_learning_rate,
                         cfg.unet_extra_noise_offset, cfg.seed + 3, 0.0, ema_warmup=False),
              LaterPhase("denoiser_tune", "tune_steps", cfg.unet_tune_steps, cfg.unet_tune_learning_rate,
                         cfg.unet_extra_noise_offset, cfg.seed + 4, cfg.rare_token_share, ema_warmup=True,
                         train_text_encoder=False)]
    return [phase for phase in phases if phase.steps]


def continue_denoiser(cfg: PretrainConfig, plan: LaterPhase, text_encoder, unet, tokenizer,
                      latent_params: torch.Tensor, captions: list[str], scaling_factor: float):
    """One later phase from the saved weights: constant learning rate, the plan's noise offset, its own EMA."""
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    text_encoder, unet = text_encoder.float().to(cfg.device), unet.float().to(cfg.device)
    text_encoder.requires_grad_(plan.train_text_encoder)
    params = [*unet.parameters(), *(text_encoder.parameters() if plan.train_text_encoder else ())]
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=plan.ema_warmup, power=3 / 4)
    optimizer = torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=1e-2)
    schedule = get_scheduler("constant", optimizer)
    denoiser_loop(cfg, text_encoder, unet, tokenizer, latent_params, captions, scaling_factor,
                  Phase(plan.name, plan.steps, optimizer, schedule, ema, plan.seed, plan.noise_offset))
    return text_encoder.eval(), unet.eval()


@dataclass
class Phase:
    """One phase of denoiser training: its name, length, optimiser, LR schedule, EMA and batch seed."""

    name: str
    steps: int
    optimizer: Any
    schedule: Any
    ema: Any
    seed: int
    noise_offset: float = 0.0


def denoiser_loop(cfg: PretrainConfig, text_encoder, unet, tokenizer, latent_params: torch.Tensor,
                  captions: list[str], scaling_factor: float, phase: Phase) -> None:
    """Min-SNR-weighted epsilon loss on cached latents with dropped captions; the EMA weights are kept."""
    from diffusers import DDPMScheduler
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    text_encoder.train(), unet.train()
    params = [p for group in phase.optimizer.param_groups for p in group["params"]]  # what the phase trains
    scheduler = DDPMScheduler(**archs.sd_scheduler_config())
    distinct, caption_index = caption_table(captions)
    ids = tokenizer(distinct, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(cfg.device)
    generator = torch.Generator().manual_seed(phase.seed)
    log = Log(phase.name, phase.steps)
    for step in range(1, phase.steps + 1):
        rows = torch.randint(0, len(latent_params), (cfg.unet_batch_size,), generator=generator)
        dist = DiagonalGaussianDistribution(latent_params[rows].to(cfg.device))
        latents = dist.sample(generator=generator) * scaling_factor
        chosen = caption_index[rows].clone()
        chosen[torch.rand(len(rows), generator=generator) < cfg.caption_dropout] = 0
        noise, timesteps, noisy = add_noise(latents, scheduler, generator, phase.noise_offset)
        states = text_encoder(ids[chosen.to(cfg.device)])[0]
        pred = unet(noisy, timesteps, states).sample
        weights = sample_weights(scheduler, timesteps, cfg.snr_gamma)
        per_sample = F.mse_loss(pred, prediction_target(scheduler, latents, noise, timesteps), reduction="none")
        loss = (per_sample.mean(dim=(1, 2, 3)) * weights).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        phase.optimizer.step(), phase.schedule.step(), phase.optimizer.zero_grad(set_to_none=True)
        phase.ema.step(params)
        log.step(step, loss=loss.item())
    phase.ema.copy_to(params)


def save_pipeline(folder: Path, vae, text_encoder, tokenizer, unet, phases: dict[str, int] | None = None) -> Path:
    """A diffusers ``StableDiffusionPipeline`` folder in fp32 safetensors (DPM-Solver++ 2M SDE for sampling).

    fp32, not fp16: transformers loads a text encoder in the dtype it was saved in while diffusers loads
    the UNet in fp32, so an fp16 folder failed in plain ``from_pretrained(folder)`` + ``pipe(prompt)``.

    The SDE solver, not the deterministic one: this small denoiser's noise estimate at the highest noise
    levels is loose (its x0 estimate at t=999 carries 2.25x the true detail), and the ODE path keeps that
    error to the end on seeds whose initial noise has more energy: with it 18 % of the quality bar's
    generations ended busier than any real drawing of their style, with the SDE solver 3 %, whose fresh
    noise washes the early error out (same weights, 20 steps; content 0.91 -> 0.96, named style 0.75 -> 0.83)."""
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(**archs.sd_scheduler_config(), algorithm_type="sde-dpmsolver++")
    pipe = assemble_pipeline(vae=vae.float(), text_encoder=text_encoder.float(), tokenizer=tokenizer,
                             unet=unet.float(), scheduler=scheduler)

    def write(tmp: Path) -> None:
        pipe.save_pretrained(tmp, safe_serialization=True)
        if phases:  # the marker that the second phase is done, renamed into place with the weights
            (tmp / PHASES_FILE).write_text(json.dumps(phases) + "\n")

    publish(folder, write)
    return folder


def finished_phases(pipeline_dir: Path) -> dict[str, int]:
    """The phases recorded as done in the pipeline folder (``denoiser_phases.json``): {marker: steps}."""
    marker = pipeline_dir / PHASES_FILE
    return json.loads(marker.read_text()) if marker.exists() else {}


def run_later_phase(cfg: PretrainConfig, plan: LaterPhase, summary: dict, out: Path, latents_file: Path,
                    captions: list[str]) -> None:
    """Continue the saved pipeline's denoiser with ``plan`` unless the pipeline records it as done. The weights
    and the updated record are renamed into place together."""
    from diffusers import StableDiffusionPipeline

    folder = out / PIPELINE_DIR

    def body() -> None:
        pipe = StableDiffusionPipeline.from_pretrained(folder, dtype=torch.float32)
        shown = with_rare_tokens(captions, plan.rare_token_share, plan.seed)
        text_encoder, unet = continue_denoiser(cfg, plan, pipe.text_encoder, pipe.unet, pipe.tokenizer,
                                               load_file(str(latents_file))["latents"], shown,
                                               pipe.vae.config.scaling_factor)
        phases = {"denoiser_steps": cfg.unet_steps, **finished_phases(folder), plan.marker: plan.steps}
        save_pipeline(folder, pipe.vae, text_encoder.cpu(), pipe.tokenizer, unet.cpu(), phases)

    run_stage(summary, out / "work", plan.name, lambda: plan.marker in finished_phases(folder), body)


def distinct_caption_batches(caption_index: torch.Tensor, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Sample rows so that no caption appears twice in the batch (a CLIP loss then has no false negatives)."""
    groups = [torch.nonzero(caption_index == k).flatten() for k in range(int(caption_index.max()) + 1)]
    groups = [g for g in groups if len(g)]
    chosen = torch.randperm(len(groups), generator=generator)[:batch_size].tolist()
    return torch.stack([groups[k][torch.randint(0, len(groups[k]), (1,), generator=generator)][0] for k in chosen])


def train_clip(cfg: PretrainConfig, arch: dict, work: Path, pixels: np.ndarray, captions: list[str]):
    """The world's open_clip model, trained contrastively on its images and captions."""
    import open_clip
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    name = archs.register_clip(arch, work)
    torch.manual_seed(cfg.seed)
    model = open_clip.create_model(name).to(cfg.device).train()
    tokenizer = open_clip.get_tokenizer(name)
    distinct, caption_index = caption_table(captions)
    tokens = tokenizer(distinct).to(cfg.device)
    images = to_unit_range(pixels).add(1).div(2)
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1)
    loss_fn = open_clip.ClipLoss()
    optimizer, schedule = cosine_optimizer(model.parameters(), cfg.clip_learning_rate, cfg.clip_steps, 100, 0.1)
    generator = torch.Generator().manual_seed(cfg.seed + 2)
    log = Log("clip", cfg.clip_steps)
    for step in range(1, cfg.clip_steps + 1):
        rows = distinct_caption_batches(caption_index, cfg.clip_batch_size, generator)
        batch = images[rows]
        if batch.shape[-1] != model.visual.image_size[0]:
            batch = F.interpolate(batch, size=model.visual.image_size, mode="bicubic", antialias=True).clamp(0, 1)
        flip = torch.rand(len(rows), generator=generator) < 0.5
        batch[flip] = batch[flip].flip(-1)
        image_features = model.encode_image(((batch - mean) / std).to(cfg.device), normalize=True)
        text_features = model.encode_text(tokens[caption_index[rows].to(cfg.device)], normalize=True)
        loss = loss_fn(image_features, text_features, model.logit_scale.exp())
        loss.backward()
        optimizer.step(), schedule.step(), optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        log.step(step, loss=loss.item())
    return model.eval()


def save_clip(folder: Path, model, arch: dict) -> Path:
    """An open_clip ``local-dir:`` folder: ``open_clip_config.json`` + ``open_clip_model.safetensors`` (fp16)."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from safetensors.torch import save_file

    state = {k: v.detach().half().contiguous().cpu() for k, v in model.state_dict().items()}
    config = {"model_cfg": arch["clip"], "preprocess_cfg": {
        "size": arch["clip"]["vision_cfg"]["image_size"], "mean": list(OPENAI_DATASET_MEAN),
        "std": list(OPENAI_DATASET_STD), "interpolation": "bicubic", "resize_mode": "shortest"}}

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        save_file(state, str(tmp / "open_clip_model.safetensors"))
        (tmp / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")

    publish(folder, write)
    return folder


def write_encoder_data(cfg: PretrainConfig, world: WorldConfig, folder: Path) -> Path:
    """The same ``encoder_contents`` drawings in every named style and in natural colours (metadata.csv layout)."""
    from PIL import Image

    rows = ["path,style,content"]
    contents = world.contents
    for style in (NATURAL, *world.named_styles):
        (folder / style).mkdir(parents=True, exist_ok=True)
        for k in range(cfg.encoder_contents):
            sample = draw_sample(contents[k % len(contents)], style, cfg.size, (cfg.seed, k, 104729))
            path = folder / style / f"{k:03d}.png"
            Image.fromarray(sample.pixels).save(path)
            rows.append(f"{style}/{path.name},{style},content-{k:03d}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def train_world_style_encoder(cfg: PretrainConfig, arch: dict, world: WorldConfig, work: Path) -> Path:
    """The style encoder (classification + supervised-contrastive loss) on the world's named styles."""
    data = write_encoder_data(cfg, world, work / "encoder-data")
    run_dir = work / "encoder-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    styles = 1 + len(world.named_styles)
    train_cfg = EncoderTrainConfig(
        data=str(data), architecture=str(archs.style_encoder_config_file(arch, work)), output_dir=str(run_dir),
        seed=cfg.seed, styles_per_batch=styles, images_per_style=4, max_train_steps=cfg.encoder_steps,
        eval_every=max(1, cfg.encoder_steps // 3), checkpointing_steps=10**9, report_to="none", progress=False,
        lr_warmup_steps=min(100, cfg.encoder_steps // 10),
        crop_mode="zoom")  # as the shipped toy-world encoder was trained; native crops are not measured on this world
    return train_style_encoder(train_cfg) / "best"


def folder_megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def run_stage(summary: dict, work: Path, name: str, done: Callable[[], bool], body: Callable[[], Any]) -> None:
    """Run ``body`` unless ``done()``. Stage times are kept in ``work/stage_times.json`` so that a resumed
    run still reports what every stage cost; reused stages are listed in ``summary['reused_stages']``."""
    times_file = work / "stage_times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    if done():
        print(f"[{name}] already done, skipped", flush=True)
        summary["reused_stages"].append(name)
        if name in times:
            summary["stages"][name] = times[name]
        return
    start = time.time()
    body()
    summary["stages"][name] = times[name] = round(time.time() - start, 1)
    write_bytes_atomic(times_file, (json.dumps(times, indent=2) + "\n").encode())


def prepare_output(cfg: PretrainConfig) -> Path:
    out = Path(cfg.output_dir or f"runs/toyworld-{time.strftime('%Y%m%d-%H%M%S')}")
    if (out / SUMMARY_FILE).exists() and not cfg.overwrite:
        raise StyleBoostError(f"{out} already holds a pre-trained toy world; pass --overwrite to replace it")
    if cfg.overwrite:
        for name in (PIPELINE_DIR, CLIP_DIR, ENCODER_DIR, SAMPLES_DIR, "work", SUMMARY_FILE):
            path = out / name
            remove_path(path)
    (out / "work").mkdir(parents=True, exist_ok=True)
    return out


def pretrain(cfg: PretrainConfig) -> Path:
    """Run every stage; returns the output folder (pipeline/, clip/, style_encoder/, samples/, pretrain.json)."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    arch = archs.load_architectures(cfg.architectures)
    out = prepare_output(cfg)
    work = out / "work"
    world = WorldConfig(seed=cfg.seed, size=cfg.size, samples=cfg.world_samples)
    summary: dict[str, Any] = {"config": asdict(cfg), "world": world.as_dict(), "architectures": arch, "stages": {},
                               "reused_stages": []}
    started = time.time()
    world_file, vae_dir, latents_file = work / "world.npz", work / "vae", work / "latents.safetensors"

    def draw_world() -> None:
        samples = render_world(world, cfg.workers)
        publish(world_file, lambda tmp: np.savez(tmp, pixels=np.stack([s.pixels for s in samples]),
                                                 captions=np.array([s.caption for s in samples])))

    run_stage(summary, work, "world", world_file.exists, draw_world)
    data = np.load(world_file)
    pixels, captions = data["pixels"], [str(c) for c in data["captions"]]
    tokenizer = archs.build_tokenizer(work / "tokenizer", arch["tokenizer_max_length"])

    def vae_stage() -> None:
        vae = train_vae(cfg, arch, pixels)
        publish(vae_dir, lambda tmp: vae.save_pretrained(tmp))

    run_stage(summary, work, "vae", lambda: (vae_dir / "config.json").exists(), vae_stage)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir).to(cfg.device).eval()
    if cfg.normalise_latents and vae.config.scaling_factor != 1.0:
        fold_earlier_vae(cfg, vae, out, vae_dir, latents_file, to_unit_range(pixels))
    def encode_stage() -> None:
        latents = encode_world(vae, pixels, cfg.device).contiguous()
        publish(latents_file, lambda tmp: save_file({"latents": latents}, str(tmp)))

    run_stage(summary, work, "encode", latents_file.exists, encode_stage)

    def denoiser_stage() -> None:
        text_encoder, unet = train_denoiser(cfg, arch, tokenizer, load_file(str(latents_file))["latents"],
                                            captions, vae.config.scaling_factor)
        save_pipeline(out / PIPELINE_DIR, vae.cpu(), text_encoder.cpu(), tokenizer, unet.cpu())

    run_stage(summary, work, "denoiser", lambda: (out / PIPELINE_DIR / "model_index.json").exists(), denoiser_stage)
    for plan in later_phases(cfg):
        run_later_phase(cfg, plan, summary, out, latents_file, captions)
    run_stage(summary, work, "clip", lambda: (out / CLIP_DIR / "open_clip_config.json").exists(),
              lambda: save_clip(out / CLIP_DIR, train_clip(cfg, arch, work, pixels, captions), arch))

    def encoder_stage() -> None:
        best = train_world_style_encoder(cfg, arch, world, work)
        publish(out / ENCODER_DIR, lambda tmp: shutil.copytree(best, tmp))

    run_stage(summary, work, "style_encoder", lambda: (out / ENCODER_DIR / "config.json").exists(), encoder_stage)
    start = time.time()
    if not (work / "encoder-data" / "metadata.csv").exists():  # a reused style encoder whose data is gone
        write_encoder_data(cfg, world, work / "encoder-data")
    summary["quality"] = quality.measure(out, world, work / "encoder-data", cfg)
    summary["stages"]["quality"] = round(time.time() - start, 1)
    summary["total_seconds"] = round(time.time() - started, 1)
    summary["megabytes"] = {name: round(folder_megabytes(out / name), 2) for name in (PIPELINE_DIR, CLIP_DIR, ENCODER_DIR)}
    summary["torch_threads"] = torch.get_num_threads()
    write_bytes_atomic(out / SUMMARY_FILE, (json.dumps(summary, indent=2) + "\n").encode())
    return out


def config_from_args(argv: list[str] | None = None, prog: str | None = None) -> PretrainConfig:
    """Defaults, then the YAML file of --config, then the flags given."""
    return settings_from_args(PretrainConfig, argv, prog=prog, description="Pre-train the toy world's models from a seed.")
