"""Markdown tables: the one writer of GitHub-flavoured table rows, for every table styleboost prints.

Cells are written as given except that ``|`` is escaped, so a cell never splits a row; other markup
(``**bold**``, HTML escaping) is the caller's.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence


def escape_cell(text: Any) -> str:
    """``text`` with every ``|`` escaped, so it cannot end a table cell."""
    return str(text).replace("|", "\\|")


def table_row(cells: Sequence[Any]) -> str:
    """One row, ``| a | b |``; a ``|`` inside a cell is escaped."""
    return "| " + " | ".join(escape_cell(cell) for cell in cells) + " |"


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]], left_columns: int = 1) -> str:
    """The header row, the alignment row (the first ``left_columns`` columns left-aligned, the others - numbers -
    right-aligned), then one line per row. No trailing newline."""
    alignment = ["---" if i < left_columns else "---:" for i in range(len(header))]
    return "\n".join([table_row(header), table_row(alignment), *(table_row(row) for row in rows)])
