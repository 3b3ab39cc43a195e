"""The style encoder network: backbone -> style descriptors -> head -> an L2-normalised style vector.

``encoder.embed(images)`` is what the rest of the toolkit calls; ``encoder.logits(z)`` is the cosine
classifier over the training styles, used only by the classification loss.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from styleboost.style_encoder.backbones import build_backbone
from styleboost.style_encoder.descriptors import StyleDescriptors
from styleboost.style_encoder.encoder_config import EncoderConfig
from styleboost.style_encoder.preprocess import ImageLike, Preprocess


def build_head(cfg: EncoderConfig, in_dim: int) -> nn.Module | None:
    """BatchNorm over the concatenated descriptors, then an MLP or a linear map to the style vector."""
    if cfg.head == "none":
        return None
    if cfg.head == "linear":
        return nn.Sequential(nn.BatchNorm1d(in_dim), nn.Linear(in_dim, cfg.embed_dim))
    return nn.Sequential(
        nn.BatchNorm1d(in_dim), nn.Linear(in_dim, cfg.head_hidden), nn.GELU(), nn.Linear(cfg.head_hidden, cfg.embed_dim)
    )


class StyleEncoder(nn.Module):
    """Maps images to unit-length style vectors: images of one style lie close, whatever they show."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        cfg.validate()
        self.config = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.init_seed)
            self.backbone = build_backbone(cfg.backbone, cfg.pretrained)
            self.descriptors = StyleDescriptors(self.backbone.channels, self.backbone.pooled_dim, cfg)
            self.head = build_head(cfg, sum(self.descriptors.sizes))
            self.classifier = (
                nn.Parameter(torch.randn(len(cfg.class_names), cfg.embed_dim) * 0.1) if cfg.class_names else None
            )
        self.preprocess = Preprocess(cfg.image_size, tuple(cfg.mean), tuple(cfg.std))

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim if self.head is not None else sum(self.descriptors.sizes)

    def forward(self, pixels: torch.Tensor, return_logits: bool = False):
        """Normalised input ``(B, 3, S, S)`` -> style vectors ``(B, D)`` of unit length
        (and the classifier's logits with ``return_logits``, inside forward so DDP syncs them)."""
        blocks = self.descriptors(*self.backbone(pixels))
        if self.head is None:  # training-free: every block counts equally
            vector = torch.cat([F.normalize(b, dim=1) for b in blocks], dim=1)
        else:
            vector = self.head(torch.cat(blocks, dim=1))
        embeddings = F.normalize(vector.float(), dim=1)
        return (embeddings, self.logits(embeddings)) if return_logits else embeddings

    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Cosine-classifier logits over ``config.class_names``."""
        if self.classifier is None:
            raise ValueError(f"style encoder {self.config.name!r} has no classes to classify")
        return self.config.logit_scale * embeddings @ F.normalize(self.classifier, dim=1).T

    @torch.no_grad()
    def embed(
        self, images: Sequence[ImageLike] | torch.Tensor, batch_size: int = 64, progress: bool = False
    ) -> torch.Tensor:
        """Style vectors ``(N, D)`` (float32, on the CPU) of PIL images, image paths or a pixel tensor."""
        from tqdm.auto import tqdm

        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        starts = range(0, len(images), batch_size)
        for start in tqdm(starts, desc="style vectors", disable=not progress, leave=False):
            pixels = self.preprocess.batch(images[start:start + batch_size]).to(device)
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                out.append(self(pixels).float().cpu())
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, self.embed_dim)


def style_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity matrix ``(len(a), len(b))`` of two sets of style vectors."""
    return F.normalize(a.float(), dim=1) @ F.normalize(b.float(), dim=1).T
