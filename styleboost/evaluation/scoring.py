"""The numbers of an evaluation: features of the StyleRef set and of the prompts, per-image scores, group
summaries (means, KID, FID) and each run's report (overall, per prompt set, per prompt, per image)."""

from __future__ import annotations

import math
from typing import Any

import torch

from styleboost.evaluation.config import EvaluateConfig
from styleboost.evaluation.models import EvalModels, extractors_of
from styleboost.metrics.cache import EmbeddingCache
from styleboost.metrics.clip import ClipModel
from styleboost.metrics.definitions import Metric
from styleboost.metrics.extractors import GramDistances, split_gram_matrices
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.fid_kid import frechet_distance, kernel_distance
from styleboost.metrics.image_sets import ImageSet
from styleboost.metrics.scores import clip_score, mean_distance_within_groups, similarity_to_set


def styleref_features(styleref: ImageSet, models: EvalModels, scoring: Scoring, cache: EmbeddingCache):
    """Features of the StyleRef images, and the extractor of Gram distances to them (if Gram is scored).

    One pass over the images: the Gram matrices (never cached) are computed beside the cached vectors."""
    extractors = extractors_of(models) | ({"gram": models.gram} if models.gram else {})
    features = compute_features(styleref.paths, extractors, scoring, cache, desc="StyleRef")
    grams = features.pop("gram", None)
    if grams is None:
        return features, None
    return features, GramDistances(models.gram, split_gram_matrices(models.gram, grams.mean(dim=0)))


def text_embeddings(clip: ClipModel | None, runs: list[ImageSet]) -> dict[str, torch.Tensor]:
    """CLIP text embedding of every prompt-without-token the runs have."""
    texts = sorted({im.prompt_without_token for run in runs for im in run.images if im.prompt_without_token is not None})
    if clip is None or not texts:
        return {}
    return dict(zip(texts, clip.encode_texts(texts)))


def image_scores(run: ImageSet, features: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
                 texts: dict[str, torch.Tensor], metrics: list[Metric]) -> dict[str, torch.Tensor]:
    """Per-image values ``(N,)`` of every image-level metric (NaN where it cannot be computed)."""
    keys = {m.key for m in metrics}
    n = len(run.images)
    scores: dict[str, torch.Tensor] = {}
    groups = [im.prompt_key if im.prompt_index is not None else None for im in run.images]
    if "style" in features:
        scores["style_score"], scores["style_centroid"] = similarity_to_set(features["style"], reference["style"])
        scores["diversity_style"] = mean_distance_within_groups(features["style"], groups)
    if "clip" in features:
        scores["clip_i"] = similarity_to_set(features["clip"], reference["clip"])[0]
        scores["diversity_clip"] = mean_distance_within_groups(features["clip"], groups)
        scores["clip_t"] = torch.full((n,), float("nan"))
        known = [i for i, im in enumerate(run.images) if im.prompt_without_token in texts]
        if known:
            prompts = torch.stack([texts[run.images[i].prompt_without_token] for i in known])
            scores["clip_t"][known] = clip_score(features["clip"][known], prompts)
    if "gram" in features:
        scores["gram_distance"] = features["gram"].mean(dim=1)
    return {k: v for k, v in scores.items() if k in keys}


def _mean(values: torch.Tensor) -> float | None:
    finite = values[~torch.isnan(values)]
    return float(finite.mean()) if len(finite) else None


def group_summary(indices: list[int], scores: dict[str, torch.Tensor], fake: torch.Tensor | None,
                  real: torch.Tensor | None, config: EvaluateConfig, with_fid: bool) -> dict[str, Any]:
    """Means of the image-level metrics over ``indices``, and the set-level metrics of those images."""
    summary: dict[str, Any] = {"count": len(indices)}
    summary.update({key: _mean(values[indices]) for key, values in scores.items()})
    wanted = set(config.metrics)
    if fake is not None and real is not None:
        if "kid" in wanted:
            summary["kid"], summary["kid_std"] = kernel_distance(
                real, fake[indices], config.kid_subsets, config.kid_subset_size, config.seed
            )
        if "fid" in wanted and with_fid:  # a covariance of a prompt's few images means nothing
            summary["fid"] = frechet_distance(real, fake[indices])
    return summary


def clean(value: Any) -> Any:
    """NaN -> None, tensors -> floats: what JSON can hold."""
    if isinstance(value, torch.Tensor):
        value = float(value)
    return None if isinstance(value, float) and math.isnan(value) else value


def run_report(run: ImageSet, features: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
               texts: dict[str, torch.Tensor], metrics: list[Metric], config: EvaluateConfig) -> dict[str, Any]:
    """Everything the report says of one run: overall, per prompt set, per prompt and per image."""
    scores = image_scores(run, features, reference, texts, metrics)
    fake, real = features.get("fid"), reference.get("fid")

    def summarise(indices: list[int], with_fid: bool) -> dict[str, Any]:
        return {k: clean(v) for k, v in group_summary(indices, scores, fake, real, config, with_fid).items()}

    by_set: dict[str, list[int]] = {}
    by_prompt: dict[str, list[int]] = {}
    for i, image in enumerate(run.images):
        by_set.setdefault(image.prompt_set, []).append(i)
        by_prompt.setdefault(image.prompt_key, []).append(i)
    prompts = []
    for key, indices in by_prompt.items():
        first = run.images[indices[0]]
        prompts.append({
            "key": key, "prompt_set": first.prompt_set, "prompt_index": first.prompt_index,
            "prompt": first.prompt, "prompt_template": first.prompt_template,
            "prompt_without_token": first.prompt_without_token,
            "files": [run.images[i].file for i in indices],
            "metrics": summarise(indices, False),
        })
    images = [
        {"file": im.file, "prompt_key": im.prompt_key, "seed": im.seed,
         "metrics": {key: clean(values[i]) for key, values in scores.items()}}
        for i, im in enumerate(run.images)
    ]
    return {
        "name": run.name, "dir": str(run.root.resolve()), "count": len(run.images), "notes": run.notes,
        "overall": summarise(list(range(len(run.images))), True),
        "prompt_sets": {name: summarise(indices, True) for name, indices in by_set.items()},
        "prompts": prompts,
        "images": images,
    }


def run_reports(runs: list[ImageSet], features: dict[str, torch.Tensor], reference: dict[str, torch.Tensor],
                texts: dict[str, torch.Tensor], metrics: list[Metric], config: EvaluateConfig) -> list[dict[str, Any]]:
    """``run_report`` of every run, from the features of all runs' images (in run order, as computed in one pass)."""
    reports, start = [], 0
    for run in runs:
        stop = start + len(run.images)
        part = {name: values[start:stop] for name, values in features.items()}
        reports.append(run_report(run, part, reference, texts, metrics, config))
        start = stop
    return reports
