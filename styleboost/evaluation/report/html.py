"""``report.html``: one self-contained page (inline CSS, inline SVG charts, JPEG thumbnails as data URIs, no
scripts, nothing fetched) - header, score tables, a bar chart per metric, the StyleRef images, and per prompt
each run's images beside a compact StyleRef strip. Each StyleRef thumbnail is encoded once, as a CSS class, so
the page does not grow with prompts x StyleRef images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from styleboost.evaluation.report.charts import (
    CHART_COLUMN_MAX,
    MIN_BAR_WIDTH,
    Bar,
    bar_chart_svg,
    chart_groups,
    chart_width,
    fitting_bar_width,
)
from styleboost.evaluation.report.thumbnails import StyleRefThumb, styleref_thumbnails, thumbnail_data_uri
from styleboost.evaluation.report.view import (
    OVERALL,
    TITLE,
    Cell,
    PromptEntry,
    ReportView,
    ScoreTable,
    all_notes,
    collect_prompts,
    column_title,
    direction,
    esc,
    format_metric,
    group_by_prompt_set,
    metric_cells,
    model_lines,
    plural,
    score_tables,
    styleref_summary,
)

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
