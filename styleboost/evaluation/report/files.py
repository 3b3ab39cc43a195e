"""The three report files: their names, writing ``report.json``, ``report.md`` and ``report.html`` together, and
reading ``report.json`` back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from styleboost.core.atomic import write_json_atomic, write_text_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.evaluation.report.html import render_html
from styleboost.evaluation.report.markdown import render_markdown

REPORT_FILES = {"json": "report.json", "md": "report.md", "html": "report.html"}


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
