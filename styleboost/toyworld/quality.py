"""The toy world's quality bar: does the base model draw what its prompts name, in the styles they name?

One job: generate from the pre-trained pipeline and judge the images with the world's own judges,
loaded as users load them (the pipeline folder through diffusers, the CLIP through
``styleboost.metrics.clip.load_clip('local-dir:...')``, the style encoder as an encoder folder):

- **content**: for each content class, the tiny CLIP's zero-shot accuracy over the class captions on
  the base model's generations of that class (and, as a reference, on freshly drawn real images);
- **style**: for each named style, how often the style encoder puts the generations nearest to that
  style's centroid (centroids from real images of every named style and of natural colours);
- **cleanliness**: the share of generations whose busy-pixel share (``busy_share``) is no higher than
  that of the busiest real drawing in the style the prompt asks for, and KID between the content
  generations and real drawings on the tiny CLIP's image features;
- **rare token**: how far "X in sks style" moves an image from "X" (same seed), on the style encoder
  and on CLIP, beside how far another seed and a named style move it: an untrained token should
  barely move it.

Sample grids (``samples/contents.png``, ``samples/styles.png``) show what was judged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from styleboost.core.atomic import save_image_atomic
from styleboost.metrics.clip import load_clip
from styleboost.metrics.fid_kid import kernel_distance
from styleboost.sd.sampling import batches, draw_images
from styleboost.style_encoder import create_style_encoder
from styleboost.toyworld import scenes
from styleboost.toyworld.world import NATURAL, WorldConfig, draw_sample, styled_caption


def generate(pipe, prompts: Sequence[str], seed: int, steps: int, guidance: float, batch_size: int = 32) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` images, one per prompt, image ``i`` seeded with ``seed + i``."""
    seeds = [seed + i for i in range(len(prompts))]
    out = []
    for chunk in batches(list(zip(prompts, seeds)), batch_size):
        result = draw_images(pipe, [p for p, _ in chunk], [s for _, s in chunk], num_inference_steps=steps,
                             guidance_scale=guidance, output_type="np")
        out.append(np.clip(np.rint(result * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def zero_shot(clip, images: np.ndarray, labels: Sequence[int], class_texts: Sequence[str]) -> dict[str, Any]:
    """CLIP's zero-shot accuracy over ``class_texts`` (overall and per class)."""
    texts = clip.encode_texts(list(class_texts))
    guesses = (clip.encode_images(as_tensor(images)) @ texts.T).argmax(dim=1).numpy()
    return accuracy_table(guesses, np.asarray(labels), class_texts)


def nearest_centroid(vectors: torch.Tensor, centroids: torch.Tensor) -> np.ndarray:
    return (F.normalize(vectors, dim=1) @ F.normalize(centroids, dim=1).T).argmax(dim=1).numpy()


def accuracy_table(guesses: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    per_class = {name: round(float((guesses[labels == k] == k).mean()), 3)
                 for k, name in enumerate(names) if (labels == k).any()}
    return {"accuracy": round(float((guesses == labels).mean()), 3), "chance": round(1 / len(names), 3),
            "per_class": per_class}


BUSY_STEP = 0.12  # a colour step (of the full range) between neighbours that counts a pixel as busy


def busy_share(images: np.ndarray) -> np.ndarray:
    """Per uint8 ``(N, H, W, 3)`` image, the share of pixels whose colour steps by more than ``BUSY_STEP`` (in
    any channel) to the next pixel right or down. The world's drawings are flat regions and edges; colour
    speckle makes nearly every pixel busy (0.46 on speckled seeds of the old base model, 0.10 on natural
    drawings)."""
    x = images.astype(np.float32) / 255
    down = np.abs(np.diff(x, axis=1))[:, :, :-1].max(-1)
    right = np.abs(np.diff(x, axis=2))[:, :-1, :].max(-1)
    return (np.maximum(down, right) > BUSY_STEP).mean((1, 2))


def clean_share(generated: np.ndarray, reference: np.ndarray) -> float:
    """Share of ``generated`` no busier than the busiest image of ``reference`` (real drawings of the style)."""
    return float((busy_share(generated) <= busy_share(reference).max()).mean())


def cleanliness(clip, generated: np.ndarray, real: np.ndarray, styled: np.ndarray, style_of: Sequence[str],
                reference: dict[str, np.ndarray]) -> dict[str, Any]:
    """Clean shares of the content generations (against natural drawings) and of the styled ones (each
    against its style's drawings), and KID x10^3 of the content generations against real drawings."""
    per_style = {style: clean_share(styled[np.asarray(style_of) == style], reference[style])
                 for style in sorted(set(style_of))}
    content = clean_share(generated, reference[NATURAL])
    # subsets of half the images: subsets of all of them would be one set reordered, with a spread of 0
    kid, kid_std = kernel_distance(clip.encode_images(as_tensor(real)), clip.encode_images(as_tensor(generated)),
                                   subsets=50, subset_size=len(generated) // 2)
    styled_share = float(np.mean([per_style[s] for s in style_of]))
    return {"content_clean": round(content, 3), "styled_clean": round(styled_share, 3),
            "overall_clean": round((content * len(generated) + styled_share * len(styled))
                                   / (len(generated) + len(styled)), 3),
            "per_style_clean": {k: round(v, 3) for k, v in per_style.items()},
            "content_kid_x1e3": round(kid * 1e3, 2), "content_kid_std_x1e3": round(kid_std * 1e3, 2),
            "rule": f"busy-pixel share (colour step > {BUSY_STEP}) <= the busiest real drawing of the style"}


def rare_token_effect(pipe, clip, encoder, captions: Sequence[str], named_styles: Sequence[str], seed: int,
                      steps: int, guidance: float, token: str = "sks") -> dict[str, Any]:
    """Mean cosine distance, on the style encoder and on CLIP, between "X" and "X in sks style" at one seed,
    beside two scales: "X" at another seed (an unrelated change) and "X in <a named style> style" at the
    same seed (what a token the model knows does)."""
    plain = generate(pipe, list(captions), seed, steps, guidance)
    with_token = generate(pipe, [f"{c} in {token} style" for c in captions], seed, steps, guidance)
    other_seed = generate(pipe, list(captions), seed + 1000, steps, guidance)
    named = generate(pipe, [f"{c} in {named_styles[i % len(named_styles)]} style" for i, c in enumerate(captions)],
                     seed, steps, guidance)

    def distance(embed, a: np.ndarray, b: np.ndarray) -> float:
        return float((1 - F.cosine_similarity(embed(as_tensor(a)), embed(as_tensor(b)), dim=1)).mean())

    result = {"token": token}
    for name, embed in (("style", encoder.embed), ("clip", clip.encode_images)):
        result[f"{name}_token_distance"] = round(distance(embed, plain, with_token), 4)
        result[f"{name}_seed_distance"] = round(distance(embed, plain, other_seed), 4)
        result[f"{name}_named_style_distance"] = round(distance(embed, plain, named), 4)
    return result


def save_grid(images: np.ndarray, columns: int, path: Path, scale: int = 2) -> None:
    """``images`` (a whole number of rows of ``columns``) as one grid, enlarged ``scale`` times without smoothing."""
    from diffusers.utils import make_image_grid

    grid = make_image_grid([Image.fromarray(image) for image in images], rows=len(images) // columns, cols=columns)
    save_image_atomic(grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST), path)


def measure(out: Path, world: WorldConfig, encoder_data: Path, cfg) -> dict[str, Any]:
    """Generate, judge and draw grids; returns the numbers for ``pretrain.json``."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(out / "pipeline", dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    clip = load_clip(f"local-dir:{out / 'clip'}")
    encoder = create_style_encoder(out / "style_encoder")
    k, classes = cfg.quality_images, scenes.CLASSES
    captions = [scenes.CONTENTS[c].caption for c in classes]
    labels = [i for i in range(len(classes)) for _ in range(k)]

    generated = generate(pipe, [captions[i] for i in labels], cfg.seed, cfg.quality_steps, cfg.guidance_scale)
    real = np.stack([draw_sample(classes[i], NATURAL, world.size, (cfg.seed, n, 15485863)).pixels
                     for n, i in enumerate(labels)])
    (out / "samples").mkdir(exist_ok=True)
    save_grid(generated, k, out / "samples" / "contents.png")

    styles = [NATURAL, *world.named_styles]
    centroids = torch.stack([encoder.embed(sorted((encoder_data / s).glob("*.png"))).mean(0) for s in styles])
    style_labels = [i for i in range(1, len(styles)) for _ in range(k)]
    prompts = [styled_caption(classes[n % len(classes)], styles[i]) for n, i in enumerate(style_labels)]
    styled = generate(pipe, prompts, cfg.seed + 10_000, cfg.quality_steps, cfg.guidance_scale)
    save_grid(styled, k, out / "samples" / "styles.png")
    guesses = nearest_centroid(encoder.embed(as_tensor(styled)), centroids)
    reference = {style: np.stack([draw_sample(classes[n % len(classes)], style, world.size, (cfg.seed, n, 7927)).pixels
                                  for n in range(4 * len(classes))]) for style in styles}
    style_of = [styles[i] for i in style_labels]
    return {
        "images_per_class": k,
        "content_zero_shot_generated": zero_shot(clip, generated, labels, captions),
        "content_zero_shot_real": zero_shot(clip, real, labels, captions),
        "named_style_nearest_centroid": accuracy_table(guesses, np.asarray(style_labels), styles),
        "cleanliness": cleanliness(clip, generated, real, styled, style_of, reference),
        "rare_token": rare_token_effect(pipe, clip, encoder, captions, world.named_styles, cfg.seed + 20_000,
                                        cfg.quality_steps, cfg.guidance_scale),
        "prompts": {"content": captions, "style": "<content caption> in <style> style"},
    }
