"""Fold a per-channel shift and scale into the VAE's quant_conv / post_quant_conv so that its (scaled)
latents are zero-mean, unit-std per channel; decoding is unchanged. Checks exactness on world drawings."""
import numpy as np, torch
from diffusers import AutoencoderKL
from styleboost.toyworld.assets import pipeline_path
from styleboost.toyworld.world import draw_sample

torch.set_num_threads(2)
vae = AutoencoderKL.from_pretrained(str(pipeline_path() / "vae"))
imgs = torch.cat([torch.from_numpy(draw_sample(c, s, 64, (k, 3)).pixels.astype(np.float32)).permute(2, 0, 1)[None]
                  for k, (c, s) in enumerate([(c, s) for c in ("portrait", "house", "tree", "group", "animal")
                                               for s in ("pencil", "watercolor", "gameboy", "ukiyo-e")])]) / 127.5 - 1
with torch.no_grad():
    z = vae.encode(imgs).latent_dist.mean
mean, std = z.mean((0, 2, 3)), z.std((0, 2, 3))
print("raw latents: ch mean", mean.numpy().round(3), "ch std", std.numpy().round(3), "scaling_factor", vae.config.scaling_factor)
with torch.no_grad():
    ref = vae.decode(z).sample
    q, p = vae.quant_conv, vae.post_quant_conv          # q: 8 -> 8 (mean, logvar); p: 4 -> 4, both 1x1
    q.weight[:4] /= std[:, None, None, None]; q.bias[:4] = (q.bias[:4] - mean) / std
    q.bias[4:] -= 2 * torch.log(std)                     # the variance scales with std^2
    p.bias += (p.weight[:, :, 0, 0] * mean[None]).sum(1)
    p.weight *= std[None, :, None, None]
    z2 = vae.encode(imgs).latent_dist.mean
    out = vae.decode(z2).sample
print("folded latents: ch mean", z2.mean((0, 2, 3)).numpy().round(3), "ch std", z2.std((0, 2, 3)).numpy().round(3))
print("decode max |diff| after folding:", (out - ref).abs().max().item())
