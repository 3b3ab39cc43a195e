"""What each metric is: its key, label, direction, scale and level, as data the report renders.

``--metrics`` names groups (``style``, ``clip_t``, ``clip_i``, ``gram``, ``fid``, ``kid``, ``diversity``);
each group fills one or more columns of the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    description: str
    higher_is_better: bool | None  # None: neither direction is better
    level: str  # "image": a value per image, averaged over groups; "set": computed on a group of images
    display_scale: float = 1.0
    std_key: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


METRICS: dict[str, list[Metric]] = {
    "style": [
        Metric("style_score", "Style score",
               "cosine similarity of the image's style vector (trained style encoder) to the StyleRef images' vectors, "
               "mean over the StyleRef set", True, "image"),
        Metric("style_centroid", "Style (centroid)",
               "cosine similarity of the image's style vector to the StyleRef set's mean style vector", True, "image"),
    ],
    "clip_t": [
        Metric("clip_t", "CLIP-T",
               "CLIP score (100 x max(cos, 0)) between the image and its prompt with the style token removed",
               True, "image"),
    ],
    "clip_i": [
        Metric("clip_i", "CLIP-I", "cosine similarity of the image's CLIP embedding to the StyleRef images', mean",
               True, "image"),
    ],
    "gram": [
        Metric("gram_distance", "Gram distance",
               "Gatys style loss to the StyleRef set's mean Gram matrices, mean over VGG layers relu1_1..relu5_1",
               False, "image"),
    ],
    "fid": [
        Metric("fid", "FID", "Frechet distance of the images' features to the StyleRef set's (per prompt set "
               "and overall: a covariance needs many images)", False, "set"),
    ],
    "kid": [
        Metric("kid", "KID x10^3", "kernel (polynomial MMD) distance of the images' features to the StyleRef set's, "
               "mean and std over random subsets", False, "set", display_scale=1000.0, std_key="kid_std"),
    ],
    "diversity": [
        Metric("diversity_style", "Diversity (style)",
               "mean pairwise cosine distance between style vectors of images of one prompt", None, "image"),
        Metric("diversity_clip", "Diversity (CLIP)",
               "mean pairwise cosine distance between CLIP embeddings of images of one prompt", None, "image"),
    ],
}

METRIC_GROUPS = tuple(METRICS)


def selected_metrics(groups: list[str]) -> list[Metric]:
    """The metrics of the named groups, in report order."""
    return [m for group in METRIC_GROUPS if group in groups for m in METRICS[group]]
