"""Score generated images against the StyleRef set and compare runs in one report (``styleboost evaluate``).

For each run (a ``styleboost generate`` output folder) and every image: style score (trained style
encoder), CLIP-T (prompt without the token), CLIP-I, Gram distance and diversity; for every group
of images (prompt, prompt set, overall): the means of those, plus KID (and FID per prompt set and
overall) against the StyleRef set. Features are computed once per image and model and cached by
file hash. Writes ``report.json``, ``report.md`` and ``report.html`` into ``--out``.

One job: the recipe ``evaluate`` (read the runs, load the models, compute features, score, write), the
report's top-level record, and the command line. The settings are in ``config``, the networks in
``models``, the numbers in ``scoring``, the files in ``report/``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import package_versions
from styleboost.core.notice import notice
from styleboost.core.paths import default_cache_dir
from styleboost.evaluation.config import EvaluateConfig, parse_runs
from styleboost.evaluation.models import EvalModels, build_models, extractors_of, only_needed
from styleboost.evaluation.report.files import REPORT_FILES, write_report
from styleboost.evaluation.report.markdown import overall_markdown
from styleboost.evaluation.scoring import run_reports, styleref_features, text_embeddings
from styleboost.metrics.cache import EmbeddingCache
from styleboost.metrics.definitions import Metric, selected_metrics
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.image_sets import ImageSet, read_run, read_styleref


def evaluate(config: EvaluateConfig, models: EvalModels | None = None,
             context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score every run against the StyleRef set, write the report files and return the report.

    ``models`` replaces the networks the config names (tests pass tiny ones); ``context`` adds
    top-level entries to the report (e.g. the protocol that made the images)."""
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
    reports = run_reports(runs, features, reference, texts, metrics, config)
    report = assemble_report(config, styleref, models, metrics, reports, scoring, cache) | (context or {})
    write_report(report, out)
    return report


def claim_report_dir(out: str | Path, overwrite: bool) -> Path:
    """The report folder; refuses one that already holds a report unless ``overwrite``."""
    folder = Path(out).expanduser()
    existing = [f for f in REPORT_FILES.values() if (folder / f).exists()]
    if existing and not overwrite:
        raise StyleBoostError(f"--out {folder} already holds {existing[0]}; pass --overwrite to replace the report")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def scoring_of(config: EvaluateConfig) -> Scoring:
    """How features are computed: image size, batch, workers, device and autocast, progress bars."""
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    workers = config.workers if config.workers is not None else min(8, max(0, (os.cpu_count() or 1) - 1))
    fp16 = device.startswith("cuda") if config.fp16 is None else config.fp16
    if fp16 and not device.startswith("cuda"):  # compute_features autocasts on CUDA only
        notice(f"--fp16 autocast needs a CUDA device; scoring in fp32 on {device}")
        fp16 = False
    return Scoring(config.image_size, config.batch_size, workers, device, fp16, config.progress)


def cache_of(config: EvaluateConfig) -> EmbeddingCache:
    """The embedding cache ``--cache-dir`` names: a folder, ``none`` (no cache), or the styleboost cache."""
    if config.cache_dir == "none":
        return EmbeddingCache(None)
    return EmbeddingCache(config.cache_dir or default_cache_dir() / "embeddings")


def assemble_report(config: EvaluateConfig, styleref: ImageSet, models: EvalModels, metrics: list[Metric],
                    runs: list[dict[str, Any]], scoring: Scoring, cache: EmbeddingCache) -> dict[str, Any]:
    """The whole report: versions, the StyleRef set, the models and settings used, the metrics, notes and runs."""
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


def run(config: EvaluateConfig) -> int:
    """``styleboost evaluate``: score the runs and say where the report is."""
    report = evaluate(config)
    print(overall_markdown(report))
    print(f"report of {len(report['runs'])} run(s) in {Path(config.out)}: {', '.join(REPORT_FILES.values())}")
    return 0
