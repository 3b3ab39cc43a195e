"""One training step's arithmetic: encode images, add noise, predict, and the prior-preservation loss.

Each stage is a named function, as in a diffusers pipeline. Randomness comes from an explicit
generator so that a step is a pure function of (weights, batch, seed, step number).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.training_utils import compute_snr


def image_latents(part: dict, vae, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Scaled VAE latents of a batch part, from pixels or from cached latent distributions.

    ``device`` is passed in: diffusers' ``vae.device`` walks every module on each call.
    """
    if "latent_dist" in part:
        dist = DiagonalGaussianDistribution(part["latent_dist"].to(device, torch.float32))
    else:
        dist = vae.encode(part["pixel_values"].to(device, torch.float32)).latent_dist
    latents = dist.sample(generator=generator)
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return ((latents - shift) * vae.config.scaling_factor).float()


def add_noise(latents: torch.Tensor, scheduler, generator: torch.Generator, noise_offset: float = 0.0):
    """(noise, timesteps, noisy latents) for a random timestep per sample."""
    shape = latents.shape
    noise = torch.randn(shape, generator=generator).to(latents.device)
    if noise_offset:
        noise += noise_offset * torch.randn((shape[0], shape[1], 1, 1), generator=generator).to(latents.device)
    steps = scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (shape[0],), generator=generator).to(latents.device)
    return noise, timesteps, scheduler.add_noise(latents, noise, timesteps)


def prediction_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
    """What the UNet should predict under the scheduler's prediction type."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unsupported prediction type {kind}")


def sample_weights(scheduler, timesteps: torch.Tensor, snr_gamma: float | None) -> torch.Tensor:
    """Min-SNR-gamma weights (Hang et al. 2023), or ones."""
    if snr_gamma is None:
        return torch.ones_like(timesteps, dtype=torch.float32)
    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=snr_gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clipped / (snr + 1)
    return clipped / snr


def prior_preservation_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, n_instance: int, prior_loss_weight: float
) -> dict[str, torch.Tensor]:
    """loss = MSE(instance) + w * MSE(prior); the first ``n_instance`` rows are the instance part."""
    per_sample = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=tuple(range(1, pred.ndim)))
    per_sample = per_sample * weights
    instance = per_sample[:n_instance].mean()
    terms = {"instance_loss": instance, "loss": instance}
    if per_sample.shape[0] > n_instance:
        prior = per_sample[n_instance:].mean()
        terms["prior_loss"] = prior
        terms["loss"] = instance + prior_loss_weight * prior
    return terms
