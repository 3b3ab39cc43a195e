"""``report.md``: what a paper would print - the Overall table, one table per prompt set, the metric legend
and the notes.
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from styleboost.core.markdown import escape_cell, markdown_table
from styleboost.evaluation.report.view import (
    OVERALL,
    TITLE,
    ReportView,
    ScoreTable,
    all_notes,
    arrow,
    column_title,
    direction,
    model_lines,
    plural,
    score_tables,
    styleref_summary,
)


def render_markdown(report: dict[str, Any]) -> str:
    """``report.md``: header, the Overall and per-prompt-set tables, the metric legend, the notes."""
    view = ReportView.of(report)
    parts = [markdown_header(view), *(score_table_markdown(t) for t in score_tables(view)),
             markdown_legend(view.metrics), markdown_notes(report)]
    return "\n\n".join(part for part in parts if part) + "\n"


def overall_markdown(report: dict[str, Any]) -> str:
    """The Overall table of ``report.md`` (heading included): what the commands print when a report is done."""
    return score_table_markdown(score_tables(ReportView.of(report))[0])


def md_cell(text: Any) -> str:
    """Data as a Markdown table cell: HTML-escaped, so markup in a name stays text (the table writer escapes ``|``)."""
    return html.escape(str(text), quote=False)


def md_text(text: Any) -> str:
    """Data as Markdown text: HTML-escaped and ``|`` escaped, as in a table cell."""
    return escape_cell(md_cell(text))


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


def score_table_markdown(table: ScoreTable) -> str:
    """One score table under its ``##`` heading; the best value of each metric in bold."""
    heading = f"## {OVERALL}" if table.title == OVERALL else f"## Prompt set: {md_text(table.title)}"
    header = ["run", "images", *(md_cell(column_title(m)) for m in table.metrics)]
    rows = [[md_cell(name), count, *(f"**{c.text}**" if c.best else c.text for c in cells)]
            for name, count, cells in table.rows]
    return "\n".join([heading, "", markdown_table(header, rows)])


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
