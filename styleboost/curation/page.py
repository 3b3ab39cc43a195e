"""The HTML page of a curated Aux set: the chosen images first, in pick order, then every other pool image with
its scores and the reason it was left out. Thumbnails are embedded, so the page is one self-contained file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styleboost.evaluation.report.thumbnails import thumbnail_data_uri
from styleboost.evaluation.report.view import esc

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:132px;font-size:12px}
figure img{width:128px;height:128px;object-fit:contain;background:#eee;border:2px solid #ccc}
figure.chosen img{border-color:#2a8}
figcaption{line-height:1.3;overflow-wrap:anywhere}
.why{color:#a33}"""


def figure(row: dict[str, Any]) -> str:
    uri = thumbnail_data_uri(row["file"], size=128) or ""
    rank = f"#{row['rank'] + 1} " if row["chosen"] else ""
    why = f'<br><span class="why">{esc(row["excluded"])}</span>' if row["excluded"] else ""
    return (f'<figure class="{"chosen" if row["chosen"] else "left"}"><img src="{uri}" alt="{esc(Path(row["file"]).name)}">'
            f"<figcaption>{rank}{esc(Path(row['file']).name)}<br>person {row['person']:.2f} · style {row['style']:.3f}"
            f" · quality {row['quality']:.2f}{why}</figcaption></figure>")


def curation_page(cfg, rows: list[dict[str, Any]]) -> str:
    chosen = sorted((r for r in rows if r["chosen"]), key=lambda r: r["rank"])
    others = sorted((r for r in rows if not r["chosen"]), key=lambda r: -r["merit"])
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8"><title>Curated Aux set</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Curated Aux set: {len(chosen)} of {len(rows)} pool images</h1>",
        f"<p>Pool <code>{esc(cfg.pool)}</code>, StyleRef <code>{esc(cfg.styleref)}</code>; style encoder "
        f"<code>{esc(cfg.encoder)}</code>, CLIP <code>{esc(cfg.clip)}</code>. Person = CLIP zero-shot probability; "
        "style = mean cosine to the StyleRef images; quality = sharpness less clipped pixels. Picks in order: "
        "on-style, sharp, and unlike the picks before them.</p>",
        "<h2>Chosen</h2>", '<div class="grid">', *map(figure, chosen), "</div>",
        "<h2>Not chosen</h2>", '<div class="grid">', *map(figure, others), "</div>",
        "</body></html>", ""])
