"""Diagnose a toy-world base pipeline: do its latents suit the noise schedule, and which seeds end in speckle?

Prints (1) the per-channel mean and std of the VAE latents of real world drawings, raw and as the denoiser
sees them (times ``scaling_factor``); (2) how much of the clean latent's spatial variation (its AC part) the
UNet's x0 estimate carries at high noise, against the truth; (3) per seed, the generated image's busy-pixel
share (``toyworld.quality.busy_share``; the world's natural drawings stay under about 0.1) and the
high-frequency share of the latent the sampler ends on.

    python eval/diagnose_toyworld.py [--pipeline FOLDER] [--seeds 8] [--threads 2]

Issue 14 found with it that the base model's latent channels have means of -3, -3, 0, 5 against stds of
1.3-2.7, so one global ``1/std`` leaves the drawings' content far below unit variance, and that the
deterministic solver then ended a fifth of the seeds in colour speckle. The pipeline now ships the SDE
solver; ``pretrain --normalise_latents`` (``normalise_latent_channels``) was tried and is not the default.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def world_latents(vae, count: int = 24) -> torch.Tensor:
    """Raw VAE latent means of ``count`` natural and named-style drawings of every content."""
    from styleboost.toyworld import scenes
    from styleboost.toyworld.pretrain import to_unit_range
    from styleboost.toyworld.world import NATURAL, draw_sample

    styles = (NATURAL, "pencil", "watercolor", "ukiyo-e")
    pixels = np.stack([draw_sample(scenes.CLASSES[k % len(scenes.CLASSES)], styles[k % len(styles)], 64,
                                   (k, 7)).pixels for k in range(count)])
    with torch.no_grad():
        return vae.encode(to_unit_range(pixels)).latent_dist.mean


def high_frequency_share(latents: torch.Tensor) -> np.ndarray:
    """Per sample, the share of spatial power (mean removed) above half the Nyquist band."""
    power = np.abs(np.fft.fft2(latents.numpy(), axes=(-2, -1))) ** 2
    power[..., 0, 0] = 0
    h, w = latents.shape[-2:]
    high = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")) > 0.25
    return power[..., high].sum((1, 2)) / power.sum((1, 2, 3))


def x0_estimate_ac_ratio(pipe, x0: torch.Tensor, t: int, prompt: str) -> float:
    """std of the AC part of the UNet's x0 estimate at timestep ``t`` over that of the true ``x0``."""
    from diffusers import DDPMScheduler

    schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(t))
    timesteps = torch.full((len(x0),), t)
    noisy = schedule.add_noise(x0, noise, timesteps)
    ids = pipe.tokenizer([prompt] * len(x0), padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        eps = pipe.unet(noisy, timesteps, encoder_hidden_states=pipe.text_encoder(ids)[0]).sample
    alpha = schedule.alphas_cumprod[t]
    estimate = (noisy - (1 - alpha).sqrt() * eps) / alpha.sqrt()

    def ac(x: torch.Tensor) -> torch.Tensor:
        return x - x.mean((2, 3), keepdim=True)

    return float(ac(estimate).std() / ac(x0).std())


def main() -> None:
    from diffusers import StableDiffusionPipeline

    from styleboost.toyworld.assets import pipeline_path
    from styleboost.toyworld.quality import busy_share

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default=None, help="pipeline folder (default: the shipped toy world)")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = StableDiffusionPipeline.from_pretrained(args.pipeline or str(pipeline_path()))
    pipe.set_progress_bar_config(disable=True)
    scale = pipe.vae.config.scaling_factor
    raw = world_latents(pipe.vae)
    for name, z in (("raw", raw), (f"x scaling_factor {scale:.4g}", raw * scale)):
        print(f"world latents {name:24} channel mean {z.mean((0, 2, 3)).numpy().round(2)}  "
              f"channel std {z.std((0, 2, 3)).numpy().round(2)}  AC std {(z - z.mean((2, 3), keepdim=True)).std():.2f}")
    for t in (999, 900, 700):
        print(f"x0 estimate at t={t}: AC std / true AC std {x0_estimate_ac_ratio(pipe, raw * scale, t, 'a house'):.2f}")
    for prompt in ("a portrait of a person", "a house", "a portrait of a person in sks style"):
        rows = []
        for seed in range(args.seeds):
            out = pipe(prompt, num_inference_steps=20, guidance_scale=4.0, output_type="latent",
                       generator=torch.Generator().manual_seed(seed)).images
            with torch.no_grad():
                image = pipe.vae.decode(out / scale).sample.clamp(-1, 1)
            pixels = ((image.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
            rows.append(f"{seed}: busy {busy_share(pixels)[0]:.2f} hf {high_frequency_share(out)[0]:.2f}")
        print(f"{prompt!r:38} " + "  ".join(rows))


if __name__ == "__main__":
    main()
