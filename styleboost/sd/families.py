"""Model families: how a family turns captions (and, for SDXL, image sizes) into the UNet's conditioning.

SD 1.x and 2.x share one family: one text encoder, its last hidden states as cross-attention context
(epsilon or v-prediction is read from the scheduler). SDXL is one more class, not a fork of the loop: two
tokenizers and text encoders, the penultimate hidden states of both concatenated as context, the second's
pooled (projected) output and the six "micro-conditioning" size numbers (original size, crop top-left,
target size) in ``added_cond_kwargs``, as diffusers' ``StableDiffusionXLPipeline.encode_prompt`` and its
``train_dreambooth_lora_sdxl.py`` compute them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from styleboost.core.errors import StyleBoostError


def _tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(
        captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


@dataclass
class StableDiffusionFamily:
    """SD 1.x / 2.x: CLIP text encoder hidden states condition the UNet."""

    tokenizer: Any
    name: str = "stable-diffusion"
    text_encoder_names: tuple[str, ...] = ("text_encoder",)
    tokenizer_names: tuple[str, ...] = ("tokenizer",)
    partly_used_encoders: tuple[str, ...] = ()  # encoders whose last layers do not reach the UNet

    def tokenize(self, captions: list[str]) -> list[torch.Tensor]:
        return [_tokenize(self.tokenizer, captions)]

    def encode(self, input_ids: list[torch.Tensor], text_encoders: Sequence[Any], device: torch.device
               ) -> dict[str, torch.Tensor]:
        """The text part of the conditioning, one row per caption.

        A text encoder may be the DDP-wrapped training module (which has no ``.device``); calling the
        wrapper, not the module inside it, is what synchronises its gradients across processes."""
        hidden = text_encoders[0](input_ids[0].to(device), return_dict=False)[0]
        return {"encoder_hidden_states": hidden}

    def unet_inputs(self, text: dict[str, torch.Tensor], size_ids: torch.Tensor | None) -> dict[str, Any]:
        """Keyword arguments for ``unet(noisy_latents, timesteps, **inputs)``; SD 1.x/2.x use no image sizes."""
        return text


@dataclass
class StableDiffusionXLFamily:
    """SDXL: two CLIP text encoders (penultimate hidden states concatenated; the second's pooled projection)
    and the image-size time ids."""

    tokenizer: Any
    tokenizer_2: Any
    name: str = "stable-diffusion-xl"
    text_encoder_names: tuple[str, ...] = ("text_encoder", "text_encoder_2")
    tokenizer_names: tuple[str, ...] = ("tokenizer", "tokenizer_2")
    partly_used_encoders: tuple[str, ...] = ("text_encoder",)  # its penultimate layer is the last one used

    def tokenize(self, captions: list[str]) -> list[torch.Tensor]:
        return [_tokenize(self.tokenizer, captions), _tokenize(self.tokenizer_2, captions)]

    def encode(self, input_ids: list[torch.Tensor], text_encoders: Sequence[Any], device: torch.device
               ) -> dict[str, torch.Tensor]:
        """Context [batch, 77, dim_1 + dim_2] and pooled text embeddings [batch, projection_dim] (the last
        encoder's, as the pipeline's ``encode_prompt`` takes them)."""
        hidden, pooled = [], None
        for ids, encoder in zip(input_ids, text_encoders):
            out = encoder(ids.to(device), output_hidden_states=True, return_dict=False)
            pooled, states = out[0], out[-1]
            hidden.append(states[-2])
        return {"encoder_hidden_states": torch.cat(hidden, dim=-1), "text_embeds": pooled}

    def unet_inputs(self, text: dict[str, torch.Tensor], size_ids: torch.Tensor | None) -> dict[str, Any]:
        """``size_ids`` [batch, 6]: original height and width, crop top and left, target height and width."""
        if size_ids is None:
            raise ValueError("SDXL needs the image-size time ids of every sample")
        context = text["encoder_hidden_states"]
        added = {"text_embeds": text["text_embeds"], "time_ids": size_ids.to(context.device, context.dtype)}
        return {"encoder_hidden_states": context, "added_cond_kwargs": added}


Family = StableDiffusionFamily | StableDiffusionXLFamily
FAMILY_OF_PIPELINE = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}


def family_for(pipe) -> Family:
    """Pick the family of a loaded pipeline; unsupported ones get a one-line error."""
    name = type(pipe).__name__
    kind = FAMILY_OF_PIPELINE.get(name)
    if kind == "sd":
        return StableDiffusionFamily(pipe.tokenizer)
    if kind == "sdxl":
        return StableDiffusionXLFamily(pipe.tokenizer, pipe.tokenizer_2)
    raise StyleBoostError(f"training {name} models is not supported (supported: Stable Diffusion 1.x, 2.x and XL)")


def concat_conditioning(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Join per-caption conditioning dicts along the batch dimension."""
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
