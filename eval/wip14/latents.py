"""Issue 14 diagnosis: final latents of speckled vs clean seeds against the VAE latents of world drawings."""
import numpy as np, torch
from diffusers import StableDiffusionPipeline
from styleboost.toyworld.assets import pipeline_path
from styleboost.toyworld.world import draw_sample

torch.set_num_threads(2)
pipe = StableDiffusionPipeline.from_pretrained(str(pipeline_path()), safety_checker=None)
pipe.set_progress_bar_config(disable=True)
sf = pipe.vae.config.scaling_factor

def spectrum_hi(lat):  # share of spatial power above half the Nyquist band, per sample
    f = np.abs(np.fft.fft2(lat.numpy(), axes=(-2, -1))) ** 2
    h, w = lat.shape[-2:]
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    hi = (np.sqrt(fx**2 + fy**2) > 0.25)
    f[..., 0, 0] = 0
    return float((f[..., hi].sum() / f.sum()))

# real latents
reals = []
for k, content in enumerate(["portrait", "house", "person", "tree", "landscape", "group"] * 2):
    s = draw_sample(content, "pencil" if k % 2 else "watercolor", 64, (k, 7))
    img = torch.from_numpy(s.pixels.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        reals.append(pipe.vae.encode(img).latent_dist.mean * sf)
real = torch.cat(reals)
print("real  latents: ch mean", real.mean((0, 2, 3)).numpy().round(3), "ch std", real.std((0, 2, 3)).numpy().round(3),
      "hi-freq share %.3f" % spectrum_hi(real))
for prompt in ["a portrait of a person", "a house"]:
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        lat = pipe(prompt, num_inference_steps=20, guidance_scale=4.0, generator=g, output_type="latent").images
        img = pipe.vae.decode(lat / sf).sample
        hf = (img[:, :, 1:, :] - img[:, :, :-1, :]).abs().mean().item()
        print(f"{prompt!r:26} seed {seed}: ch mean {lat.mean((0,2,3)).numpy().round(2)} ch std {lat.std((0,2,3)).numpy().round(2)} "
              f"hi-freq {spectrum_hi(lat):.3f}  image |dy| {hf:.3f}")
