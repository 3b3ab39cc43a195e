import numpy as np, torch, sys
from diffusers import StableDiffusionPipeline
from styleboost.toyworld.quality import generate
from styleboost.toyworld.world import draw_sample, NATURAL
from styleboost.toyworld import scenes
torch.set_num_threads(1)
pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1]); pipe.set_progress_bar_config(disable=True)
def share(images, cut=0.25):
    x = images.astype(np.float64)/255; x = x - x.mean(axis=(1,2), keepdims=True)
    p = np.abs(np.fft.fft2(x, axes=(1,2)))**2
    h, ww = x.shape[1:3]; hi = np.hypot(np.fft.fftfreq(h)[:,None], np.fft.fftfreq(ww)[None,:]) > cut
    return p[:, hi].sum((1,2)) / np.maximum(p.sum((1,2,3)), 1e-12)
for prompt in ["a portrait of a person", "a house", "a portrait of a person in sks style"]:
    imgs = generate(pipe, [prompt] * 8, 0, 20, 4.0)
    print(prompt, np.round(share(imgs), 3))
    if prompt == "a house":
        np.save("/tmp/n13/house.npy", imgs)
