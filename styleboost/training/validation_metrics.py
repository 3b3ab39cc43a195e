"""Scores of the validation images during training, and the checkpoint they choose: ``best/``.

With ``--validation_metrics style,clip_t`` each validation (the base model's at step 0, every
``--validation_steps``, the final one) is scored by a ``Scorer`` the caller passes to ``train`` (the
evaluation stage builds it from ``--validation_encoder`` / ``--validation_clip``; training knows no metric
network). The records go to ``validation/metrics.jsonl`` and the trackers; ``best/`` holds the exported weights
of the step with the highest style score whose CLIP-T stays within ``--max_clip_t_drop`` of the base model's
(step 0), with ``best/best.json`` saying which step and why; ``validation/curve.svg`` draws the curve for the
model card.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Protocol, Sequence

from styleboost.core.atomic import publish
from styleboost.core.notice import notice

METRICS = ("style", "clip_t")
RECORDS_FILE = "metrics.jsonl"
BEST_DIR = "best"
BEST_RECORD = "best.json"
CURVE_FILE = "curve.svg"


class Scorer(Protocol):
    """Mean scores of validation images: ``{"style": ..., "clip_t": ...}`` for the metrics asked.

    ``prompts`` are the prompts each image was drawn from, ``tokens`` the run's tokens (CLIP-T reads the prompt
    without them), ``styleref`` the StyleRef images the style score compares with."""

    def __call__(self, images: Sequence[Path], prompts: Sequence[str], tokens: Sequence[str],
                 styleref: Sequence[Path]) -> dict[str, float]: ...


def records_path(output_dir: Path) -> Path:
    return output_dir / "validation" / RECORDS_FILE


def read_records(output_dir: Path) -> list[dict[str, Any]]:
    """The scored validations so far, in step order (the last record of a step wins)."""
    path = records_path(output_dir)
    if not path.is_file():
        return []
    by_step = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def write_records(output_dir: Path, records: list[dict[str, Any]]) -> None:
    path = records_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def keep_records_up_to(output_dir: Path, step: int) -> None:
    """On resume from ``step``: drop the records (and a ``best/``) of later steps, which the run redoes."""
    records = read_records(output_dir)
    kept = [r for r in records if r["step"] <= step]
    if len(kept) != len(records):
        write_records(output_dir, kept)
    best = read_best(output_dir)
    if best is not None and best["step"] > step:
        shutil.rmtree(output_dir / BEST_DIR)


def choose_best(records: list[dict[str, Any]], max_clip_t_drop: float) -> dict[str, Any] | None:
    """The trained step (> 0) with the highest style score whose CLIP-T is at least the base's (step 0) minus
    ``max_clip_t_drop``; without a CLIP-T (or a base record) the highest style score. None when no step qualifies."""
    base = next((r for r in records if r["step"] == 0), None)
    floor = base["clip_t"] - max_clip_t_drop if base and "clip_t" in base else -math.inf
    allowed = [r for r in records if r["step"] > 0 and "style" in r and r.get("clip_t", math.inf) >= floor]
    return max(allowed, key=lambda r: (r["style"], -r["step"])) if allowed else None


def read_best(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / BEST_DIR / BEST_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def record_scores(output_dir: Path, step: int, scores: dict[str, float], max_clip_t_drop: float) -> bool:
    """Append the scores of ``step``; True when that step is now the best one (its weights belong in ``best/``)."""
    records = [r for r in read_records(output_dir) if r["step"] != step] + [{"step": step, **scores}]
    records.sort(key=lambda r: r["step"])
    write_records(output_dir, records)
    best = choose_best(records, max_clip_t_drop)
    return best is not None and best["step"] == step


def write_best(output_dir: Path, step: int, export, max_clip_t_drop: float) -> Path:
    """``best/`` = ``export(folder)``'s weights of ``step`` and ``best.json`` (its scores, the base's, the rule),
    published whole in place of the old one."""
    records = read_records(output_dir)
    chosen = next(r for r in records if r["step"] == step)
    base = next((r for r in records if r["step"] == 0), None)

    def fill(folder: Path) -> None:
        folder.mkdir(parents=True)
        export(folder)
        (folder / BEST_RECORD).write_text(json.dumps(
            {"step": step, "scores": chosen, "base": base, "max_clip_t_drop": max_clip_t_drop,
             "rule": "highest style score whose CLIP-T is at least the base model's minus max_clip_t_drop"},
            indent=2) + "\n")

    return publish(output_dir / BEST_DIR, fill)


def report_no_best(output_dir: Path, max_clip_t_drop: float) -> None:
    """One notice when no trained step kept CLIP-T within the allowed drop (so there is no ``best/``)."""
    records = read_records(output_dir)
    if records and choose_best(records, max_clip_t_drop) is None:
        base = next((r for r in records if r["step"] == 0), {})
        notice(f"no validation step kept CLIP-T within --max_clip_t_drop {max_clip_t_drop} of the base model's "
               f"({base.get('clip_t', float('nan')):.2f}); no best/ was written")


# ----------------------------------------------------------------------------- the curve


def curve_svg(records: list[dict[str, Any]], best_step: int | None, width: int = 480, height: int = 200) -> str:
    """Style score and CLIP-T against the step, each on its own axis (style left, CLIP-T right), the chosen step
    marked with a vertical line. Hand-drawn SVG: the package has no plotting dependency."""
    steps = [r["step"] for r in records]
    left, right, top, bottom = 48, 48, 14, 30
    span = max(max(steps) - min(steps), 1)

    def x(step: float) -> float:
        return left + (step - min(steps)) / span * (width - left - right)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>']
    for metric, colour, side in (("style", "#1f77b4", left), ("clip_t", "#d62728", width - right)):
        values = [(r["step"], r[metric]) for r in records if metric in r]
        if not values:
            continue
        low, high = min(v for _, v in values), max(v for _, v in values)
        pad = (high - low) * 0.1 or 0.5

        def y(v: float, low=low - pad, high=high + pad) -> float:
            return top + (high - v) / (high - low) * (height - top - bottom)

        points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in values)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"/>' for s, v in values]
        anchor = "end" if side == left else "start"
        offset = -4 if side == left else 4
        for v in (low, high):
            parts.append(f'<text x="{side + offset}" y="{y(v) + 4:.1f}" text-anchor="{anchor}" fill="{colour}">'
                         f'{v:.3g}</text>')
        label_x = side + (-40 if side == left else 4)
        parts.append(f'<text x="{label_x}" y="{top - 2}" fill="{colour}">{"style" if metric == "style" else "CLIP-T"}'
                     f'</text>')
    if best_step is not None:
        parts.append(f'<line x1="{x(best_step):.1f}" x2="{x(best_step):.1f}" y1="{top}" y2="{height - bottom}" '
                     f'stroke="#2ca02c" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x(best_step):.1f}" y="{height - bottom + 24}" text-anchor="middle" fill="#2ca02c">'
                     f'best: {best_step}</text>')
    parts += [f'<text x="{x(s):.1f}" y="{height - bottom + 12}" text-anchor="middle">{s}</text>' for s in steps]
    return "\n".join(parts + ["</svg>"]) + "\n"


def write_curve(output_dir: Path) -> Path | None:
    """``validation/curve.svg`` of the records so far (None when there are none)."""
    records = read_records(output_dir)
    if not records:
        return None
    best = read_best(output_dir)
    path = output_dir / "validation" / CURVE_FILE
    path.write_text(curve_svg(records, best["step"] if best else None))
    return path


def curve_markdown(output_dir: Path) -> list[str]:
    """The model card's section: the curve, a table of the records, and which step ``best/`` holds."""
    records = read_records(output_dir)
    if not records:
        return []
    best = read_best(output_dir)
    lines = ["## Validation metrics", "", f"![validation curve](validation/{CURVE_FILE})", "",
             "| step | style | CLIP-T |", "| ---: | ---: | ---: |"]
    for r in records:
        cells = [f"{r[m]:.3f}" if m == "style" and m in r else f"{r[m]:.2f}" if m in r else "-" for m in METRICS]
        mark = " (base model)" if r["step"] == 0 else " (best/)" if best and best["step"] == r["step"] else ""
        lines.append(f"| {r['step']}{mark} | {cells[0]} | {cells[1]} |")
    if best:
        lines += ["", f"`best/` holds the weights of step {best['step']}: the highest style score whose CLIP-T is "
                      f"within {best['max_clip_t_drop']} of the base model's."]
    return lines + [""]


# ----------------------------------------------------------------------------- during training


def score_validation(run, step: int, images: Sequence[Path], prompts: Sequence[str]) -> dict[str, float]:
    """Score one validation's images with ``run.scorer``; record and log the scores; export ``best/`` when this
    step is the best so far; redraw the curve. Main process only (as validation is)."""
    from styleboost.training.export import export_weights, training_info  # export imports diffusers: deferred

    cfg = run.cfg
    scores = run.scorer(images, prompts, run.models.tokens, [e.path for e in run.styleref])
    scores = {m: float(scores[m]) for m in cfg.validation_metrics}
    run.accelerator.log({f"validation/{m}": v for m, v in scores.items()}, step=step)
    if record_scores(run.output_dir, step, scores, cfg.max_clip_t_drop):
        write_best(run.output_dir, step, lambda folder: export_weights(
            run.models, run.method, folder, kohya=cfg.export_kohya, info=training_info(run)), cfg.max_clip_t_drop)
    write_curve(run.output_dir)
    return scores
