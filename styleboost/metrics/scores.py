"""Per-image scores from feature vectors: similarity to the StyleRef set, CLIP score, diversity.

Pure functions on tensors (no models, no files), so each is easy to test on hand-made vectors.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import torch
import torch.nn.functional as F


def similarity_to_set(vectors: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarity of each vector to the reference set: ``(mean over the set, to the set's centroid)``."""
    a, b = F.normalize(vectors.float(), dim=1), F.normalize(reference.float(), dim=1)
    centroid = F.normalize(b.mean(dim=0, keepdim=True), dim=1)
    return (a @ b.T).mean(dim=1), (a @ centroid.T).squeeze(1)


def clip_score(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """CLIP score of matched rows: ``100 * max(cos, 0)``, as torchmetrics' CLIPScore defines it."""
    cos = (F.normalize(image_embeddings.float(), dim=1) * F.normalize(text_embeddings.float(), dim=1)).sum(dim=1)
    return 100 * cos.clamp(min=0)


def mean_distance_within_groups(vectors: torch.Tensor, groups: Sequence[str | None]) -> torch.Tensor:
    """Each vector's mean cosine distance (1 - cos) to the other members of its group.

    NaN for a vector alone in its group or with group None. The mean of a group's values is the
    group's mean pairwise distance: its diversity."""
    out = torch.full((len(groups),), float("nan"))
    members: dict[str, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        if group is not None:
            members[group].append(index)
    unit = F.normalize(vectors.float(), dim=1)
    for indices in members.values():
        if len(indices) < 2:
            continue
        distance = 1 - unit[indices] @ unit[indices].T
        out[indices] = distance.sum(dim=1) / (len(indices) - 1)  # the diagonal is 0
    return out
