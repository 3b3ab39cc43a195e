"""styleboost.evaluation.report on a synthetic two-run report: the three files, the Markdown tables, a
self-contained and escaped HTML page, placeholders for missing images, and the page as headless
Chromium renders it (skipped without Chromium)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.evaluation.report.charts import Bar, bar_chart_svg, nice_ticks
from styleboost.evaluation.report.checks import check_dom, check_rendered_report
from styleboost.evaluation.report.files import write_report
from styleboost.evaluation.report.headless import dump_dom, find_chromium, screenshot
from styleboost.evaluation.report.html import render_html
from styleboost.evaluation.report.markdown import render_markdown

METRICS = [
    {"key": "style_score", "label": "Style score", "description": "mean cosine to the StyleRef centroid",
     "higher_is_better": True, "display_scale": 1.0, "std_key": None, "level": "image"},
    {"key": "clip_t", "label": "CLIP-T", "description": "CLIP text-image similarity x 100",
     "higher_is_better": True, "display_scale": 1.0, "std_key": None, "level": "image"},
    {"key": "kid", "label": "KID x10^3", "description": "kernel inception distance to StyleRef",
     "higher_is_better": False, "display_scale": 1000.0, "std_key": "kid_std", "level": "set"},
    {"key": "diversity_style", "label": "Diversity (style)", "description": "mean pairwise style distance",
     "higher_is_better": None, "display_scale": 1.0, "std_key": None, "level": "prompt"},
]
PROMPTS = {"people": ["a portrait of a woman", "a man reading a book"], "non_people": ["a lighthouse at dusk"]}
# run -> (style score, CLIP-T, KID, KID std, diversity); dreambooth has no CLIP-T
SCORES = {"lora": (0.712, 27.13, 0.012, 0.003, 0.31), "dreambooth": (0.523, None, 0.020, 0.004, 0.28)}


def save_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 28)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def distinct_colours():
    """A different colour each call, so every thumbnail (and its data URI) is unique."""
    index = 0
    while True:
        index += 1
        yield ((index * 53) % 256, (index * 97) % 256, (index * 29 + 80) % 256)


def metric_values(run: str, offset: float = 0.0) -> dict:
    style, clip_t, kid, kid_std, diversity = SCORES[run]
    return {"style_score": style + offset, "clip_t": clip_t, "kid": kid, "kid_std": kid_std,
            "diversity_style": diversity}


def make_run(name: str, root: Path, colours) -> dict:
    folder = root / "gen" / name
    prompts, images = [], []
    for prompt_set, texts in PROMPTS.items():
        for index, text in enumerate(texts):
            key = f"{prompt_set}/{index:03d}"
            files = [f"images/{prompt_set}/p{index:03d}_s{seed}.png" for seed in range(2)]
            for seed, file in enumerate(files):
                save_png(folder / file, next(colours))
                images.append({"file": file, "prompt_key": key, "seed": seed,
                               "metrics": {"style_score": SCORES[name][0] + 0.01 * seed, "clip_t": SCORES[name][1]}})
            prompts.append({"key": key, "prompt_set": prompt_set, "prompt_index": index,
                            "prompt": f"{text} in sks style", "prompt_template": f"{text} in [V] style",
                            "prompt_without_token": text, "files": files,
                            "metrics": metric_values(name, 0.01 * index)})
    return {"name": name, "dir": str(folder), "count": len(images), "notes": ["1 image was resized"],
            "overall": metric_values(name),
            "prompt_sets": {s: {"count": 2 * len(t), **metric_values(name, 0.02)} for s, t in PROMPTS.items()},
            "prompts": prompts, "images": images}


def make_report(root: Path) -> dict:
    colours = distinct_colours()
    styleref = root / "styleref"
    files = ["a.png", "b.png", "c.jpg"]
    for file in files:
        save_png(styleref / file, next(colours), size=(30, 40))
    return {
        "styleboost_report": 1,
        "created": "2026-11-23T10:00:00+0000",
        "versions": {"styleboost": "0.1.0", "torch": "2.14.1"},
        "styleref": {"dir": str(styleref), "count": len(files), "files": files},
        "models": {"style_encoder": {"name": "default", "dim": 256}, "clip": {"name": "ViT-L-14:openai"},
                   "fid_features": {"name": "inception-v3"}, "gram": {"name": "vgg19", "layers": "relu1_1..relu5_1"}},
        "settings": {"image_size": 299},
        "metrics": copy.deepcopy(METRICS),
        "notes": ["CLIP weights are random: CLIP-T is not meaningful"],
        "runs": [make_run("lora", root, colours), make_run("dreambooth", root, colours)],
    }


@pytest.fixture
def report(tmp_path) -> dict:
    return make_report(tmp_path)


def md_section(markdown: str, heading: str) -> list[str]:
    """The table lines under a ``## heading``."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_write_report_writes_three_files_and_the_json_round_trips(report, tmp_path):
    paths = write_report(report, tmp_path / "new" / "report")
    assert set(paths) == {"json", "md", "html"}
    assert all(path.is_file() for path in paths.values())
    assert json.loads(paths["json"].read_text()) == report
    assert paths["md"].read_text() == render_markdown(report)
    assert not list(paths["json"].parent.glob(".*.tmp"))


def test_markdown_tables(report):
    markdown = render_markdown(report)
    for heading in ("Overall", "Prompt set: people", "Prompt set: non_people"):
        header, _separator, *rows = md_section(markdown, heading)
        assert len(rows) == 2 and rows[0].startswith("| lora |") and rows[1].startswith("| dreambooth |")
        assert all(m["label"] in header for m in METRICS)
        assert len(header.split(" | ")) == len(rows[0].split(" | ")) == 2 + len(METRICS)
    overall = md_section(markdown, "Overall")
    lora, dreambooth = overall[2], overall[3]
    assert "**0.712**" in lora and "0.523" in dreambooth and "**0.523**" not in dreambooth  # higher is better
    assert "**12.00 ± 3.00**" in lora and "20.00 ± 4.00" in dreambooth  # KID x 1000, lower is better
    assert "27.13" in lora and "| - |" in dreambooth  # None
    assert "**0.310**" not in lora and "0.310" in lora  # no better direction: never bold
    assert "↑" in overall[0] and "↓" in overall[0]
    assert "- CLIP weights are random" in markdown and "- lora: 1 image was resized" in markdown
    assert "mean pairwise style distance" in markdown and "`" + report["styleref"]["dir"] + "`" in markdown
    assert "a portrait of a woman" not in markdown  # per-prompt numbers stay out of the md


def test_single_run_has_no_bold(report):
    report["runs"] = report["runs"][:1]
    assert "**" not in "\n".join(md_section(render_markdown(report), "Overall"))


def test_html_is_self_contained_and_complete(report):
    page = render_html(report)
    for run in report["runs"]:
        assert run["name"] in page
    for texts in PROMPTS.values():
        assert all(text in page for text in texts)
    assert page.count("<svg") == len(METRICS)
    assert "http://" not in page and "https://" not in page and 'src="/' not in page and "<script" not in page
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == 2 * 2 * 3  # runs x seeds x prompts
    assert all(src.startswith("data:image/jpeg;base64,") for src in sources)
    styleref_uris = re.findall(r"url\((data:[^)]*)\)", page)
    assert len(styleref_uris) == 3
    assert all(page.count(uri) == 1 for uri in styleref_uris)
    assert page.count('class="thumb mini sr0"') == 3  # the compact strip of each prompt reuses the class
    assert "n/a" in page  # dreambooth has no CLIP-T bar
    assert all(not problem for result in check_dom(report, page) for problem in result.problems)


def test_html_escapes_data(report):
    evil = "<script>alert(1)</script>"
    report["runs"][0]["name"] = evil
    report["runs"][0]["prompts"][0]["prompt_without_token"] = evil + " prompt"
    report["notes"].append(evil)
    page = render_html(report)
    markdown = render_markdown(report)
    assert "<script" not in page and "<script" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_missing_and_broken_images_become_placeholders(report):
    lora = report["runs"][0]
    Path(lora["dir"], lora["prompts"][0]["files"][0]).unlink()
    Path(lora["dir"], lora["prompts"][0]["files"][1]).write_bytes(b"not an image")
    Path(report["styleref"]["dir"], "a.png").unlink()
    page = render_html(report)
    for file in lora["prompts"][0]["files"]:
        assert f'<span class="thumb missing" title="{file} (missing or unreadable)">' in page
    assert 'class="thumb missing" title="a.png (missing or unreadable)"' in page
    assert ".sr0{" not in page and ".sr1{" in page


def test_unknown_prompts_and_a_run_missing_a_prompt(report):
    dreambooth = report["runs"][1]
    dreambooth["prompts"] = dreambooth["prompts"][:1]
    extra = {"key": "unknown/000", "prompt_set": "unknown", "prompt_index": 0, "prompt": None,
             "prompt_template": None, "prompt_without_token": None, "files": [], "metrics": {}}
    dreambooth["prompts"].append(extra)
    page = render_html(report)
    assert "(prompt unknown)" in page and "unknown/000" in page
    assert page.count("no images for this prompt") == 2 + 1 + 1  # dreambooth x 2 missing, its unknown, lora's
    assert all(result.ok for result in check_dom(report, page))


def test_check_dom_reports_what_the_page_lacks(report):
    page = render_html(report)
    report["runs"].append({**copy.deepcopy(report["runs"][0]), "name": "textual_inversion"})
    report["runs"][0]["prompts"][0]["prompt_without_token"] = "a prompt the page never saw"
    problems = [p for result in check_dom(report, page + '<img src="http://example.com/x.png">')
                for p in result.problems]
    assert any("textual_inversion" in p for p in problems)
    assert any("a prompt the page never saw" in p for p in problems)
    assert any("http://example.com/x.png" in p for p in problems)


def test_chart_handles_negative_and_missing_values():
    assert nice_ticks(0, 0.71) == [0, 0.2, 0.4, 0.6, 0.8]
    assert nice_ticks(-3, 5)[0] <= -3 and nice_ticks(-3, 5)[-1] >= 5
    bars = [Bar("a", "Overall", "#000", -2.5, 0.5), Bar("b", "Overall", "#111", 4.0), Bar("c", "Overall", "#222", None)]
    svg = bar_chart_svg([("Overall", bars)], decimals=2)
    assert "-2.50" in svg and "4.00" in svg and "n/a" in svg and "<path" in svg
    heights = [float(h) for h in re.findall(r'<rect[^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 2 and all(h > 0 for h in heights)


@pytest.fixture
def chromium():
    found = find_chromium()
    if found is None:
        pytest.skip("no Chromium on this machine (set $STYLEBOOST_CHROMIUM or install chromium)")
    return found


def test_rendered_in_chromium(report, tmp_path, chromium):
    paths = write_report(report, tmp_path / "report")
    png = screenshot(paths["html"], tmp_path / "shot.png", width=900, height=1200, chromium=chromium)
    with Image.open(png) as shot:
        assert shot.size[0] == 900
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 10  # text, tables and thumbnails were drawn
    assert check_rendered_report(paths["json"].parent, chromium) == []

    edited = json.loads(paths["json"].read_text())
    edited["runs"].append({**edited["runs"][0], "name": "textual_inversion"})
    paths["json"].write_text(json.dumps(edited))
    problems = check_rendered_report(paths["json"].parent, chromium)
    assert len(problems) == 1 and "textual_inversion" in problems[0]


def test_check_script_exit_status_and_screenshot(report, tmp_path, chromium):
    """eval/check_report_html.py: 0 and a screenshot for a good report, 1 when report.json names a missing run."""
    path = Path(__file__).resolve().parents[1] / "eval" / "check_report_html.py"
    spec = importlib.util.spec_from_file_location("check_report_html", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    folder = write_report(report, tmp_path / "report")["json"].parent
    assert script.main([str(folder), "--width", "600", "--height", "400", "--chromium", chromium]) == 0
    with Image.open(folder / "report.png") as shot:
        assert shot.size == (600, 400)
    report["runs"][1]["name"] = "renamed"
    (folder / "report.json").write_text(json.dumps(report))
    assert script.main([str(folder), "--screenshot", str(tmp_path / "x.png"), "--chromium", chromium]) == 1
    assert script.main([str(tmp_path / "nowhere"), "--chromium", chromium]) == 2


def test_browser_problems_are_one_line_errors(tmp_path, monkeypatch):
    page = tmp_path / "page.html"
    page.write_text("<p>hi</p>")
    failing = tmp_path / "fake-chromium"
    failing.write_text("#!/bin/sh\necho 'noise' >&2\necho 'cannot open display' >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(StyleBoostError, match=r"exit 3\): cannot open display$"):
        dump_dom(page, chromium=str(failing))
    with pytest.raises(StyleBoostError, match="cannot start"):
        dump_dom(page, chromium=str(tmp_path / "no-such-browser"))
    with pytest.raises(StyleBoostError, match="not found"):
        dump_dom(tmp_path / "missing.html", chromium=str(failing))
    monkeypatch.setenv("STYLEBOOST_CHROMIUM", sys.executable)
    assert find_chromium() == sys.executable
    monkeypatch.setenv("STYLEBOOST_CHROMIUM", str(tmp_path / "no-such-browser"))
    with pytest.raises(StyleBoostError, match="STYLEBOOST_CHROMIUM"):
        find_chromium()
