"""The style encoder's training loss: classification + a distance loss on the same unit vectors.

Written here rather than taken from a library: the supervised-contrastive and batch-hard triplet
losses are a few lines each, and pytorch-metric-learning would be a dependency for two functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DISTANCE_LOSSES = ("supcon", "triplet", "none")


def supervised_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SupCon (Khosla et al. 2020, L_out): for each anchor, -mean log-softmax over its positives.

    ``embeddings`` are unit vectors; every anchor needs at least one positive in the batch (the P x K
    sampler guarantees it), anchors without one are left out."""
    n = embeddings.shape[0]
    logits = embeddings.float() @ embeddings.float().T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=embeddings.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positives.sum(1)
    has_positive = count > 0
    if not has_positive.any():
        return embeddings.sum() * 0.0
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1) / count.clamp(min=1)
    return -mean_log_prob[has_positive].mean()


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Triplet loss with batch-hard mining (Hermans et al. 2017) on cosine distance 1 - cos.

    For each anchor: its farthest positive and nearest negative in the batch."""
    distance = 1.0 - embeddings.float() @ embeddings.float().T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positives, negatives = same & ~eye, ~same
    valid = positives.any(1) & negatives.any(1)
    if not valid.any():
        return embeddings.sum() * 0.0
    hardest_positive = distance.masked_fill(~positives, float("-inf")).amax(1)
    hardest_negative = distance.masked_fill(~negatives, float("inf")).amin(1)
    return F.relu(hardest_positive - hardest_negative + margin)[valid].mean()


def style_loss(
    embeddings: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    distance: str = "supcon",
    ce_weight: float = 1.0,
    distance_weight: float = 1.0,
    temperature: float = 0.1,
    margin: float = 0.2,
) -> dict[str, torch.Tensor]:
    """``{"loss", "ce", "distance"}``: loss = ce_weight * CE(logits) + distance_weight * distance loss."""
    ce = F.cross_entropy(logits.float(), labels)
    if distance == "supcon":
        dist = supervised_contrastive_loss(embeddings, labels, temperature)
    elif distance == "triplet":
        dist = batch_hard_triplet_loss(embeddings, labels, margin)
    elif distance == "none":
        dist = ce * 0.0
    else:
        raise ValueError(f"unknown distance loss {distance!r}; choose from {', '.join(DISTANCE_LOSSES)}")
    return {"loss": ce_weight * ce + distance_weight * dist, "ce": ce.detach(), "distance": dist.detach()}
