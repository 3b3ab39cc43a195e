"""What every rendering of a report needs worked out once: numbers as displayed, the runs' colours and digits,
the prompts over all runs, and the score tables (runs x metrics, best marked) that Markdown and HTML both print;
``esc`` escapes data for the HTML page and its SVG charts.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

TITLE = "StyleBoost evaluation report"
OVERALL = "Overall"
UNKNOWN_PROMPT = "(prompt unknown)"
RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
               "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
MODEL_LABELS = {"style_encoder": "Style encoder", "clip": "CLIP", "fid_features": "FID features", "gram": "Gram"}


def as_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def scaled(metric: Mapping[str, Any], value: Any) -> float | None:
    """A metric value as displayed (times ``display_scale``), or None when there is no number."""
    number = as_number(value)
    return None if number is None else number * float(metric.get("display_scale") or 1.0)


def decimals_for(largest: float) -> int:
    """Digits after the point for a column whose largest absolute value is ``largest``:
    3 for values below 2 (cosines), 2 above (CLIP-T, FID), 3 significant digits below 0.1."""
    if largest == 0:
        return 3
    if largest < 0.1:
        return min(6, 2 - math.floor(math.log10(largest)))
    return 3 if largest < 2 else 2


def format_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def format_metric(metric: Mapping[str, Any], values: Mapping[str, Any], decimals: int) -> str:
    """One metric of a values dict as displayed: ``-`` for None, ``mean ± std`` when it has a std."""
    raw = values.get(metric["key"])
    mean = scaled(metric, raw)
    if mean is None:
        return "-" if raw is None else str(raw)
    std = scaled(metric, values.get(metric["std_key"])) if metric.get("std_key") else None
    text = format_number(mean, decimals)
    return text if std is None else f"{text} ± {format_number(std, decimals)}"


def best_indices(means: Sequence[float | None], higher_is_better: bool | None, decimals: int) -> set[int]:
    """Positions of the best value (as displayed; ties share it). None when no direction is better,
    fewer than two values, or all values tie."""
    if higher_is_better is None:
        return set()
    shown = {i: round(v, decimals) for i, v in enumerate(means) if v is not None}
    if len(shown) < 2 or len(set(shown.values())) == 1:
        return set()
    target = max(shown.values()) if higher_is_better else min(shown.values())
    return {i for i, v in shown.items() if v == target}


def plural(count: Any, noun: str) -> str:
    """``1 image``, ``20 images``; ``? images`` when the count is unknown."""
    return f"{'?' if count is None else count} {noun}{'' if count == 1 else 's'}"


def arrow(metric: Mapping[str, Any]) -> str:
    return {True: "↑", False: "↓"}.get(metric.get("higher_is_better"), "")


def direction(metric: Mapping[str, Any]) -> str:
    return {True: "higher is better", False: "lower is better"}.get(
        metric.get("higher_is_better"), "no better direction")


def column_title(metric: Mapping[str, Any]) -> str:
    """A metric's label with its arrow, as a table header."""
    return f"{metric.get('label') or metric['key']} {arrow(metric)}".strip()


def esc(text: Any) -> str:
    """Data as HTML text or attribute value."""
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class PromptEntry:
    """One prompt of the protocol, as the union over runs sees it."""

    key: str
    prompt_set: str
    text: str | None  # the prompt without the bound token, or the prompt; None when unknown
    template: str | None
    by_run: dict[str, dict[str, Any]] = field(default_factory=dict)  # run name -> its prompt record

    @property
    def shown_text(self) -> str:
        return self.text if self.text is not None else UNKNOWN_PROMPT


@dataclass(frozen=True)
class ReportView:
    """The report with what every rendering needs worked out once: digits per metric, run colours."""

    report: dict[str, Any]
    metrics: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    decimals: dict[str, int]
    colours: dict[str, str]

    @classmethod
    def of(cls, report: dict[str, Any]) -> ReportView:
        metrics, runs = list(report.get("metrics", [])), list(report.get("runs", []))
        decimals = {m["key"]: metric_decimals(m, runs) for m in metrics}
        colours = {run["name"]: RUN_COLOURS[i % len(RUN_COLOURS)] for i, run in enumerate(runs)}
        return cls(report, metrics, runs, decimals, colours)

    @property
    def prompt_sets(self) -> list[str]:
        """Prompt set names over all runs, in first-seen order."""
        return list(dict.fromkeys(name for run in self.runs for name in run.get("prompt_sets") or {}))

    def sections(self) -> list[tuple[str, list[Mapping[str, Any]], list[Any]]]:
        """(title, per-run values, per-run image counts) for Overall, then each prompt set."""
        overall = (OVERALL, [run.get("overall") or {} for run in self.runs], [run.get("count") for run in self.runs])
        per_set = []
        for name in self.prompt_sets:
            values = [(run.get("prompt_sets") or {}).get(name) or {} for run in self.runs]
            per_set.append((name, values, [v.get("count") for v in values]))
        return [overall, *per_set]


def metric_decimals(metric: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> int:
    """The metric's own ``decimals``, else digits that suit its overall and per-set values."""
    if isinstance(metric.get("decimals"), int):
        return metric["decimals"]
    tables = [run.get("overall") or {} for run in runs]
    tables += [values or {} for run in runs for values in (run.get("prompt_sets") or {}).values()]
    shown = [scaled(metric, t.get(metric["key"])) for t in tables]
    return decimals_for(max((abs(v) for v in shown if v is not None), default=0.0))


def collect_prompts(report: Mapping[str, Any]) -> list[PromptEntry]:
    """The union of prompt keys over runs in first-seen order; the text is the first run's that knows it."""
    entries: dict[str, PromptEntry] = {}
    for run in report.get("runs", []):
        for prompt in run.get("prompts") or []:
            key = prompt["key"]
            text = prompt.get("prompt_without_token") or prompt.get("prompt")
            known = entries.get(key)
            if known is None or (known.text is None and text is not None):
                by_run = known.by_run if known else {}
                prompt_set = prompt.get("prompt_set") or key.split("/")[0]
                entries[key] = PromptEntry(key, prompt_set, text, prompt.get("prompt_template"), by_run)
            entries[key].by_run[run["name"]] = prompt
    return list(entries.values())


def group_by_prompt_set(entries: Iterable[PromptEntry]) -> dict[str, list[PromptEntry]]:
    groups: dict[str, list[PromptEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.prompt_set, []).append(entry)
    return groups


def describe_model(model: Any) -> str:
    """A model entry in one line: its name, then its other settings as ``key=value``."""
    if model is None:
        return "not used"
    if not isinstance(model, Mapping):
        return str(model)
    details = ", ".join(f"{k}={v if isinstance(v, (str, int, float)) else json.dumps(v)}"
                        for k, v in model.items() if k != "name")
    name = str(model.get("name", "unnamed"))
    return f"{name} ({details})" if details else name


def model_lines(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, description) per model the report names."""
    models = report.get("models") or {}
    return [(MODEL_LABELS.get(key, key.replace("_", " ").capitalize()), describe_model(model))
            for key, model in models.items()]


def all_notes(report: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(run name or None, note): the global notes, then each run's."""
    notes: list[tuple[str | None, str]] = [(None, str(note)) for note in report.get("notes") or []]
    notes += [(run["name"], str(note)) for run in report.get("runs", []) for note in run.get("notes") or []]
    return notes


def styleref_summary(report: Mapping[str, Any]) -> tuple[str, Any]:
    styleref = report.get("styleref") or {}
    return str(styleref.get("dir", "?")), styleref.get("count", len(styleref.get("files") or []))


@dataclass(frozen=True)
class Cell:
    text: str
    best: bool = False


@dataclass(frozen=True)
class ScoreTable:
    """One table: runs as rows (name, image count, a cell per metric), metrics as columns."""

    title: str
    metrics: list[dict[str, Any]]
    rows: list[tuple[str, str, list[Cell]]]


def metric_cells(metric: Mapping[str, Any], values: Sequence[Mapping[str, Any]], decimals: int) -> list[Cell]:
    """One column: a metric over several value dicts, the best one marked."""
    best = best_indices([scaled(metric, v.get(metric["key"])) for v in values], metric.get("higher_is_better"),
                        decimals)
    return [Cell(format_metric(metric, v, decimals), i in best) for i, v in enumerate(values)]


def score_tables(view: ReportView) -> list[ScoreTable]:
    """The Overall table, then one per prompt set."""
    tables = []
    for title, values, counts in view.sections():
        columns = [metric_cells(m, values, view.decimals[m["key"]]) for m in view.metrics]
        rows = [(run["name"], "-" if counts[i] is None else str(counts[i]), [column[i] for column in columns])
                for i, run in enumerate(view.runs)]
        tables.append(ScoreTable(title, view.metrics, rows))
    return tables
