"""Does the generated latent's per-channel mean follow the initial noise's (the model cannot set the DC)?
And how well does the UNet recover the DC of real latents from a noisy one, per timestep?"""
import numpy as np, torch
from diffusers import StableDiffusionPipeline, DDPMScheduler
from styleboost.toyworld.assets import pipeline_path
from styleboost.toyworld.world import draw_sample

torch.set_num_threads(2)
pipe = StableDiffusionPipeline.from_pretrained(str(pipeline_path()), safety_checker=None)
pipe.set_progress_bar_config(disable=True)
sf = pipe.vae.config.scaling_factor
for seed in range(6):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn((1, 4, 16, 16), generator=g)
    print(f"seed {seed}: initial noise ch mean {noise.mean((0,2,3)).numpy().round(3)}  std {noise.std((0,2,3)).numpy().round(2)}")

sched = DDPMScheduler.from_config(pipe.scheduler.config)
x0 = []
for k, content in enumerate(["portrait", "house", "person", "tree"] * 2):
    s = draw_sample(content, "pencil" if k % 2 else "watercolor", 64, (k, 7))
    img = torch.from_numpy(s.pixels.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    with torch.no_grad():
        x0.append(pipe.vae.encode(img).latent_dist.mean * sf)
x0 = torch.cat(x0)
ids = pipe.tokenizer(["a portrait of a person"] * len(x0), padding="max_length", max_length=pipe.tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids
with torch.no_grad():
    cond = pipe.text_encoder(ids)[0]
g = torch.Generator().manual_seed(0)
for t in [999, 900, 700, 500, 300, 100]:
    eps = torch.randn(x0.shape, generator=g)
    tt = torch.full((len(x0),), t)
    xt = sched.add_noise(x0, eps, tt)
    with torch.no_grad():
        e_hat = pipe.unet(xt, tt, encoder_hidden_states=cond).sample
    ab = sched.alphas_cumprod[t]
    x0_hat = (xt - (1 - ab).sqrt() * e_hat) / ab.sqrt()
    dc_err = (x0_hat.mean((2, 3)) - x0.mean((2, 3))).abs().mean(0).numpy().round(3)
    ac_ratio = ((x0_hat - x0_hat.mean((2, 3), keepdim=True)).std() / (x0 - x0.mean((2, 3), keepdim=True)).std()).item()
    eps_dc = (e_hat.mean((2, 3)) - eps.mean((2, 3))).abs().mean().item()
    print(f"t={t}: |DC error| of x0_hat per channel {dc_err}  (true |DC| {x0.mean((2,3)).abs().mean(0).numpy().round(2)}); "
          f"x0_hat AC/true AC {ac_ratio:.2f}; eps DC err {eps_dc:.3f}")
