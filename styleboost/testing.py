"""Tiny, architecture-true Stable Diffusion pipelines built offline from configs.

Tests, benchmarks and the embedded default all load models through ``from_pretrained``
exactly as a user does; this module builds the folder they load. The tokenizer is the real
CLIP BPE tokenizer, written from the vocabulary file that ``open_clip`` ships.
"""

from __future__ import annotations

import gzip
import json
import os
from functools import lru_cache
from pathlib import Path

import torch

TINY_RESOLUTION = 32


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-character table (same as open_clip and transformers)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


def write_clip_tokenizer_files(folder: str | os.PathLike) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` of the CLIP tokenizer from open_clip's BPE file.

    open_clip's ``SimpleTokenizer`` and the OpenAI CLIP tokenizer on the hub share one
    vocabulary: bytes, bytes + ``</w>``, the first 48,894 merges, then the two special tokens.
    """
    import open_clip

    bpe_path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe_path, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(_bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def build_clip_tokenizer(folder: str | os.PathLike):
    """A real ``CLIPTokenizer`` (vocabulary size 49,408), built offline into ``folder``."""
    from transformers import CLIPTokenizer

    folder = write_clip_tokenizer_files(folder)
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )


def tiny_components(tokenizer, *, prediction_type: str = "epsilon", seed: int = 0) -> dict:
    """Randomly initialised UNet, VAE and text encoder of Stable Diffusion's architecture."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=TINY_RESOLUTION,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = PNDMScheduler(  # the inference scheduler SD 1.5 ships; training derives DDPM from its config
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        prediction_type=prediction_type,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def save_tiny_pipeline(
    folder: str | os.PathLike, *, prediction_type: str = "epsilon", seed: int = 0
) -> Path:
    """Build a tiny ``StableDiffusionPipeline`` and save it as a diffusers folder (safetensors)."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    tokenizer = build_clip_tokenizer(folder / "tokenizer")
    parts = tiny_components(tokenizer, prediction_type=prediction_type, seed=seed)
    pipe = StableDiffusionPipeline(
        **parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def default_cache_dir() -> Path:
    """Where generated local assets (the tiny model) are kept between runs."""
    root = os.environ.get("STYLEBOOST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "styleboost"
    )
    return Path(root)


@lru_cache(maxsize=None)
def tiny_pipeline_path(prediction_type: str = "epsilon") -> Path:
    """The cached tiny pipeline folder, built on first use (about a second, offline)."""
    folder = default_cache_dir() / f"tiny-sd-{prediction_type}-v2"
    if not (folder / "model_index.json").exists():
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        save_tiny_pipeline(tmp, prediction_type=prediction_type)
        if folder.exists():  # another process finished first; keep its copy
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.replace(folder)
    return folder


TINY_OPEN_CLIP = "styleboost-tiny-clip"
TINY_OPEN_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def register_tiny_open_clip() -> str:
    """Register a tiny open_clip architecture (ViT image tower, real CLIP tokenizer) offline; returns its
    name. ``--clip styleboost-tiny-clip`` then builds it with random weights (tests and benchmarks)."""
    import open_clip

    if TINY_OPEN_CLIP not in open_clip.list_models():
        folder = default_cache_dir() / "open_clip_configs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{TINY_OPEN_CLIP}.json"
        path.write_text(json.dumps(TINY_OPEN_CLIP_CONFIG))
        open_clip.add_model_config(path)
    return TINY_OPEN_CLIP


def write_styled_run(
    folder: str | os.PathLike,
    style: str,
    prompts: dict[str, list[str]],
    images_per_prompt: int = 2,
    size: int = 96,
    seed: int = 0,
    token: str = "sks",
) -> Path:
    """A folder laid out like ``styleboost generate`` output (images/<set>/pNNN_sK.png + metadata.jsonl)
    whose images are held-out synthetic contents drawn in ``style``: stand-ins for a model's images.

    ``prompts`` maps a prompt-set name to its templates ([V] for the token). The same ``seed`` gives
    the same contents whatever the style, so two runs differ in style only."""
    from styleboost.atomic import save_image_atomic
    from styleboost.generate import ImageJob, make_record
    from styleboost.stylize import apply_style
    from styleboost.synthstyle import make_contents
    from styleboost.tokens import fill_placeholders

    folder = Path(folder)
    count = sum(len(t) for t in prompts.values()) * images_per_prompt
    contents = iter(make_contents("heldout", count, size=size, seed=seed))
    records = []
    for prompt_set, templates in prompts.items():
        (folder / "images" / prompt_set).mkdir(parents=True, exist_ok=True)
        for index, template in enumerate(templates):
            for k in range(images_per_prompt):
                job = ImageJob(prompt_set, index, k, template, fill_placeholders(template, [token]),
                               f"images/{prompt_set}/p{index:03d}_s{k}.png")
                save_image_atomic(apply_style(next(contents).image, style, seed=k), folder / job.file)
                records.append(make_record(job, {"tokens": [token]}, size, size))
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def write_styleref(folder: str | os.PathLike, style: str, count: int = 8, size: int = 96, seed: int = 1) -> Path:
    """A StyleRef folder: ``count`` training-split synthetic contents drawn in ``style``."""
    from styleboost.atomic import save_image_atomic
    from styleboost.stylize import apply_style
    from styleboost.synthstyle import make_contents

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, content in enumerate(make_contents("train", count, size=size, seed=seed)):
        save_image_atomic(apply_style(content.image, style, seed=i), folder / f"ref_{i:02d}.png")
    return folder


class TinyImageFeatures(torch.nn.Module):
    """A stand-in for the FID Inception network: colour statistics and a fixed random convolution
    of uint8 images, 38 numbers an image. Enough to tell styles apart; seconds, not minutes, on a CPU."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv = torch.nn.Conv2d(3, 32, 5, stride=4)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), torch.relu(self.conv(x)).mean(dim=(2, 3))], dim=1)


def tiny_eval_models(encoder: str = "default"):
    """``EvalModels`` for offline tests and CPU benchmarks: the shipped style encoder, the tiny open_clip
    model (random weights), ``TinyImageFeatures`` for FID/KID and a small random CNN for Gram matrices."""
    from styleboost.evaluate import EvalModels
    from styleboost.metrics.clip import load_clip
    from styleboost.metrics.extractors import GramMatrices, ModuleFeatures, StyleVectors
    from styleboost.style_encoder import create_style_encoder
    from styleboost.style_encoder.backbones import SmallCNN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip = load_clip(register_tiny_open_clip())
        gram = GramMatrices(SmallCNN([8, 16, 32]), weights_id="tiny-seed0")
    models = EvalModels(
        style=StyleVectors(create_style_encoder(encoder)), clip=clip,
        fid=ModuleFeatures(TinyImageFeatures(), key="tiny-image-features:seed0"), gram=gram,
    )
    models.info = {name: {"name": f"tiny {name}"} for name in ("style_encoder", "clip", "fid_features", "gram")}
    models.info["style_encoder"]["name"] = encoder
    return models
