"""Model families: how a family turns captions into the UNet's conditioning.

SD 1.x and 2.x share one family (one text encoder, hidden states as cross-attention context;
epsilon or v-prediction is read from the scheduler). SDXL would be one more class here (two
text encoders, pooled embeddings and added time ids in ``added_cond_kwargs``), not a fork of
the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from styleboost.core.errors import StyleBoostError


@dataclass
class StableDiffusionFamily:
    """SD 1.x / 2.x: CLIP text encoder hidden states condition the UNet."""

    tokenizer: Any
    name: str = "stable-diffusion"

    def tokenize(self, captions: list[str]) -> torch.Tensor:
        return self.tokenizer(
            captions,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids

    def encode(self, input_ids: torch.Tensor, text_encoder, device: torch.device) -> dict[str, torch.Tensor]:
        """Keyword arguments for ``unet(noisy_latents, timesteps, **conditioning)``.

        ``text_encoder`` may be the DDP-wrapped training module (which has no ``.device``); calling the
        wrapper, not the module inside it, is what synchronises its gradients across processes."""
        hidden = text_encoder(input_ids.to(device), return_dict=False)[0]
        return {"encoder_hidden_states": hidden}


def family_for(pipe) -> StableDiffusionFamily:
    """Pick the family of a loaded pipeline; unsupported ones get a one-line error."""
    name = type(pipe).__name__
    if name in ("StableDiffusionPipeline",):
        return StableDiffusionFamily(pipe.tokenizer)
    raise StyleBoostError(f"training {name} models is not supported yet (supported: Stable Diffusion 1.x and 2.x)")


def concat_conditioning(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Join per-caption conditioning dicts along the batch dimension."""
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
