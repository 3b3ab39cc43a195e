"""Score generated images against the StyleRef set and compare runs in one report (``styleboost evaluate``).

For each run (a ``styleboost generate`` output folder) and every image: style score (trained style
encoder), CLIP-T (prompt without the token), CLIP-I, Gram distance and diversity; for every group
of images (prompt, prompt set, overall): the means of those, plus KID (and FID per prompt set and
overall) against the StyleRef set. Features are computed once per image and model and cached by
file hash. Writes ``report.json``, ``report.md`` and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from styleboost.core.settings import dataclass_from_args, flag_adder
from styleboost.core.errors import StyleBoostError, first_line
from styleboost.core.manifest import package_versions
from styleboost.metrics.cache import EmbeddingCache, file_identity
from styleboost.metrics.clip import DEFAULT_CLIP, ClipModel, load_clip
from styleboost.metrics.definitions import METRIC_GROUPS, Metric, selected_metrics
from styleboost.metrics.extractors import (
    GATYS_VGG19_LAYERS,
    ClipImages,
    FeatureExtractor,
    GramDistances,
    GramMatrices,
    StyleVectors,
    inception_features,
    split_gram_matrices,
)
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.fid_kid import frechet_distance, kernel_distance
from styleboost.metrics.image_sets import ImageSet, read_run, read_styleref
from styleboost.metrics.scores import clip_score, mean_distance_within_groups, similarity_to_set
from styleboost.core.notice import notice
from styleboost.style_encoder import DEFAULT_ENCODER, create_style_encoder

REPORT_FILES = ("report.json", "report.md", "report.html")
FID_FEATURES = ("inception", "clip")


@dataclass
class EvaluateConfig:
    """Every setting of one evaluation (the flags of ``styleboost evaluate`` map onto these fields)."""

    runs: list[str]  # NAME=DIR
    styleref: str
    out: str
    encoder: str = DEFAULT_ENCODER
    clip: str = DEFAULT_CLIP
    metrics: list[str] = field(default_factory=lambda: list(METRIC_GROUPS))
    fid_features: str = "inception"
    inception_weights: str | None = None
    gram_weights: str = "torchvision"  # torchvision (ImageNet VGG19), a .safetensors file, or random
    image_size: int = 299
    batch_size: int = 64
    workers: int | None = None  # None: up to 8, leaving a core for the main process
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    seed: int = 0
    device: str | None = None
    fp16: bool | None = None  # None: on for CUDA
    cache_dir: str | None = None  # None: <styleboost cache>/embeddings; "none": no cache
    overwrite: bool = False
    progress: bool = True

    def validate(self) -> None:
        if not self.runs:
            raise StyleBoostError("--run NAME=DIR is required (once per run to compare)")
        unknown = sorted(set(self.metrics) - set(METRIC_GROUPS))
        if unknown:
            raise StyleBoostError(f"--metrics {','.join(unknown)}: unknown; choose from {', '.join(METRIC_GROUPS)}")
        if self.fid_features not in FID_FEATURES:
            raise StyleBoostError(f"--fid-features {self.fid_features!r}: choose from {', '.join(FID_FEATURES)}")
        for name in ("image_size", "batch_size", "kid_subsets", "kid_subset_size"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        parse_runs(self.runs)


@dataclass
class EvalModels:
    """The networks an evaluation uses; any of them may be None when no chosen metric needs it.

    Tests and benchmarks pass their own (tiny) models here; ``build_models`` loads the real ones."""

    style: FeatureExtractor | None = None
    clip: ClipModel | None = None
    fid: FeatureExtractor | None = None
    gram: GramMatrices | None = None
    info: dict[str, dict[str, Any]] = field(default_factory=dict)  # what the report says of each


# ----------------------------------------------------------------------------- set-up


def parse_runs(specs: list[str], allow_empty_dir: bool = False) -> list[tuple[str, str]]:
    """``NAME=DIR`` pairs, names unique (``NAME=`` too with ``allow_empty_dir``: the base model in a protocol)."""
    pairs = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not (folder.strip() or allow_empty_dir):
            raise StyleBoostError(f"--run {spec!r}: expected NAME=DIR, e.g. --run lora=gen/lora")
        pairs.append((name.strip(), folder.strip()))
    names = [n for n, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StyleBoostError(f"--run name {repeated[0]!r} is given twice; names must differ")
    return pairs


def claim_report_dir(out: str | Path, overwrite: bool) -> Path:
    """The report folder; refuses one that already holds a report unless ``overwrite``."""
    folder = Path(out).expanduser()
    existing = [f for f in REPORT_FILES if (folder / f).exists()]
    if existing and not overwrite:
        raise StyleBoostError(f"--out {folder} already holds {existing[0]}; pass --overwrite to replace the report")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def needs(config: EvaluateConfig) -> set[str]:
    """Which models the chosen metrics need: style, clip, fid, gram."""
    wanted = set(config.metrics)
    models = set()
    if wanted & {"style", "diversity"}:
        models.add("style")
    if wanted & {"clip_t", "clip_i", "diversity"} or (wanted & {"fid", "kid"} and config.fid_features == "clip"):
        models.add("clip")
    if wanted & {"fid", "kid"}:
        models.add("fid")
    if "gram" in wanted:
        models.add("gram")
    return models


def load_gram_backbone(weights: str) -> GramMatrices:
    """VGG19 at relu1_1..relu5_1 with ImageNet weights (torchvision), a local .safetensors file, or random."""
    from styleboost.style_encoder.backbones import VGG19Features

    pretrained = None if weights == "random" else weights
    try:
        backbone = VGG19Features(GATYS_VGG19_LAYERS, pretrained)
    except (OSError, RuntimeError) as err:  # a failed download or an unreadable file
        raise StyleBoostError(
            f"--gram-weights {weights}: VGG19 weights could not be loaded ({first_line(err)[:160]}); "
            "pass a local .safetensors file of vgg19().features, or random"
        ) from None
    weights_id = file_identity(weights) if Path(weights).is_file() else weights
    return GramMatrices(backbone, weights_id=f"vgg19:{weights_id}")


def build_models(config: EvaluateConfig) -> EvalModels:
    """Load the networks the chosen metrics need, as the config names them."""
    wanted = needs(config)
    models = EvalModels()
    if "style" in wanted:
        models.style = StyleVectors(create_style_encoder(config.encoder))
        models.info["style_encoder"] = {"name": config.encoder, "key": models.style.key}
    if "clip" in wanted:
        models.clip = load_clip(config.clip)
        models.info["clip"] = {"name": config.clip, "key": models.clip.key}
    if "fid" in wanted:
        if config.fid_features == "clip":
            models.fid = ClipImages(models.clip)
        else:
            models.fid = inception_features(config.inception_weights)
        models.info["fid_features"] = {"name": config.fid_features, "key": models.fid.key}
    if "gram" in wanted:
        models.gram = load_gram_backbone(config.gram_weights)
        models.info["gram"] = {"name": "vgg19 relu1_1..relu5_1", "weights": config.gram_weights, "key": models.gram.key}
    return models


MODEL_INFO_KEYS = {"style": "style_encoder", "clip": "clip", "fid": "fid_features", "gram": "gram"}


def only_needed(models: EvalModels, config: EvaluateConfig) -> EvalModels:
    """``models`` without the networks no chosen metric uses (so none of them runs)."""
    unused = [name for name in MODEL_INFO_KEYS if name not in needs(config)]
    info = {k: v for k, v in models.info.items() if k not in {MODEL_INFO_KEYS[n] for n in unused}}
    return dataclasses.replace(models, **{name: None for name in unused}, info=info)


def scoring_of(config: EvaluateConfig) -> Scoring:
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    workers = config.workers if config.workers is not None else min(8, max(0, (os.cpu_count() or 1) - 1))
    fp16 = device.startswith("cuda") if config.fp16 is None else config.fp16
    if fp16 and not device.startswith("cuda"):  # compute_features autocasts on CUDA only
        notice(f"--fp16 autocast needs a CUDA device; scoring in fp32 on {device}")
        fp16 = False
    return Scoring(config.image_size, config.batch_size, workers, device, fp16, config.progress)


def cache_of(config: EvaluateConfig) -> EmbeddingCache:
    if config.cache_dir == "none":
        return EmbeddingCache(None)
    if config.cache_dir:
        return EmbeddingCache(config.cache_dir)
    from styleboost.core.paths import default_cache_dir

    return EmbeddingCache(default_cache_dir() / "embeddings")


# ----------------------------------------------------------------------------- features


def extractors_of(models: EvalModels) -> dict[str, FeatureExtractor]:
    named = {"style": models.style, "clip": ClipImages(models.clip) if models.clip else None, "fid": models.fid}
    return {name: ex for name, ex in named.items() if ex is not None}


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


# ----------------------------------------------------------------------------- scores


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


# ----------------------------------------------------------------------------- the whole evaluation


def evaluate(config: EvaluateConfig, models: EvalModels | None = None,
             context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score every run against the StyleRef set, write the report files and return the report.

    ``models`` replaces the networks the config names (tests pass tiny ones); ``context`` adds
    top-level entries to the report (e.g. the protocol that made the images)."""
    from styleboost.evaluation.report.files import write_report

    config.validate()
    out = claim_report_dir(config.out, config.overwrite)
    runs = [read_run(name, folder) for name, folder in parse_runs(config.runs)]
    styleref = read_styleref(config.styleref)
    models = only_needed(models, config) if models else build_models(config)
    scoring, cache = scoring_of(config), cache_of(config)
    reference, gram_distances = styleref_features(styleref, models, scoring, cache)
    extractors = extractors_of(models) | ({"gram": gram_distances} if gram_distances else {})
    paths = [p for run in runs for p in run.paths]
    features = compute_features(paths, extractors, scoring, cache, desc="generated")
    texts = text_embeddings(models.clip, runs) if "clip_t" in config.metrics else {}
    metrics = selected_metrics(config.metrics)
    reports, start = [], 0
    for run in runs:
        stop = start + len(run.images)
        part = {name: values[start:stop] for name, values in features.items()}
        reports.append(run_report(run, part, reference, texts, metrics, config))
        start = stop
    report = assemble_report(config, styleref, models, metrics, reports, scoring, cache) | (context or {})
    write_report(report, out)
    return report


def assemble_report(config: EvaluateConfig, styleref: ImageSet, models: EvalModels, metrics: list[Metric],
                    runs: list[dict[str, Any]], scoring: Scoring, cache: EmbeddingCache) -> dict[str, Any]:
    versions = package_versions()
    notes = list(styleref.notes)
    if models.clip is not None and models.clip.random_weights:
        notes.append(f"CLIP {models.clip.spec} has random weights: its numbers only show that the pipeline runs")
    if "kid" in config.metrics:
        notes.append(
            f"KID: {config.kid_subsets} random subsets of min({config.kid_subset_size}, StyleRef size "
            f"{len(styleref.images)}, group size) images per group; FID only per prompt set and overall"
        )
    return {
        "styleboost_report": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions,
        "styleref": {"dir": str(styleref.root.resolve()), "count": len(styleref.images),
                     "files": [im.file for im in styleref.images]},
        "models": models.info,
        "settings": {
            "metrics": list(config.metrics), "image_size": config.image_size, "batch_size": config.batch_size,
            "workers": scoring.workers, "device": scoring.device, "fp16": scoring.fp16, "seed": config.seed,
            "kid_subsets": config.kid_subsets, "kid_subset_size": config.kid_subset_size,
            "cache": {"dir": str(cache.root) if cache.root else None, "hits": cache.hits, "misses": cache.misses},
        },
        "metrics": [m.to_dict() for m in metrics],
        "notes": notes + [n for run in runs for n in run["notes"]],
        "runs": runs,
    }


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``styleboost evaluate``; ``--a-b`` is also accepted as ``--a_b``."""
    d = EvaluateConfig(runs=[], styleref="", out="")
    add = flag_adder(parser)
    add("--run", dest="runs", action="append", required=True, metavar="NAME=DIR",
        help="A run to score: its name in the report and its `styleboost generate` folder. Repeat to compare runs.")
    add("--styleref", required=True, help="Folder of the StyleRef images the style was trained on.")
    add("--out", required=True, help="Report folder (report.json, report.md, report.html).")
    add("--encoder", default=d.encoder, help="Style encoder: a trained encoder folder or a shipped name (default: default).")
    add("--clip", default=d.clip, help="open_clip model: ARCH:PRETRAINED (e.g. ViT-L-14:openai, or ARCH:/path/ckpt), "
        "hf-hub:org/repo, a local open_clip folder, or toyworld (the toy world's CLIP).")
    add("--metrics", type=_comma_list, default=d.metrics, help=f"Comma-separated metric groups ({','.join(METRIC_GROUPS)}).")
    add("--fid-features", choices=FID_FEATURES, default=d.fid_features,
        help="Features for FID/KID: torchmetrics' Inception-v3 (standard) or the CLIP image embedding.")
    add("--inception-weights", help="Local file of the FID Inception weights (pt_inception-2015-12-05), for offline use.")
    add("--gram-weights", default=d.gram_weights, help="VGG19 weights for the Gram distance: torchvision (ImageNet), "
        "a .safetensors file, or random.")
    add("--image-size", type=int, default=d.image_size, help="Images are resized to squares of this size first.")
    add("--batch-size", type=int, default=d.batch_size, help="Images per batch.")
    add("--workers", type=int, help="DataLoader worker processes decoding images (default: up to 8).")
    add("--kid-subsets", type=int, default=d.kid_subsets, help="Random subsets KID is averaged over.")
    add("--kid-subset-size", type=int, default=d.kid_subset_size, help="Largest KID subset (capped by the set sizes).")
    add("--seed", type=int, default=d.seed, help="Seed of the KID subsets.")
    add("--device", help="cuda, cuda:1, cpu... (default: cuda if available).")
    add("--fp16", action=argparse.BooleanOptionalAction, help="fp16 autocast (default: on for CUDA; FID features stay fp32).")
    add("--cache-dir", help="Embedding cache folder (default: ~/.cache/styleboost/embeddings; 'none' to turn it off).")
    add("--overwrite", action="store_true", help="Replace a report already in --out.")
    add("--no-progress", dest="progress", action="store_false", help="No progress bars.")
    parser.set_defaults(func=run)


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    """``styleboost evaluate``: score the runs and say where the report is."""
    from styleboost.evaluation.report.markdown import overall_markdown

    config = dataclass_from_args(EvaluateConfig, args)
    report = evaluate(config)
    print(overall_markdown(report))  # the Overall table
    print(f"report of {len(report['runs'])} run(s) in {Path(config.out)}: {', '.join(REPORT_FILES)}")
    return 0
