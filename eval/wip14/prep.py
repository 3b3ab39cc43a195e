"""Set up a pre-training output folder that reuses the shipped VAE (folded), CLIP and style encoder."""
import shutil, sys
from pathlib import Path
import numpy as np, torch
from diffusers import AutoencoderKL
from styleboost.toyworld import pretrain as pt
from styleboost.toyworld.assets import pipeline_path
from styleboost.toyworld.world import WorldConfig, render_world
from styleboost.core.atomic import publish

out = Path(sys.argv[1]); work = out / "work"; work.mkdir(parents=True, exist_ok=True)
cfg = pt.PretrainConfig(output_dir=str(out))
shipped = pipeline_path().parent
world = WorldConfig(seed=cfg.seed, size=cfg.size, samples=cfg.world_samples)
samples = render_world(world, 2)
pixels = np.stack([s.pixels for s in samples])
publish(work / "world.npz", lambda tmp: np.savez(tmp, pixels=pixels, captions=np.array([s.caption for s in samples])))
vae = AutoencoderKL.from_pretrained(str(pipeline_path() / "vae")).eval()
pt.normalise_latent_channels(vae, pt.latent_statistics_sample(cfg, pt.to_unit_range(pixels)))
vae.save_pretrained(work / "vae")
for name in ("clip", "style_encoder"):
    shutil.copytree(shipped / name, out / name)
print("ready", out)
