"""Writing trained weights in the formats users load: diffusers LoRA, kohya LoRA, TI embeddings, pipelines.

- LoRA: ``pytorch_lora_weights.safetensors`` (``pipe.load_lora_weights(output_dir)``), with the
  adapter's rank/alpha metadata so a non-default alpha loads with the right scale.
- kohya/webui: the same LoRA through diffusers' ``convert_state_dict_to_kohya``.
- Token embeddings: ``learned_embeds.safetensors``, {token: vector}.
- Full fine-tune: a diffusers pipeline folder (safetensors).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from styleboost.errors import StyleBoostError, first_line
from styleboost.methods import FullPart, Method, Models
from styleboost.models import PICKLE_SUFFIXES

LORA_FILE = "pytorch_lora_weights.safetensors"
KOHYA_FILE = "pytorch_lora_weights_kohya.safetensors"
EMBEDDINGS_FILE = "learned_embeds.safetensors"


def lora_state(model) -> dict[str, torch.Tensor]:
    """The model's peft LoRA weights in diffusers' key naming."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))


def save_lora(models: Models, method: Method, output_dir: Path, *, kohya: bool) -> list[Path]:
    """Save every LoRA part in one diffusers file (and optionally a kohya copy)."""
    targets = [p.target for p in method.lora_parts()]
    layers = {f"{t}_lora_layers": lora_state(models.module(t)) for t in targets}
    metadata = {f"{t}_lora_adapter_metadata": models.module(t).peft_config["default"].to_dict() for t in targets}
    models.pipeline_class.save_lora_weights(output_dir, **layers, **metadata, weight_name=LORA_FILE)
    written = [output_dir / LORA_FILE]
    if kohya:
        save_file(kohya_state(models, method), str(output_dir / KOHYA_FILE))
        written.append(output_dir / KOHYA_FILE)
    return written


def kohya_state(models: Models, method: Method) -> dict[str, torch.Tensor]:
    """LoRA in kohya keys; alphas set from the adapter config (diffusers assumes alpha == rank)."""
    from diffusers.utils import convert_state_dict_to_kohya
    from peft.utils import get_peft_model_state_dict

    peft_state = {}
    for part in method.lora_parts():
        for key, value in get_peft_model_state_dict(models.module(part.target)).items():
            peft_state[f"{part.target}.{key}"] = value
    state = convert_state_dict_to_kohya(peft_state)
    alpha = method.lora_parts()[0].alpha
    return {k: (torch.tensor(float(alpha)) if k.endswith(".alpha") else v.contiguous()) for k, v in state.items()}


def save_embeddings(models: Models, output_dir: Path) -> Path:
    """{token: embedding row} for every bound new token."""
    weight = models.text_encoder.get_input_embeddings().weight.detach().float().cpu()
    state = {token: weight[i].clone() for token, i in zip(models.tokens, models.token_ids)}
    path = output_dir / EMBEDDINGS_FILE
    save_file(state, str(path))
    return path


def find_embeddings(path: str) -> Path:
    """The learned-embeddings file: the path itself or ``learned_embeds.safetensors`` in a folder."""
    emb = Path(path).expanduser()
    if emb.is_dir():
        emb = emb / EMBEDDINGS_FILE
    if emb.suffix in PICKLE_SUFFIXES:
        raise StyleBoostError(
            f"--embeddings {emb} is a pickle file, which can run code when loaded; convert it to .safetensors"
        )
    if not emb.is_file():
        raise StyleBoostError(f"--embeddings file not found: {emb}")
    if emb.suffix != ".safetensors":
        raise StyleBoostError(f"--embeddings {emb}: expected a .safetensors file")
    return emb


def read_embeddings(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Token string -> embedding (1-D, or 2-D for a multi-vector token) from a safetensors file."""

    try:
        embeddings = load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise StyleBoostError(f"could not read embeddings {path}: {first_line(err)}") from None
    if not embeddings:
        raise StyleBoostError(f"embeddings file {path} holds no tokens")
    return embeddings


def load_embeddings(pipe, embeddings: dict[str, torch.Tensor]) -> None:
    """Add each learned token and its embedding to the pipeline's tokenizer and text encoder."""
    tokens = list(embeddings)
    try:
        pipe.load_textual_inversion([embeddings[t] for t in tokens], token=tokens)
    except ValueError as err:
        raise StyleBoostError(f"could not load the learned embeddings: {first_line(err)}") from None


def save_pipeline(models: Models, output_dir: Path) -> Path:
    """The whole fine-tuned pipeline as a diffusers folder."""
    pipe = models.pipeline_class(
        vae=models.vae,
        text_encoder=models.text_encoder,
        tokenizer=models.tokenizer,
        unet=models.unet,
        scheduler=models.inference_scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(output_dir, safe_serialization=True)
    return output_dir / "model_index.json"


def export_weights(models: Models, method: Method, output_dir: Path, *, kohya: bool) -> list[Path]:
    """Write every output this method produces; returns the files written."""
    written: list[Path] = []
    if any(isinstance(p, FullPart) for p in method.parts):
        written.append(save_pipeline(models, output_dir))
    if method.lora_parts():
        written += save_lora(models, method, output_dir, kohya=kohya)
    if models.new_tokens:
        written.append(save_embeddings(models, output_dir))
    return written
