"""Tiny, architecture-true Stable Diffusion pipelines built offline from configs; real-size ones too.

The real-size ones (SD 1.5, SD 2.1, SDXL) are the released models' component configs
(``sd/configs/real_shapes.yaml``) with random weights, for benchmarks that need true sizes offline.

Tests, benchmarks and the embedded default all load models through ``from_pretrained``
exactly as a user does; this module builds the folder they load. The tokenizer is the real
CLIP BPE tokenizer, written from the vocabulary file that ``open_clip`` ships. ``save_original_checkpoint``
writes such a folder as one original-layout (CompVis/LDM) checkpoint, the file webui users have.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import torch

from styleboost.core.atomic import publish, save_image_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.paths import default_cache_dir
from styleboost.evaluation.models import EvalModels
from styleboost.generation.records import ImageJob, make_record
from styleboost.metrics.clip import load_clip
from styleboost.metrics.extractors import GramMatrices, ModuleFeatures, StyleVectors
from styleboost.sd.loading import assemble_pipeline
from styleboost.sd.tokenizer import build_clip_tokenizer
from styleboost.sd.tokens import fill_placeholders
from styleboost.style_encoder import create_style_encoder
from styleboost.style_encoder.backbones import SmallCNN
from styleboost.styles.stylize import apply_style
from styleboost.styles.synthstyle import make_contents

TINY_RESOLUTION = 32


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


def tiny_sdxl_components(tokenizer, *, seed: int = 0) -> dict:
    """Randomly initialised parts of SDXL's architecture, tiny: a UNet with ``addition_embed_type="text_time"``
    (down: DownBlock2D, CrossAttnDownBlock2D; up: CrossAttnUpBlock2D with two attentions, as SDXL's
    ``up_blocks.0`` that B-LoRA targets, then UpBlock2D), a ``CLIPTextModel`` and a ``CLIPTextModelWithProjection``
    of different widths (so that swapping them fails loudly), the real CLIP tokenizer twice (the second padding
    with "!", as SDXL's ``tokenizer_2`` does) and SDXL's Euler scheduler."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    parts = tiny_components(tokenizer, seed=seed)
    torch.manual_seed(seed + 1)
    tokenizer_2 = sdxl_second_tokenizer(tokenizer)

    def clip(hidden: int, projection: int) -> CLIPTextConfig:
        return CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, projection_dim=projection,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer_2.pad_token_id,
        )

    text_encoder, text_encoder_2 = CLIPTextModel(clip(32, 32)), CLIPTextModelWithProjection(clip(48, 40))
    time_dim = 8
    unet = UNet2DConditionModel(
        sample_size=TINY_RESOLUTION // 2, in_channels=4, out_channels=4, block_out_channels=(32, 64),
        layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32 + 48, attention_head_dim=(4, 8),
        use_linear_projection=True, transformer_layers_per_block=(1, 1), norm_num_groups=16,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + 40,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading", prediction_type="epsilon",
    )
    return dict(unet=unet, vae=parts["vae"], text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                tokenizer=tokenizer, tokenizer_2=tokenizer_2, scheduler=scheduler)


def sdxl_second_tokenizer(tokenizer):
    """SDXL's ``tokenizer_2``: the same CLIP vocabulary, padding with "!" (id 0) instead of the end token."""
    import copy

    second = copy.deepcopy(tokenizer)
    second.pad_token = "!"
    return second


def save_tiny_pipeline(
    folder: str | os.PathLike, *, prediction_type: str = "epsilon", seed: int = 0
) -> Path:
    """Build a tiny ``StableDiffusionPipeline`` and save it as a diffusers folder (safetensors)."""
    return save_pipeline(folder, lambda tok: tiny_components(tok, prediction_type=prediction_type, seed=seed))


def save_pipeline(folder: str | os.PathLike, components: Callable[[Any], dict]) -> Path:
    """Save the pipeline of ``components(tokenizer)`` as a diffusers folder (safetensors): a
    ``StableDiffusionXLPipeline`` when the parts hold a second text encoder, else a ``StableDiffusionPipeline``.
    The tokenizer is the real CLIP tokenizer, written into ``folder/tokenizer`` first."""
    from diffusers import StableDiffusionXLPipeline

    folder = Path(folder)
    tokenizer = build_clip_tokenizer(folder / "tokenizer")
    parts = components(tokenizer)
    pipeline_class = StableDiffusionXLPipeline if "text_encoder_2" in parts else None
    assemble_pipeline(pipeline_class, **parts).save_pretrained(folder, safe_serialization=True)
    return folder


# ----------------------------------------------------------------------------- original (CompVis/LDM) layout
# diffusers reads original-layout checkpoints (``from_single_file``) but ships no writer; its repository's
# scripts/convert_diffusers_to_original_stable_diffusion.py hard-codes SD 1.5's block counts. This writer reads
# the block layout from the component configs instead, so it also covers the tiny pipeline, and it reuses the
# fixed-name table diffusers' own reader uses (``DIFFUSERS_TO_LDM_MAPPING``).

_LDM_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                    "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_LDM_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_LDM_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_BLOCK_KEY = re.compile(r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)")
_MID_KEY = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def _rename_head(rest: str, names: dict[str, str]) -> str:
    """``rest`` with its leading module name (one or two dotted parts) replaced through ``names``."""
    for head, new in names.items():
        if rest.startswith(head + "."):
            return new + rest[len(head):]
    return rest


def _ldm_unet_key(key: str, config: dict) -> str:
    """The original name of a diffusers ``UNet2DConditionModel`` weight (SD 1.x/2.x/XL layout)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"] | DIFFUSERS_TO_LDM_MAPPING["unet"]["addition_embed_type"]
    if key in fixed:  # the second table: SDXL's added (pooled text + size ids) embedding
        return fixed[key]
    per_block = int(config["layers_per_block"]) + 1  # down: resnets + downsampler slot; up: resnets
    if match := _BLOCK_KEY.fullmatch(key):
        side, block, kind, index, rest = match[1], int(match[2]), match[3], int(match[4]), match[5]
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * per_block}.0.op.{rest.removeprefix('conv.')}"
        if kind == "upsamplers":
            slot = 2 if "CrossAttn" in config["up_block_types"][block] else 1
            return f"output_blocks.{block * per_block + per_block - 1}.{slot}.{rest}"
        layer = 1 + block * per_block + index if side == "down" else block * per_block + index
        blocks = "input_blocks" if side == "down" else "output_blocks"
        if kind == "resnets":
            return f"{blocks}.{layer}.0.{_rename_head(rest, _LDM_UNET_RESNET)}"
        return f"{blocks}.{layer}.1.{rest}"
    if match := _MID_KEY.fullmatch(key):
        kind, index, rest = match[1], int(match[2]), match[3]
        if kind == "resnets":
            return f"middle_block.{2 * index}.{_rename_head(rest, _LDM_UNET_RESNET)}"
        return f"middle_block.1.{rest}"
    raise ValueError(f"no original-layout name for UNet weight {key!r}")


def _ldm_vae_weight(key: str, value: torch.Tensor, config: dict) -> tuple[str, torch.Tensor]:
    """The original name of an ``AutoencoderKL`` weight; attention projections become 1x1 convolutions."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in fixed:
        return fixed[key], value
    part, _, inner = key.partition(".")
    if match := _BLOCK_KEY.fullmatch(inner):
        side, block, kind, index, rest = match[1], int(match[2]), match[3], int(match[4]), match[5]
        if side == "up":  # the original decoder numbers its up blocks from the lowest resolution
            block = len(config["up_block_types"]) - 1 - block
        if kind == "resnets":
            return f"{part}.{side}.{block}.block.{index}.{_rename_head(rest, _LDM_VAE_RESNET)}", value
        return f"{part}.{side}.{block}.{side}sample.{rest}", value
    if match := _MID_KEY.fullmatch(inner):
        kind, index, rest = match[1], int(match[2]), match[3]
        if kind == "resnets":
            return f"{part}.mid.block_{index + 1}.{_rename_head(rest, _LDM_VAE_RESNET)}", value
        renamed = _rename_head(rest, _LDM_VAE_ATTENTION)
        if value.ndim == 2:  # Linear (out, in) -> Conv2d (out, in, 1, 1)
            value = value[:, :, None, None]
        return f"{part}.mid.attn_{index + 1}.{renamed}", value
    raise ValueError(f"no original-layout name for VAE weight {key!r}")


_OPEN_CLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
                    "self_attn.out_proj": "attn.out_proj"}
_CLIP_LAYER_KEY = re.compile(r"text_model\.encoder\.layers\.(\d+)\.(.+)")


def _open_clip_state(text_encoder) -> dict[str, torch.Tensor]:
    """A ``CLIPTextModelWithProjection`` in OpenCLIP's names (SDXL's second encoder in its original file):
    q/k/v fused into ``attn.in_proj_*``, the projection transposed (the inverse of diffusers'
    ``convert_open_clip_checkpoint``)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["openclip"]["layers"]
    state, fused = {}, {}
    for key, value in text_encoder.state_dict().items():
        if key in fixed:
            state[fixed[key]] = value.T if key == "text_projection.weight" else value
        elif match := _CLIP_LAYER_KEY.fullmatch(key):
            layer, rest = f"transformer.resblocks.{match[1]}", match[2]
            if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                kind = rest.rsplit(".", 1)[1]  # weight or bias, concatenated in q, k, v order below
                fused.setdefault(f"{layer}.attn.in_proj_{kind}", {})[rest.split(".")[1]] = value
            else:
                state[f"{layer}.{_rename_head(rest, _OPEN_CLIP_LAYER)}"] = value
    for key, parts in fused.items():
        state[key] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]])
    return state


def _clip_state(text_encoder) -> dict[str, torch.Tensor]:
    # transformers >= 5.6 flattened CLIPTextModel; the original layout keeps its ``text_model.`` level
    return {(k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in text_encoder.state_dict().items()}


def original_checkpoint_state(pipe) -> dict[str, torch.Tensor]:
    """A Stable Diffusion 1.x/2.x or XL pipeline's UNet, VAE and CLIP text encoder(s) in original (CompVis/LDM,
    SGM for SDXL) key names: ``model.diffusion_model.*``, ``first_stage_model.*``, and
    ``cond_stage_model.transformer.*`` or, for SDXL, ``conditioner.embedders.0.transformer.*`` (CLIP ViT-L) and
    ``conditioner.embedders.1.model.*`` (OpenCLIP bigG)."""
    state = {f"model.diffusion_model.{_ldm_unet_key(k, pipe.unet.config)}": v
             for k, v in pipe.unet.state_dict().items()}
    for key, value in pipe.vae.state_dict().items():
        name, value = _ldm_vae_weight(key, value, pipe.vae.config)
        state[f"first_stage_model.{name}"] = value
    if getattr(pipe, "text_encoder_2", None) is None:
        state |= {f"cond_stage_model.transformer.{k}": v for k, v in _clip_state(pipe.text_encoder).items()}
    else:
        state |= {f"conditioner.embedders.0.transformer.{k}": v for k, v in _clip_state(pipe.text_encoder).items()}
        state |= {f"conditioner.embedders.1.model.{k}": v for k, v in _open_clip_state(pipe.text_encoder_2).items()}
    return {k: v.detach().contiguous() for k, v in state.items()}


def save_original_checkpoint(pipeline_folder: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the diffusers pipeline in ``pipeline_folder`` as one original-layout ``.safetensors`` checkpoint,
    the kind webui and ComfyUI load and ``StableDiffusion(XL)Pipeline.from_single_file`` reads back."""
    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    pipe = DiffusionPipeline.from_pretrained(str(pipeline_folder))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(original_checkpoint_state(pipe), str(path))
    return path


@lru_cache(maxsize=None)
def tiny_pipeline_path(prediction_type: str = "epsilon") -> Path:
    """The cached tiny pipeline folder, built on first use (about a second, offline)."""
    return cached_pipeline(
        f"tiny-sd-{prediction_type}-v2", lambda tmp: save_tiny_pipeline(tmp, prediction_type=prediction_type)
    )


def tiny_sdxl_pipeline_path() -> Path:
    """The cached tiny SDXL pipeline folder, built on first use (about a second, offline)."""
    return cached_pipeline("tiny-sdxl-v1", lambda tmp: save_pipeline(tmp, tiny_sdxl_components))


def cached_pipeline(name: str, build: Callable[[Path], Path]) -> Path:
    """``default_cache_dir() / name``, written by ``build(folder)`` on first use (into a temporary folder
    that is renamed when complete, so an interrupted build is never mistaken for a pipeline)."""
    folder = default_cache_dir() / name
    if not (folder / "model_index.json").exists():  # another process may finish first: its copy is kept
        publish(folder, build, temporary=folder.with_name(folder.name + f".tmp{os.getpid()}"), replace=False)
    return folder


# ----------------------------------------------------------------------------- real shapes, random weights

REAL_SHAPES_FILE = Path(__file__).parent / "sd" / "configs" / "real_shapes.yaml"


def real_shape_configs(name: str) -> dict:
    """The component configs of the architecture-true pipeline ``name`` (``sd15``, ``sd21``, ``sdxl``), read from
    ``sd/configs/real_shapes.yaml``."""
    import yaml

    shapes = yaml.safe_load(REAL_SHAPES_FILE.read_text())
    if name not in shapes:
        raise StyleBoostError(f"unknown model shape {name!r} (known: {', '.join(shapes)})")
    return shapes[name]


def random_components(tokenizer, configs: dict, *, seed: int = 0) -> dict:
    """Randomly initialised UNet, VAE, CLIP text encoder(s) and scheduler built from their config dicts (the
    layout of ``sd/configs/real_shapes.yaml``); ``tokenizer`` is adjusted by ``configs["tokenizer"]``. A
    ``text_encoder_2`` config (SDXL) adds a ``CLIPTextModelWithProjection`` and SDXL's second tokenizer."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    second = sdxl_second_tokenizer(tokenizer) if "text_encoder_2" in configs else None
    for key, value in configs.get("tokenizer", {}).items():
        setattr(tokenizer, key, value)
    for key, value in configs.get("tokenizer_2", {}).items():
        setattr(second, key, value)

    def clip(model_class, settings: dict, padding):
        return model_class(CLIPTextConfig(**settings, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                          eos_token_id=tokenizer.eos_token_id, pad_token_id=padding.pad_token_id))

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**configs["unet"])
    vae = AutoencoderKL(**configs["vae"])
    parts = dict(text_encoder=clip(CLIPTextModel, configs["text_encoder"], tokenizer), tokenizer=tokenizer)
    if second is not None:  # SDXL: the second encoder pads with "!", as its tokenizer does
        parts |= dict(text_encoder_2=clip(CLIPTextModelWithProjection, configs["text_encoder_2"], second),
                      tokenizer_2=second)
    scheduler_config = dict(configs["scheduler"])
    scheduler = getattr(diffusers, scheduler_config.pop("class")).from_config(scheduler_config)
    return dict(unet=unet, vae=vae, scheduler=scheduler, **parts)


def save_real_shape_pipeline(folder: str | os.PathLike, name: str, *, seed: int = 0) -> Path:
    """The architecture-true pipeline ``name`` with random weights, saved as a diffusers folder (float32
    safetensors, as the released checkpoints are)."""
    configs = real_shape_configs(name)
    return save_pipeline(folder, lambda tokenizer: random_components(tokenizer, configs, seed=seed))


def real_shape_pipeline_path(name: str) -> Path:
    """The cached random-weight pipeline ``name`` (``sd15``: about 4.3 GB, ``sd21``: 5.2 GB, ``sdxl``: 14 GB), built on first
    use (a minute or two on a CPU, offline). The folder name carries a hash of the configs, so editing them
    builds a new one."""
    import hashlib

    digest = hashlib.sha256(json.dumps(real_shape_configs(name), sort_keys=True).encode()).hexdigest()[:10]
    return cached_pipeline(f"random-{name}-{digest}", lambda tmp: save_real_shape_pipeline(tmp, name))


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
