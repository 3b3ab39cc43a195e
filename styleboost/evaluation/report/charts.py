"""The report's bar charts as inline SVG: one bar per run in the Overall and per-prompt-set groups, value labels,
a whisker of one std, "n/a" where a value is missing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from styleboost.evaluation.report.view import ReportView, esc, format_number, scaled


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
