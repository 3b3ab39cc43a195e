"""Writing trained weights in the formats users load: diffusers LoRA, kohya LoRA, TI embeddings, pipelines.

- LoRA: ``pytorch_lora_weights.safetensors`` (``pipe.load_lora_weights(output_dir)``), with the
  adapter's peft config as metadata (rank/alpha, DoRA, target modules) so every variant loads as trained.
- kohya/webui: the same LoRA through diffusers' ``convert_state_dict_to_kohya``, in kohya key names
  (``lora_unet_*``; ``lora_te_*`` for SD 1.x/2.x, ``lora_te1_*``/``lora_te2_*`` for SDXL), every module's
  ``.alpha`` its trained alpha, and the safetensors metadata webui and ComfyUI read: kohya's ``ss_*``
  training keys and ``modelspec.*``.
- Custom Diffusion: ``pytorch_custom_diffusion_weights.safetensors`` in the keys of diffusers'
  ``CustomDiffusionAttnProcessor`` (``<processor>.to_k_custom_diffusion.weight``, ``...to_v...``), which
  ``pipe.unet.load_attn_procs(output_dir, weight_name=..., _pipeline=pipe)`` installs; every other attention
  processor is named by an empty tensor, so it gets a weightless one (diffusers sets all processors at once).
- Token embeddings: ``learned_embeds.safetensors``, {token: vector}, and one webui file per token,
  ``embeddings/<token without <>>.safetensors`` = {"emb_params": [1, dim]}, which diffusers'
  ``load_textual_inversion(file, token=...)`` reads too. SDXL (two encoders): the webui/ComfyUI layout,
  {"clip_l": [n, 768], "clip_g": [n, 1280]}, rows in token order (``learned_embeds.safetensors`` holds all
  tokens and names them in its metadata; each per-token file holds one row of each).
- Full fine-tune: a diffusers pipeline folder (safetensors).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from styleboost.sd.weights import (
    CUSTOM_DIFFUSION_FILE,
    EMBEDDINGS_DIR,
    EMBEDDINGS_FILE,
    KOHYA_FILE,
    LORA_FILE,
    SDXL_EMBEDDING_KEYS,
    embedding_file_names,
)
from styleboost.training.adapters import kohya_adapter_metadata
from styleboost.training.methods import (
    ADAPTER_NAME,
    CrossAttentionKVPart,
    FullPart,
    Method,
    Models,
    cross_attention_layers,
)


@dataclass
class TrainingInfo:
    """What a training run tells other tools about its weights (the kohya LoRA's ``ss_*``/``modelspec.*`` metadata)."""

    base_model: str | None
    output_name: str
    tokens: list[str]
    resolution: int
    tag_frequency: dict[str, dict[str, int]]  # kohya's: image folder name -> {tag: count}
    num_train_images: int
    num_reg_images: int
    max_train_steps: int
    learning_rate: float
    text_encoder_lr: float | None
    seed: int
    comment: str


def tag_frequency(examples) -> dict[str, dict[str, int]]:
    """Per image folder, how many captions hold each tag: comma-separated, stripped, lower-cased (as kohya counts)."""
    counts: dict[str, dict[str, int]] = {}
    for example in examples:
        folder = counts.setdefault(Path(example.path).parent.name, {})
        for tag in (t.strip().lower() for t in example.caption.split(",")):
            if tag:
                folder[tag] = folder.get(tag, 0) + 1
    return counts


def training_info(run) -> TrainingInfo:
    """The ``TrainingInfo`` of a finished ``styleboost.training.loop.Run``."""
    cfg = run.cfg
    return TrainingInfo(
        base_model=cfg.pretrained_model_name_or_path,
        output_name=Path(run.output_dir).name,
        tokens=list(run.models.tokens),
        resolution=int(run.resolution),
        tag_frequency=tag_frequency(run.styleref + run.aux),
        num_train_images=len(run.styleref),
        num_reg_images=len(run.aux),
        max_train_steps=cfg.max_train_steps,
        learning_rate=cfg.learning_rate,
        text_encoder_lr=cfg.text_encoder_lr,
        seed=cfg.seed,
        comment=f"StyleBoost {run.method.name}, aux mode {cfg.aux_mode}, prior loss weight {cfg.prior_loss_weight}",
    )


def lora_state(model) -> dict[str, torch.Tensor]:
    """The model's peft LoRA weights in peft's key naming (``lora_A``/``lora_B``), which diffusers' loaders take as
    they are. Not diffusers' ``convert_state_dict_to_diffusers``: it renames only the attention projections (to
    ``lora.down``/``lora.up``), and the UNet loader converts a file only when its first key is not in peft naming,
    so LoRA on convolutions whose first key is a conv's would reload wrong.

    DoRA's ``lora_magnitude_vector`` keys get the ``.weight`` of the parameter they hold: peft's loader (the UNet's)
    appends it when missing, transformers' ``load_adapter`` (the text encoder's) does not and would drop them."""
    from peft.utils import get_peft_model_state_dict

    return {f"{k}.weight" if k.endswith(".lora_magnitude_vector") else k: v
            for k, v in get_peft_model_state_dict(model).items()}


def save_lora(
    models: Models, method: Method, output_dir: Path, *, kohya: bool, info: TrainingInfo | None = None
) -> list[Path]:
    """Save every LoRA part in one diffusers file (and optionally a kohya copy, with ``info`` as metadata)."""
    targets = [p.target for p in method.lora_parts()]
    layers = {f"{t}_lora_layers": lora_state(models.module(t)) for t in targets}
    metadata = {f"{t}_lora_adapter_metadata": models.module(t).peft_config["default"].to_dict() for t in targets}
    models.pipeline_class.save_lora_weights(output_dir, **layers, **metadata, weight_name=LORA_FILE)
    written = [output_dir / LORA_FILE]
    if kohya:
        kohya_meta = kohya_metadata(models, method, info)
        save_file(kohya_state(models, method), str(output_dir / KOHYA_FILE), metadata=kohya_meta)
        written.append(output_dir / KOHYA_FILE)
    return written


def kohya_state(models: Models, method: Method) -> dict[str, torch.Tensor]:
    """LoRA in SD 1.x/2.x kohya keys, each module's ``.alpha`` its trained alpha (diffusers writes alpha = rank)."""
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict

    state, sdxl = {}, is_sdxl(models)
    for part in method.lora_parts():
        module = models.module(part.target)
        prefix = f"{part.target}."
        if part.target.startswith("text_encoder") and not hasattr(module, "text_model"):
            prefix += "text_model."  # webui and ComfyUI name CLIP's layers with the level transformers 5.6 flattened
        peft_state = {prefix + k: v for k, v in get_peft_model_state_dict(module).items()}
        alphas = lora_alphas(module, prefix)
        for key, value in convert_state_dict_to_kohya(peft_state).items():
            module_name = key.split(".")[0]
            if key.startswith("lora_te1_") and not sdxl:  # diffusers names it for SDXL's two encoders
                key = "lora_te_" + key.removeprefix("lora_te1_")
            state[key] = torch.tensor(alphas[module_name]) if key.endswith(".alpha") else value.contiguous()
    return state


KOHYA_PREFIXES = {"unet": "lora_unet", "text_encoder": "lora_te1", "text_encoder_2": "lora_te2"}  # as diffusers'


def lora_alphas(model, prefix: str) -> dict[str, float]:
    """Each peft LoRA layer's alpha (LoCon's conv layers may have their own) under the module name diffusers'
    ``convert_state_dict_to_kohya`` gives it in a state keyed ``prefix`` + the layer's name (``unet.``,
    ``text_encoder.text_model.``...): the target's kohya prefix, the rest with ``_`` for ``.``."""
    from peft.tuners.lora import LoraLayer

    target, _, rest = prefix.partition(".")
    return {f"{KOHYA_PREFIXES[target]}_{rest}{name}".replace(".", "_"): float(layer.lora_alpha[ADAPTER_NAME])
            for name, layer in model.named_modules() if isinstance(layer, LoraLayer)}


def kohya_metadata(models: Models, method: Method, info: TrainingInfo | None) -> dict[str, str]:
    """The safetensors metadata of the kohya file: kohya sd-scripts' ``ss_*`` keys and ModelSpec's
    ``modelspec.*`` (named as in sd-scripts' train_network.py and library/sai_model_spec.py). All strings."""
    part = method.lora_parts()[0]
    v_prediction = models.noise_scheduler.config.prediction_type == "v_prediction"
    sdxl = is_sdxl(models)
    # SD 2.x: OpenCLIP ViT-H, or v-prediction
    v2 = not sdxl and (models.text_encoder.config.hidden_size == 1024 or v_prediction)
    version = "sdxl_base_v1-0" if sdxl else ("sd_v2" if v2 else "sd_v1") + ("_v" if v_prediction else "")
    meta: dict[str, Any] = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": part.rank,
        "ss_network_alpha": part.alpha,
        "ss_network_dropout": part.dropout,
        "ss_v2": v2,
        "ss_base_model_version": version,
    } | kohya_adapter_metadata(method.lora_parts())
    if info is not None:
        base = info.base_model or ""
        architecture = "stable-diffusion-xl-v1-base" if sdxl else "stable-diffusion-v1"
        if v2:
            architecture = "stable-diffusion-v2-768-v" if v_prediction else "stable-diffusion-v2-512"
        meta |= {
            "ss_sd_model_name": Path(base).name if base and Path(base).exists() else base,
            "ss_output_name": info.output_name,
            "ss_resolution": (info.resolution, info.resolution),
            "ss_tag_frequency": json.dumps(info.tag_frequency),
            "ss_num_train_images": info.num_train_images,
            "ss_num_reg_images": info.num_reg_images,
            "ss_max_train_steps": info.max_train_steps,
            "ss_learning_rate": info.learning_rate,
            "ss_unet_lr": info.learning_rate,
            "ss_text_encoder_lr": info.text_encoder_lr if info.text_encoder_lr is not None else info.learning_rate,
            "ss_seed": info.seed,
            "ss_training_comment": info.comment,
            "modelspec.sai_model_spec": "1.0.0",
            "modelspec.architecture": f"{architecture}/lora",
            "modelspec.implementation": "diffusers",
            "modelspec.title": info.output_name,
            "modelspec.trigger_phrase": ", ".join(f"{t} style" for t in info.tokens),
            "modelspec.resolution": f"{info.resolution}x{info.resolution}",
            "modelspec.prediction_type": "v" if v_prediction else "epsilon",
            "modelspec.date": datetime.datetime.now().isoformat(timespec="seconds"),
        }
    return {key: str(value) for key, value in meta.items()}  # safetensors metadata holds strings only


def is_sdxl(models: Models) -> bool:
    return models.family.name == "stable-diffusion-xl"


def token_rows(models: Models, encoder: str) -> torch.Tensor:
    """[tokens, dim]: the bound tokens' input-embedding rows in one text encoder, in token order."""
    weight = models.module(encoder).get_input_embeddings().weight.detach().float().cpu()
    return weight[models.token_ids[encoder]].clone()


def save_embeddings(models: Models, output_dir: Path) -> list[Path]:
    """Every bound new token's embedding in one file, and each token's in its own webui-format file."""
    names = embedding_file_names(models.tokens)
    if is_sdxl(models):
        rows = {key: token_rows(models, encoder) for key, encoder in SDXL_EMBEDDING_KEYS.items()}
        everything = rows
        per_token = {t: {key: r[k : k + 1].contiguous() for key, r in rows.items()} for k, t in enumerate(models.tokens)}
    else:
        rows = token_rows(models, "text_encoder")
        everything = {token: rows[k] for k, token in enumerate(models.tokens)}
        per_token = {t: {"emb_params": rows[k : k + 1].contiguous()} for k, t in enumerate(models.tokens)}
    path = output_dir / EMBEDDINGS_FILE
    save_file(everything, str(path), metadata={"tokens": json.dumps(models.tokens)})
    written = [path]
    (output_dir / EMBEDDINGS_DIR).mkdir(exist_ok=True)
    for token, name in names.items():
        written.append(output_dir / EMBEDDINGS_DIR / name)
        save_file(per_token[token], str(written[-1]))
    return written


def custom_diffusion_state(unet) -> dict[str, torch.Tensor]:
    """The trained cross-attention K/V weights under the names diffusers' ``CustomDiffusionAttnProcessor`` (train_kv,
    not train_q_out) holds them, fp32; every other attention processor as an empty tensor. The processor computes
    ``to_k_custom_diffusion(context)`` in place of ``attn.to_k``, so the trained weights are its weights as they are.
    diffusers' own ``save_attn_procs`` drops the empty entries from a safetensors file, and its loader then refuses
    the file (it must name every processor), hence this writer."""
    layers = cross_attention_layers(unet)
    state = {}
    for name in unet.attn_processors:
        if name not in layers:
            state[name] = torch.zeros(0)
            continue
        for projection in ("to_k", "to_v"):
            weight = getattr(layers[name], projection).weight
            state[f"{name}.{projection}_custom_diffusion.weight"] = weight.detach().float().cpu().contiguous()
    return state


def save_custom_diffusion(models: Models, output_dir: Path) -> Path:
    """The Custom Diffusion file, safetensors with the ``{"format": "pt"}`` metadata diffusers' writer gives it."""
    path = output_dir / CUSTOM_DIFFUSION_FILE
    save_file(custom_diffusion_state(models.unet), str(path), metadata={"format": "pt"})
    return path


def save_pipeline(models: Models, output_dir: Path) -> Path:
    """The whole fine-tuned pipeline as a diffusers folder, every part in fp32.

    Frozen parts were cast to the mixed-precision dtype for training; saved so, transformers would load
    the text encoder in bf16/fp16 while diffusers loads the UNet in fp32, and plain ``from_pretrained``
    + ``pipe(prompt)`` would fail on the dtype mismatch. The run is over, so the casts are in place."""
    for module in (models.vae, models.unet, *models.text_encoders()):
        module.to(torch.float32)
    models.pipeline().save_pretrained(output_dir, safe_serialization=True)
    return output_dir / "model_index.json"


def export_weights(
    models: Models, method: Method, output_dir: Path, *, kohya: bool, info: TrainingInfo | None = None
) -> list[Path]:
    """Write every output this method produces; returns the files written. ``info`` (``training_info(run)``)
    becomes the kohya file's training metadata."""
    written: list[Path] = []
    if any(isinstance(p, FullPart) for p in method.parts):
        written.append(save_pipeline(models, output_dir))
    if method.lora_parts():
        written += save_lora(models, method, output_dir, kohya=kohya, info=info)
    if any(isinstance(p, CrossAttentionKVPart) for p in method.parts):
        written.append(save_custom_diffusion(models, output_dir))
    if models.new_tokens:
        written += save_embeddings(models, output_dir)
    return written
