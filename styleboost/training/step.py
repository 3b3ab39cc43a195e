"""One training step's arithmetic: encode images, add noise, predict, and the prior-preservation loss.

Each stage is a named function, as in a diffusers pipeline. Randomness comes from explicit
generators, one per sample keyed by its draw, so that a step is a pure function of (weights, batch, seed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.training_utils import compute_snr

Generators = torch.Generator | list[torch.Generator]


def sample_generators(seed: int, draws: list[int], part: int) -> list[torch.Generator]:
    """One random stream per sample, keyed by (seed, draw position, batch part): a sample's latent, noise
    and timestep are the same whatever batch, process or resumed run it lands in, so N processes with
    batch b train exactly what one process with batch N*b does."""
    import numpy as np

    states = [np.random.SeedSequence([seed, draw, part]).generate_state(1)[0] for draw in draws]
    return [torch.Generator().manual_seed(int(s)) for s in states]


def _timesteps(count: int, steps: int, generator: Generators) -> torch.Tensor:
    if isinstance(generator, list):
        return torch.cat([torch.randint(0, steps, (1,), generator=g) for g in generator])
    return torch.randint(0, steps, (count,), generator=generator)


def image_latents(part: dict, vae, generator: Generators, device: torch.device) -> torch.Tensor:
    """Scaled VAE latents of a batch part, from pixels or from cached latent distributions.

    ``generator`` is one generator or one per sample (diffusers' ``randn_tensor`` convention).
    ``device`` is passed in: diffusers' ``vae.device`` walks every module on each call.
    """
    if "latent_dist" in part:
        dist = DiagonalGaussianDistribution(part["latent_dist"].to(device, torch.float32))
    else:
        dist = vae.encode(part["pixel_values"].to(device, torch.float32)).latent_dist
    latents = dist.sample(generator=generator)
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return ((latents - shift) * vae.config.scaling_factor).float()


def add_noise(latents: torch.Tensor, scheduler, generator: Generators, noise_offset: float = 0.0):
    """(noise, timesteps, noisy latents) for a random timestep per sample; one generator or one per sample."""
    from diffusers.utils.torch_utils import randn_tensor

    shape = latents.shape
    noise = randn_tensor(shape, generator=generator).to(latents.device)
    if noise_offset:
        offset = randn_tensor((shape[0], shape[1], 1, 1), generator=generator)
        noise += noise_offset * offset.to(latents.device)
    timesteps = _timesteps(shape[0], scheduler.config.num_train_timesteps, generator).to(latents.device)
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
