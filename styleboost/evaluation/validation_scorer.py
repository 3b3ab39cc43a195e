"""The scorer of ``--validation_metrics``: validation images scored during training as ``styleboost evaluate``
scores generated ones (the same networks, loaders and score definitions), so a curve and a report agree.

Built here rather than in ``training`` because the metric networks live above the training stage;
``train_scripts/train_styleboost.py`` builds it and hands it to ``training.loop.train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from styleboost.evaluation.config import EvaluateConfig
from styleboost.evaluation.evaluate import scoring_of
from styleboost.evaluation.models import EvalModels, build_models
from styleboost.metrics.clip import DEFAULT_CLIP
from styleboost.metrics.extractors import ClipImages
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.image_sets import prompt_without_token
from styleboost.metrics.scores import clip_score, similarity_to_set
from styleboost.style_encoder import DEFAULT_ENCODER
from styleboost.training.config import TrainConfig


class ValidationScorer:
    """Mean style score (to the StyleRef images) and mean CLIP-T (to the prompt without its token) of a set of
    images; the StyleRef features are computed once."""

    def __init__(self, models: EvalModels, scoring: Scoring) -> None:
        self.models, self.scoring = models, scoring
        self._styleref: tuple[tuple[Path, ...], torch.Tensor] | None = None

    def styleref_vectors(self, styleref: Sequence[Path]) -> torch.Tensor:
        key = tuple(Path(p) for p in styleref)
        if self._styleref is None or self._styleref[0] != key:
            vectors = compute_features(list(key), {"style": self.models.style}, self.scoring, desc="StyleRef")["style"]
            self._styleref = (key, vectors)
        return self._styleref[1]

    def __call__(self, images: Sequence[Path], prompts: Sequence[str], tokens: Sequence[str],
                 styleref: Sequence[Path]) -> dict[str, float]:
        images = [Path(p) for p in images]
        scores: dict[str, float] = {}
        if self.models.style is not None:
            vectors = compute_features(images, {"style": self.models.style}, self.scoring, desc="validation")["style"]
            scores["style"] = similarity_to_set(vectors, self.styleref_vectors(styleref))[0].mean().item()
        if self.models.clip is not None:
            clip = self.models.clip
            embedded = compute_features(images, {"clip": ClipImages(clip)}, self.scoring, desc="validation")["clip"]
            texts = clip.encode_texts([prompt_without_token(p, list(tokens)) for p in prompts])
            scores["clip_t"] = clip_score(embedded, texts).mean().item()
        return scores


def validation_scorer(cfg: TrainConfig) -> ValidationScorer | None:
    """The scorer ``cfg.validation_metrics`` asks for (None when it asks for none): evaluate's networks
    (``--validation_encoder``, ``--validation_clip``, else evaluate's defaults), images decoded at the training
    resolution."""
    if not cfg.validation_metrics:
        return None
    config = EvaluateConfig(  # the validation metric names are evaluate's metric groups
        runs=[], styleref="", out="", metrics=list(cfg.validation_metrics),
        encoder=cfg.validation_encoder or DEFAULT_ENCODER, clip=cfg.validation_clip or DEFAULT_CLIP,
        workers=0, progress=False, **({"image_size": cfg.resolution} if cfg.resolution else {}))
    return ValidationScorer(build_models(config), scoring_of(config))
