"""Checking a rendered report page against its ``report.json``: every run name and prompt is shown, every image
or background is embedded as a data: URI; ``rendered_report_checks`` asks headless Chromium for the page's DOM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Mapping, Sequence

from styleboost.evaluation.report.files import REPORT_FILES, load_report
from styleboost.evaluation.report.headless import dump_dom


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
