"""Compare style encoders on labelled evaluation sets: one JSON of every number and one markdown table.

For each (encoder, set): nearest-centroid accuracy, the trained classifier's top-1 accuracy when the
set's styles are among the encoder's classes, retrieval mAP@k / Recall@k on a fixed query/database
split, and the content-leak score when the set knows its contents (the synthetic style set does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from styleboost.core.atomic import write_json_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import package_versions
from styleboost.core.settings import option
from styleboost.style_encoder.dataset import StyleRecord, read_style_data
from styleboost.style_encoder.factory import create_style_encoder
from styleboost.style_encoder.model import StyleEncoder
from styleboost.style_encoder.retrieval import markdown_table, retrieval_metrics

REPORT_JSON = "style_eval.json"
REPORT_MD = "style_eval.md"


@dataclass(frozen=True)
class EvalSet:
    name: str
    records: list[StyleRecord]


def parse_set(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after the folder or file) -> (name, path)."""
    name, sep, path = spec.partition("=")
    if not sep:
        return Path(spec).stem or spec, spec
    if not name or not path:
        raise StyleBoostError(f"--set {spec}: expected NAME=PATH")
    return name, path


def classifier_accuracy(encoder: StyleEncoder, vectors: torch.Tensor, styles: list[str]) -> float | None:
    """Top-1 accuracy of the encoder's own classifier, if it was trained on every style of the set."""
    names = encoder.config.class_names
    if encoder.classifier is None or not set(styles) <= set(names):
        return None
    with torch.no_grad():
        predicted = encoder.logits(vectors.to(encoder.classifier.device)).argmax(1).cpu()
    truth = torch.tensor([names.index(s) for s in styles])
    return float((predicted == truth).float().mean())


def score_encoder(encoder: StyleEncoder, records: list[StyleRecord], batch_size: int = 64, seed: int = 0,
                  progress: bool = False) -> dict[str, Any]:
    """Every metric of one encoder on one set."""
    vectors = encoder.embed([r.path for r in records], batch_size=batch_size, progress=progress)
    styles = [r.style for r in records]
    contents = [r.content for r in records] if all(r.content for r in records) else None
    metrics = retrieval_metrics(vectors, styles, contents, seed=seed)
    accuracy = classifier_accuracy(encoder, vectors, styles)
    if accuracy is not None:
        metrics["classifier_accuracy"] = accuracy
    if contents is None:
        metrics.setdefault("notes", []).append("no content labels: content_leak not computed")
    return metrics


def evaluate_encoders(encoders: list[str], sets: list[tuple[str, str]], out: str | Path, overwrite: bool = False,
                      batch_size: int = 64, seed: int = 0, device: str | None = None,
                      progress: bool = True) -> dict[str, Any]:
    """Score every encoder on every set; write ``style_eval.json`` and ``style_eval.md`` into ``out``."""
    out = Path(out)
    if (out / REPORT_JSON).exists() and not overwrite:
        raise StyleBoostError(f"--out {out} already holds {REPORT_JSON}; pass --overwrite to replace it")
    if not encoders or not sets:
        raise StyleBoostError("give at least one --encoder and one --set")
    eval_sets = [EvalSet(name, read_style_data(path)) for name, path in sets]
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    described: dict[str, Any] = {}
    for name in encoders:
        encoder = create_style_encoder(name).to(device).eval()
        described[name] = {"architecture": encoder.config.name, "dim": encoder.embed_dim,
                           "parameters": sum(p.numel() for p in encoder.parameters()),
                           "trained": bool(encoder.config.training)}
        results[name] = {}
        for eval_set in eval_sets:
            started = time.time()
            metrics = score_encoder(encoder, eval_set.records, batch_size, seed, progress)
            metrics["seconds"] = round(time.time() - started, 2)
            results[name][eval_set.name] = metrics
    report = {"encoders": described, "sets": {s.name: {"path": p, "images": len(s.records),
                                                       "styles": len({r.style for r in s.records})}
                                              for s, (_, p) in zip(eval_sets, sets)},
              "results": results, "seed": seed, "device": device, "versions": package_versions()}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / REPORT_JSON, report)
    (out / REPORT_MD).write_text(markdown_table(results) + "\n")
    return report


@dataclass
class StyleEvalConfig:
    """The settings of ``styleboost style-eval``."""

    encoders: list[str] = option(help="Encoder folder or name (default, small-cnn, gram-vgg19...); repeat to compare.",
                                 flags=("--encoder",), action="append")
    sets: list[str] = option(help="NAME=PATH of a labelled style folder or CSV; repeat for several sets.",
                             flags=("--set",), action="append")
    out: str = option(help="Folder for style_eval.json and style_eval.md.")
    batch_size: int = option(64, "Images per forward pass.")
    seed: int = option(0, "Seed of the query/database split.")
    device: str | None = option(None, "cuda, cpu... (default: cuda if available).")
    overwrite: bool = option(False, "Replace an existing report in --out.")
    progress: bool = option(True, "Progress bars (--no-progress: none).")


def run(cfg: StyleEvalConfig) -> int:
    """``styleboost style-eval``: score the encoders, print the table and say where the report is."""
    report = evaluate_encoders(cfg.encoders, [parse_set(s) for s in cfg.sets], cfg.out, cfg.overwrite,
                               cfg.batch_size, cfg.seed, cfg.device, cfg.progress)
    print(markdown_table(report["results"]))
    print(f"styleboost: wrote {Path(cfg.out) / REPORT_JSON} and {REPORT_MD}")
    return 0
