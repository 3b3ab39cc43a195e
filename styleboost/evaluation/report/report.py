"""Rendering an evaluation report: ``report.json``, the paper table in ``report.md`` and ``report.html``.

One job: turn the report dict that ``styleboost evaluate`` builds (runs x metrics, overall, per
prompt set, per prompt and per image; see ``write_report``) into files a person reads. The
Markdown holds what a paper would print (one table for all prompts, one per prompt set, a
legend, the notes). The HTML is one self-contained file (inline CSS, inline SVG charts, JPEG
thumbnails as data URIs, no scripts, nothing fetched): header, tables, a bar chart per metric,
the StyleRef images, and per prompt each run's images beside a compact StyleRef strip. Each
StyleRef thumbnail is encoded once, as a CSS class, so the page does not grow with
prompts x StyleRef images. ``check_rendered_report`` asks headless Chromium what the page shows.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from PIL import Image, ImageOps

from styleboost.core.atomic import write_json_atomic, write_text_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.evaluation.report.headless import dump_dom

REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}
TITLE = "StyleBoost evaluation report"
OVERALL = "Overall"
UNKNOWN_PROMPT = "(prompt unknown)"
THUMB_SIZE = 96
THUMB_QUALITY = 80
RUN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
               "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
MODEL_LABELS = {"style_encoder": "Style encoder", "clip": "CLIP", "fid_features": "FID features", "gram": "Gram"}


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir`` (made if missing).

    Both renderings are made before anything is written, so a rendering bug leaves no partial set.
    Existing files are replaced; whether that is allowed is the caller's decision.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StyleBoostError(f"report folder {out} exists and is not a folder")
    markdown, page = render_markdown(report), render_html(report)
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in REPORT_FILES.items()}
    write_json_atomic(paths["json"], report)
    write_text_atomic(paths["md"], markdown)
    write_text_atomic(paths["html"], page)
    return paths


def load_report(path: str | Path) -> dict[str, Any]:
    """A ``report.json`` read back; a missing, invalid or foreign file is one-line error."""
    path = Path(path)
    if not path.is_file():
        raise StyleBoostError(f"{path} not found")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise StyleBoostError(f"{path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(report, dict) or "styleboost_report" not in report:
        raise StyleBoostError(f"{path} is not a styleboost report (no 'styleboost_report' key)")
    return report


# ----------------------------------------------------------------------------- numbers


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


# ----------------------------------------------------------------------------- the report's structure


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


# ----------------------------------------------------------------------------- score tables


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


# ----------------------------------------------------------------------------- Markdown


def render_markdown(report: dict[str, Any]) -> str:
    """``report.md``: header, the Overall and per-prompt-set tables, the metric legend, the notes."""
    view = ReportView.of(report)
    parts = [markdown_header(view), *(markdown_table(t) for t in score_tables(view)),
             markdown_legend(view.metrics), markdown_notes(report)]
    return "\n\n".join(part for part in parts if part) + "\n"


def md_text(text: Any) -> str:
    """Data as Markdown text: HTML-escaped (so markup in a name stays text), ``|`` escaped for tables."""
    return html.escape(str(text), quote=False).replace("|", "\\|")


def markdown_header(view: ReportView) -> str:
    folder, count = styleref_summary(view.report)
    created = f", created {md_text(view.report['created'])}" if view.report.get("created") else ""
    lines = [f"# {TITLE}", "", f"StyleRef: `{folder}` ({plural(count, 'image')}){created}"]
    models = [f"- {label}: {md_text(text)}" for label, text in model_lines(view.report)]
    runs = [f"- {md_text(run['name'])}: `{run.get('dir', '?')}` ({plural(run.get('count'), 'image')})"
            for run in view.runs]
    lines += ["", "Models:", *models] if models else []
    lines += ["", "Runs:", *runs] if runs else []
    return "\n".join(lines)


def markdown_table(table: ScoreTable) -> str:
    heading = f"## {OVERALL}" if table.title == OVERALL else f"## Prompt set: {md_text(table.title)}"
    header = ["run", "images", *(md_text(column_title(m)) for m in table.metrics)]
    lines = [heading, "", markdown_row(header), markdown_row(["---", "---:", *("---:" for _ in table.metrics)])]
    for name, count, cells in table.rows:
        lines.append(markdown_row([md_text(name), count, *(f"**{c.text}**" if c.best else c.text for c in cells)]))
    return "\n".join(lines)


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_legend(metrics: Sequence[Mapping[str, Any]]) -> str:
    if not metrics:
        return ""
    lines = ["## Metrics", ""]
    for metric in metrics:
        description = md_text(metric.get("description") or "")
        how = " ".join(part for part in (arrow(metric), direction(metric)) if part)
        lines.append(f"- **{md_text(metric.get('label') or metric['key'])}** ({how})"
                     + (f": {description}" if description else ""))
    return "\n".join(lines)


def markdown_notes(report: Mapping[str, Any]) -> str:
    notes = all_notes(report)
    if not notes:
        return ""
    return "\n".join(["## Notes", "", *(f"- {md_text(run) + ': ' if run else ''}{md_text(note)}"
                                        for run, note in notes)])


# ----------------------------------------------------------------------------- thumbnails


def thumbnail_data_uri(path: str | Path, size: int = THUMB_SIZE, quality: int = THUMB_QUALITY) -> str | None:
    """A JPEG data URI of the image, ``size`` px on its long side; None when it is missing or unreadable."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            image = ImageOps.exif_transpose(image)
            image.thumbnail((size, size))
            rgb = on_white(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def on_white(image: Image.Image) -> Image.Image:
    """RGB, with any transparency composited over white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


@dataclass(frozen=True)
class StyleRefThumb:
    file: str
    css_class: str
    data_uri: str | None


def styleref_thumbnails(report: Mapping[str, Any]) -> list[StyleRefThumb]:
    styleref = report.get("styleref") or {}
    folder = Path(styleref.get("dir", "."))
    return [StyleRefThumb(str(name), f"sr{i}", thumbnail_data_uri(folder / name))
            for i, name in enumerate(styleref.get("files") or [])]


# ----------------------------------------------------------------------------- HTML


def esc(text: Any) -> str:
    """Data as HTML text or attribute value."""
    return html.escape(str(text), quote=True)


CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d0d7de;--zebra:#f6f8fa;--head:#eef1f4;--best:#d8f5de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--fg);background:#fff;margin:0 auto;padding:24px 32px 48px;max-width:1400px}
h1{font-size:26px;margin:0 0 8px}
h2{font-size:20px;margin:34px 0 12px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:16px;margin:22px 0 8px}
a{color:#0969da;text-decoration:none}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--zebra);
 padding:1px 4px;border-radius:4px;overflow-wrap:anywhere}
small,.muted{color:var(--muted)}
.lead{font-size:15px;margin:0 0 10px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.kv dt{font-weight:600}
dl.kv dd{margin:0;overflow-wrap:anywhere}
.versions{font-size:12px;color:var(--muted);margin:8px 0}
details{margin:6px 0;font-size:13px}
nav{margin:14px 0 0;padding:8px 12px;background:var(--zebra);border-radius:6px}
nav a{margin-right:16px}
table.scores{border-collapse:collapse;margin:4px 0 16px;font-variant-numeric:tabular-nums}
table.scores th,table.scores td{border:1px solid var(--line);padding:5px 10px}
table.scores th{background:var(--head);font-weight:600;text-align:center}
table.scores td.num{text-align:right;white-space:nowrap}
table.scores tbody tr:nth-child(even){background:var(--zebra)}
table.scores td.best{font-weight:700;background:var(--best)}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.legend{margin:0 0 10px}
.legend span.item{margin-right:18px;white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:14px}
figure.chart{margin:0;padding:10px 12px;border:1px solid var(--line);border-radius:6px;
 width:var(--chart-width);max-width:100%}
figure.chart figcaption{font-weight:600;margin-bottom:2px}
figure.chart figcaption small{display:block;font-weight:400;max-width:420px}
figure.chart svg{display:block;max-width:100%;height:auto}
svg text{font-size:9.5px;fill:#333}
svg text.group{font-size:11px;font-weight:600}
svg text.na{fill:#888;font-style:italic}
.strip{display:flex;flex-wrap:wrap;gap:4px;align-items:center;min-height:20px}
.thumb{display:inline-block;width:96px;height:96px;border-radius:3px;background:#eceff1 center/contain no-repeat}
img.thumb{object-fit:contain}
.thumb.mini{width:40px;height:40px}
.thumb.missing{background:repeating-linear-gradient(45deg,#d5d9dd 0 6px,#c4c9ce 6px 12px)}
.prompt{border:1px solid var(--line);border-radius:6px;padding:10px 14px 6px;margin:0 0 12px}
.prompt-head{margin-bottom:4px}
.prompt-text{font-weight:600;font-size:15px}
.prompt-text.unknown{font-style:italic;color:var(--muted)}
.template{color:var(--muted);font-size:12px;margin-left:10px}
.row{display:grid;grid-template-columns:240px 1fr;gap:12px;padding:6px 0;border-top:1px solid #eaeef2}
.who{font-weight:600;overflow-wrap:anywhere}
.vals{font-weight:400;font-size:12px;color:var(--muted);margin-top:2px;display:flex;flex-wrap:wrap;gap:0 10px}
.vals span{white-space:nowrap}
.vals b{color:var(--fg);font-weight:600}
.vals b.best{color:#116329;background:var(--best);padding:0 3px;border-radius:3px}
ul.notes li{margin:3px 0}
"""


def render_html(report: dict[str, Any]) -> str:
    """``report.html``: one self-contained page (inline CSS and SVG, thumbnails as data URIs, no scripts)."""
    view = ReportView.of(report)
    styleref = styleref_thumbnails(report)
    body = [html_header(view), html_tables(view), html_charts(view), html_styleref(styleref),
            html_prompts(view, styleref), html_notes(report)]
    return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{TITLE}</title>\n<style>{CSS}{styleref_css(styleref)}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def styleref_css(thumbs: Iterable[StyleRefThumb]) -> str:
    """One CSS class per StyleRef image, holding its thumbnail: the only copy of it in the page."""
    return "".join(f".{t.css_class}{{background-image:url({t.data_uri})}}\n" for t in thumbs if t.data_uri)


def swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>'


def definition_list(pairs: Iterable[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>' if items else ""


def html_header(view: ReportView) -> str:
    report = view.report
    folder, count = styleref_summary(report)
    created = f" · created {esc(report['created'])}" if report.get("created") else ""
    runs = "".join(f"<dt>{swatch(view.colours[run['name']])}{esc(run['name'])}</dt>"
                   f"<dd><code>{esc(run.get('dir', '?'))}</code> "
                   f"<small>{esc(plural(run.get('count'), 'image'))}</small></dd>"
                   for run in view.runs)
    versions = " · ".join(f"{esc(k)} {esc(v)}" for k, v in (report.get("versions") or {}).items())
    settings = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in (report.get("settings") or {}).items()]
    details = f"<details><summary>Settings</summary>{definition_list(settings)}</details>" if settings else ""
    return (f"<header>\n<h1>{TITLE}</h1>\n"
            f'<p class="lead">StyleRef <code>{esc(folder)}</code> · {esc(plural(count, "image"))}{created}</p>\n'
            f"{definition_list(model_lines(report))}\n"
            f'<dl class="kv">{runs}</dl>\n'
            f'<p class="versions">{versions}</p>\n{details}\n'
            '<nav><a href="#scores">Scores</a><a href="#charts">Charts</a><a href="#styleref">StyleRef</a>'
            '<a href="#prompts">Per prompt</a><a href="#notes">Notes</a></nav>\n</header>')


def html_tables(view: ReportView) -> str:
    tables = "\n".join(html_table(table, view.colours) for table in score_tables(view))
    return f'<section id="scores">\n<h2>Scores</h2>\n{tables}\n</section>'


def html_table(table: ScoreTable, colours: Mapping[str, str]) -> str:
    heading = OVERALL if table.title == OVERALL else f"Prompt set: {table.title}"
    header = "".join(f'<th title="{esc(m.get("description") or "")}">{esc(column_title(m))}</th>'
                     for m in table.metrics)
    rows = []
    for name, count, cells in table.rows:
        values = "".join(f'<td class="num{" best" if c.best else ""}">{esc(c.text)}</td>' for c in cells)
        rows.append(f"<tr><td>{swatch(colours[name])}{esc(name)}</td><td class=\"num\">{esc(count)}</td>{values}</tr>")
    return (f"<h3>{esc(heading)}</h3>\n<table class=\"scores\"><thead><tr><th>run</th><th>images</th>{header}</tr>"
            f"</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def run_legend(view: ReportView) -> str:
    items = "".join(f'<span class="item">{swatch(view.colours[run["name"]])}{esc(run["name"])}</span>'
                    for run in view.runs)
    return f'<div class="legend">{items}</div>'


def html_charts(view: ReportView) -> str:
    """A chart per metric; all with the same bar width, so they are the same size and tile evenly
    (a chart wider than CHART_COLUMN_MAX shrinks, so that two fit side by side)."""
    groups = [chart_groups(view, metric) for metric in view.metrics]
    width = max((fitting_bar_width([b for _, g in gs for b in g], view.decimals[m["key"]])
                 for m, gs in zip(view.metrics, groups)), default=MIN_BAR_WIDTH)
    figures = "\n".join(chart_figure(m, gs, view.decimals[m["key"]], width) for m, gs in zip(view.metrics, groups))
    column = min(CHART_COLUMN_MAX, chart_width(groups[0], width) + 26) if groups else CHART_COLUMN_MAX
    return (f'<section id="charts">\n<h2>Charts</h2>\n{run_legend(view)}\n'
            f'<div class="charts" style="--chart-width:{column:.0f}px">\n{figures}\n</div>\n</section>')


def chart_figure(metric: Mapping[str, Any], groups: Sequence[tuple[str, Sequence[Bar]]], decimals: int,
                 width: float) -> str:
    description = metric.get("description") or ""
    caption = f"{esc(column_title(metric))}<small>{esc(direction(metric))}. {esc(description)}</small>"
    svg = bar_chart_svg(groups, decimals, width)
    return f'<figure class="chart"><figcaption>{caption}</figcaption>\n{svg}\n</figure>'


def html_styleref(thumbs: Sequence[StyleRefThumb]) -> str:
    strip = styleref_strip(thumbs, mini=False) if thumbs else '<span class="muted">no StyleRef files listed</span>'
    heading = f'<h2>StyleRef <small>({plural(len(thumbs), "image")})</small></h2>'
    return f'<section id="styleref">\n{heading}\n{strip}\n</section>'


def styleref_strip(thumbs: Iterable[StyleRefThumb], mini: bool) -> str:
    size = " mini" if mini else ""
    spans = "".join(f'<span class="thumb{size} {t.css_class}" title="{esc(t.file)}"></span>' if t.data_uri
                    else placeholder(t.file, mini) for t in thumbs)
    return f'<div class="strip">{spans}</div>'


def placeholder(file: str, mini: bool = False) -> str:
    """The grey box standing for an image that is missing or cannot be decoded."""
    size = " mini" if mini else ""
    return f'<span class="thumb{size} missing" title="{esc(file)} (missing or unreadable)"></span>'


def html_prompts(view: ReportView, styleref: Sequence[StyleRefThumb]) -> str:
    groups = group_by_prompt_set(collect_prompts(view.report))
    reference = ('<div class="row ref"><div class="who">StyleRef</div>'
                 f"{styleref_strip(styleref, mini=True)}</div>")
    images = {run["name"]: {img["file"]: img for img in run.get("images") or []} for run in view.runs}
    parts = ['<section id="prompts">\n<h2>Per prompt</h2>']
    for name, entries in groups.items():
        parts.append(f'<h3>Prompt set: {esc(name)} <small>({plural(len(entries), "prompt")})</small></h3>')
        parts += [prompt_block(view, entry, reference, images) for entry in entries]
    if not groups:
        parts.append('<p class="muted">No per-prompt results.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def prompt_block(view: ReportView, entry: PromptEntry, reference: str,
                 images: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One prompt: its text, the StyleRef strip, then per run its values and its images."""
    unknown = " unknown" if entry.text is None else ""
    template = " · ".join(esc(t) for t in (entry.template, entry.key) if t)
    head = (f'<div class="prompt-head"><span class="prompt-text{unknown}">{esc(entry.shown_text)}</span>'
            f'<span class="template">{template}</span></div>')
    values = prompt_values(view, entry)
    rows = [run_row(view, run, entry.by_run.get(run["name"]), values[i], images[run["name"]])
            for i, run in enumerate(view.runs)]
    return '<div class="prompt">\n' + "\n".join([head, reference, *rows]) + "\n</div>"


def prompt_values(view: ReportView, entry: PromptEntry) -> list[str]:
    """Per run, its metrics on this prompt as one compact line (best across runs marked)."""
    values = [(entry.by_run.get(run["name"]) or {}).get("metrics") or {} for run in view.runs]
    present = [m for m in view.metrics if any(m["key"] in v for v in values)]
    columns = [metric_cells(m, values, view.decimals[m["key"]]) for m in present]
    return ["".join(labelled_value(m, column[i]) for m, column in zip(present, columns) if m["key"] in values[i])
            for i in range(len(view.runs))]


def labelled_value(metric: Mapping[str, Any], cell: Cell) -> str:
    best = ' class="best"' if cell.best else ""
    return f"<span>{esc(metric.get('label') or metric['key'])} <b{best}>{esc(cell.text)}</b></span>"


def run_row(view: ReportView, run: Mapping[str, Any], prompt: Mapping[str, Any] | None, values: str,
            images: Mapping[str, Mapping[str, Any]]) -> str:
    name = f'{swatch(view.colours[run["name"]])}{esc(run["name"])}'
    who = f'<div class="who">{name}<div class="vals">{values}</div></div>'
    files = (prompt or {}).get("files") or []
    thumbs = "".join(image_thumb(view, Path(run.get("dir", ".")), f, images.get(f)) for f in files)
    strip = thumbs or '<span class="muted">no images for this prompt</span>'
    return f'<div class="row">{who}<div class="strip">{strip}</div></div>'


def image_thumb(view: ReportView, folder: Path, file: str, record: Mapping[str, Any] | None) -> str:
    uri = thumbnail_data_uri(folder / file)
    if uri is None:
        return placeholder(file)
    return f'<img class="thumb" src="{uri}" alt="{esc(file)}" title="{esc(image_title(view, file, record))}">'


def image_title(view: ReportView, file: str, record: Mapping[str, Any] | None) -> str:
    """The tooltip of an image: its file, seed and image-level metrics."""
    record = record or {}
    parts = [file] + ([f"seed {record['seed']}"] if record.get("seed") is not None else [])
    metrics = record.get("metrics") or {}
    parts += [f"{m.get('label') or m['key']} {format_metric(m, metrics, view.decimals[m['key']])}"
              for m in view.metrics if m["key"] in metrics]
    return " · ".join(parts)


def html_notes(report: Mapping[str, Any]) -> str:
    items = "".join(f"<li>{'<b>' + esc(run) + '</b>: ' if run else ''}{esc(note)}</li>"
                    for run, note in all_notes(report))
    body = f'<ul class="notes">{items}</ul>' if items else '<p class="muted">No notes.</p>'
    return f'<section id="notes">\n<h2>Notes</h2>\n{body}\n</section>'


# ----------------------------------------------------------------------------- bar charts (inline SVG)


@dataclass(frozen=True)
class Bar:
    run: str
    group: str
    colour: str
    value: float | None  # as displayed (scaled); None: no bar
    std: float | None = None


CHART_LEFT, CHART_RIGHT, CHART_TOP, PLOT_HEIGHT, CHART_BOTTOM = 44, 8, 18, 150, 40
BAR_GAP, GROUP_GAP, LABEL_CHAR_PX, MIN_BAR_WIDTH, MAX_BAR_WIDTH = 3, 20, 5.6, 22.0, 40.0
CHART_COLUMN_MAX = 640  # px; wider charts shrink to fit two a row on a wide screen


def chart_groups(view: ReportView, metric: Mapping[str, Any]) -> list[tuple[str, list[Bar]]]:
    """Overall and each prompt set, one bar per run."""
    std_key = metric.get("std_key")
    groups = []
    for title, values, _counts in view.sections():
        bars = [Bar(run["name"], title, view.colours[run["name"]], scaled(metric, v.get(metric["key"])),
                    scaled(metric, v.get(std_key)) if std_key else None) for run, v in zip(view.runs, values)]
        groups.append((title, bars))
    return groups


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering ``low``..``high``."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    start, stop = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(start, stop + 1)]


def value_range(bars: Iterable[Bar]) -> tuple[float, float]:
    """The span the axis must show: 0 and every bar with its whisker."""
    ends = [0.0]
    for bar in bars:
        if bar.value is not None:
            spread = abs(bar.std or 0.0)
            ends += [bar.value - spread, bar.value + spread]
    return min(ends), max(ends)


def fitting_bar_width(bars: Iterable[Bar], decimals: int) -> float:
    """Wide enough for the longest value label, within MIN_BAR_WIDTH..MAX_BAR_WIDTH."""
    label_chars = max((len(chart_label(b.value, decimals)) for b in bars if b.value is not None), default=3)
    return min(MAX_BAR_WIDTH, max(MIN_BAR_WIDTH, label_chars * LABEL_CHAR_PX + 2))


def group_widths(groups: Sequence[tuple[str, Sequence[Bar]]], bar_width: float) -> list[float]:
    """Each group is as wide as its bars, or its title when that is wider."""
    return [max(len(group) * (bar_width + BAR_GAP) - BAR_GAP, len(title) * 6.6) for title, group in groups]


def chart_width(groups: Sequence[tuple[str, Sequence[Bar]]], bar_width: float) -> float:
    return CHART_LEFT + sum(group_widths(groups, bar_width)) + GROUP_GAP * len(groups) + CHART_RIGHT


def bar_chart_svg(groups: Sequence[tuple[str, Sequence[Bar]]], decimals: int, bar_width: float | None = None) -> str:
    """A grouped bar chart: value labels, whiskers of one std, "n/a" where a value is missing.
    ``bar_width`` defaults to what this chart's labels need."""
    bars = [bar for _, group in groups for bar in group]
    ticks = nice_ticks(*value_range(bars))
    bar_width = bar_width or fitting_bar_width(bars, decimals)
    widths = group_widths(groups, bar_width)
    width = chart_width(groups, bar_width)

    def y(value: float) -> float:
        return CHART_TOP + (ticks[-1] - value) / (ticks[-1] - ticks[0]) * PLOT_HEIGHT

    parts = [chart_axis(ticks, y, width)]
    x = CHART_LEFT + GROUP_GAP / 2
    for (title, group), group_width in zip(groups, widths):
        offset = x + (group_width - (len(group) * (bar_width + BAR_GAP) - BAR_GAP)) / 2
        parts += [chart_bar(bar, offset + i * (bar_width + BAR_GAP), bar_width, y, decimals)
                  for i, bar in enumerate(group)]
        label_y = CHART_TOP + PLOT_HEIGHT + CHART_BOTTOM - 8
        parts.append(f'<text class="group" x="{x + group_width / 2:.1f}" y="{label_y}" '
                     f'text-anchor="middle">{esc(title)}</text>')
        x += group_width + GROUP_GAP
    parts.append(f'<line x1="{CHART_LEFT}" x2="{width - CHART_RIGHT:.1f}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
                 'stroke="#555" stroke-width="1"/>')
    height = CHART_TOP + PLOT_HEIGHT + CHART_BOTTOM
    return (f'<svg width="{width:.0f}" height="{height}" viewBox="0 0 {width:.0f} {height}" role="img">'
            + "".join(parts) + "</svg>")


def chart_axis(ticks: Sequence[float], y: Any, width: float) -> str:
    """Grid lines with their tick labels."""
    lines = [f'<line x1="{CHART_LEFT}" x2="{width - CHART_RIGHT:.1f}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
             f'stroke="#e3e6ea" stroke-width="1"/><text x="{CHART_LEFT - 6}" y="{y(t) + 3.5:.1f}" '
             f'text-anchor="end">{t:g}</text>' for t in ticks]
    return "".join(lines)


def chart_bar(bar: Bar, x: float, width: float, y: Any, decimals: int) -> str:
    """One bar (or "n/a") with its value label, whisker and tooltip."""
    centre, zero = x + width / 2, y(0)
    if bar.value is None:
        return (f'<g><title>{esc(bar.run)} · {esc(bar.group)}: n/a</title><text class="na" x="{centre:.1f}" '
                f'y="{zero - 4:.1f}" text-anchor="middle">n/a</text></g>')
    top, bottom = sorted((y(bar.value), zero))
    spread = abs(bar.std) if bar.std is not None else None
    tooltip = f"{bar.run} · {bar.group}: {format_number(bar.value, decimals)}"
    tooltip += f" ± {format_number(spread, decimals)}" if spread is not None else ""
    parts = [f"<title>{esc(tooltip)}</title>",
             (f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{max(bottom - top, 0.5):.1f}" '
              f'fill="{bar.colour}"/>')]
    reach = bar.value + (spread or 0.0) if bar.value >= 0 else bar.value - (spread or 0.0)
    if spread:
        parts.append(whisker(centre, y(bar.value - spread), y(bar.value + spread)))
    label_y = y(reach) - 4 if bar.value >= 0 else y(reach) + 11
    parts.append(f'<text x="{centre:.1f}" y="{label_y:.1f}" text-anchor="middle">'
                 f"{chart_label(bar.value, decimals)}</text>")
    return "<g>" + "".join(parts) + "</g>"


def chart_label(value: float, decimals: int) -> str:
    """A bar's label: three significant digits at most (the table and the tooltip hold the rest)."""
    if value == 0:
        return "0"
    return format_number(value, min(decimals, max(0, 2 - math.floor(math.log10(abs(value))))))


def whisker(centre: float, low_y: float, high_y: float) -> str:
    cap = 4
    return (f'<path d="M{centre:.1f} {low_y:.1f}V{high_y:.1f}M{centre - cap:.1f} {low_y:.1f}h{2 * cap}'
            f'M{centre - cap:.1f} {high_y:.1f}h{2 * cap}" stroke="#222" stroke-width="1.2" fill="none"/>')


# ----------------------------------------------------------------------------- checking the rendered page


@dataclass(frozen=True)
class CheckResult:
    """One check of the rendered page: what was checked, how many, what went wrong."""

    name: str
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"{self.name}: ok ({self.checked} checked)"
        return f"{self.name}: {len(self.problems)} of {self.checked} failed; first: {self.problems[0]}"


_URL_IN_CSS = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.DOTALL)


class _PageScan(HTMLParser):
    """The visible text of a page (not style/script/title) and every resource it would load."""

    _RAW = ("style", "script", "title")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.resources: list[tuple[str, str]] = []  # (where, url)
        self._inside: list[str] = []

    _LOADING = ("src", "srcset", "poster", "data")  # attributes that load what they name, on any element
    _LOADING_HREF = ("link", "image", "use")  # elements whose href loads (an <a href> is only a link)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.note_resources(tag, attrs)
        if tag in self._RAW:
            self._inside.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.note_resources(tag, attrs)

    def note_resources(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in self._LOADING or (name in ("href", "xlink:href") and tag in self._LOADING_HREF):
                self.resources.append((f"<{tag} {name}>", value))
            elif name == "style":
                self.resources += [(f"<{tag} style>", url) for _, url in _URL_IN_CSS.findall(value)]

    def handle_endtag(self, tag: str) -> None:
        if self._inside and self._inside[-1] == tag:
            self._inside.pop()

    def handle_data(self, data: str) -> None:
        if not self._inside:
            self.texts.append(data)
        elif self._inside[-1] == "style":
            self.resources += [("<style>", url) for _, url in _URL_IN_CSS.findall(data)]


def normalise_space(text: str) -> str:
    return " ".join(text.split())


def check_texts(name: str, wanted: Sequence[tuple[str, str]], page_text: str) -> CheckResult:
    """Each (kind, text) must appear in the page's visible text."""
    problems = [f"{kind} {text!r} is not on the page" for kind, text in wanted
                if normalise_space(text) not in page_text]
    return CheckResult(name, len(wanted), problems)


def check_embedded(resources: Sequence[tuple[str, str]]) -> CheckResult:
    problems = [f"{where} loads {url[:80]!r}, not a data: URI" for where, url in resources
                if not url.strip().lower().startswith("data:")]
    return CheckResult("embedded resources", len(resources), problems)


def expected_prompt_texts(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every distinct prompt a run names: its text without the token, or its key when unknown."""
    texts = [prompt.get("prompt_without_token") or prompt["key"]
             for run in report.get("runs", []) for prompt in run.get("prompts") or []]
    return [("prompt", text) for text in dict.fromkeys(texts)]


def check_dom(report: Mapping[str, Any], dom: str) -> list[CheckResult]:
    """Check a page's HTML (ideally the DOM a browser made of it) against its report: every run name
    and every prompt is shown, and every image or background is embedded as a data: URI."""
    scan = _PageScan()
    scan.feed(dom)
    scan.close()
    page_text = normalise_space(" \u241e ".join(scan.texts))
    runs = [("run", str(run["name"])) for run in report.get("runs", [])]
    return [check_texts("run names", runs, page_text),
            check_texts("prompts", expected_prompt_texts(report), page_text),
            check_embedded(scan.resources)]


def rendered_report_checks(report_dir: str | Path, chromium: str | None = None) -> list[CheckResult]:
    """Render ``report_dir/report.html`` in headless Chromium and check it against ``report.json``."""
    folder = Path(report_dir)
    report = load_report(folder / REPORT_FILES["json"])
    return check_dom(report, dump_dom(folder / REPORT_FILES["html"], chromium))


def check_rendered_report(report_dir: str | Path, chromium: str | None = None) -> list[str]:
    """The problems ``rendered_report_checks`` finds, one line each; empty when the page is right."""
    return [problem for result in rendered_report_checks(report_dir, chromium) for problem in result.problems]
