"""Rendering a local HTML file in headless Chromium: a screenshot of the page, or its DOM after load.

One job: run the browser once per call, offline (no network, sync, updates or first-run work),
with a fresh profile folder that is removed afterwards, and a time limit. A missing or failing
browser is a ``StyleBoostError`` of one line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.errors import StyleBoostError

CHROMIUM_ENV = "STYLEBOOST_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120
SCREENSHOT_WIDTH = 1400
SCREENSHOT_HEIGHT = 2400

_OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """The browser to run: ``$STYLEBOOST_CHROMIUM``, else the first of chromium, chromium-browser,
    google-chrome on PATH; None when there is none. A ``$STYLEBOOST_CHROMIUM`` that is not an
    executable is an error rather than a silent fallback."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise StyleBoostError(f"${CHROMIUM_ENV}={configured} is not an executable")
        return found
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def screenshot(html_path: str | Path, png_path: str | Path, width: int = SCREENSHOT_WIDTH,
               height: int = SCREENSHOT_HEIGHT, chromium: str | None = None) -> Path:
    """Save the top ``width`` x ``height`` pixels of the rendered page as a PNG; returns its path."""
    if width < 1 or height < 1:
        raise StyleBoostError(f"screenshot size {width}x{height} must be positive")
    png_path = Path(png_path)
    with tempfile.TemporaryDirectory(prefix="styleboost-chromium-") as scratch:
        shot = Path(scratch) / "screenshot.png"
        run_chromium(html_path, [f"--screenshot={shot}", f"--window-size={width},{height}"], scratch, chromium)
        if not shot.is_file() or shot.stat().st_size == 0:
            raise StyleBoostError(f"Chromium wrote no screenshot of {html_path}")
        png_path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(png_path, shot.read_bytes())
    return png_path


def dump_dom(html_path: str | Path, chromium: str | None = None) -> str:
    """The page's DOM after load (scripts run, entities resolved), serialised as HTML."""
    with tempfile.TemporaryDirectory(prefix="styleboost-chromium-") as scratch:
        dom = run_chromium(html_path, ["--dump-dom"], scratch, chromium)
    if not dom.strip():
        raise StyleBoostError(f"Chromium printed no DOM for {html_path}")
    return dom


def run_chromium(html_path: str | Path, flags: list[str], scratch: str, chromium: str | None = None) -> str:
    """Run headless Chromium on a local file with ``flags``; its stdout. ``scratch`` holds the profile."""
    page = Path(html_path)
    if not page.is_file():
        raise StyleBoostError(f"{page} not found")
    browser = chromium or find_chromium()
    if browser is None:
        raise StyleBoostError(f"no Chromium found (set ${CHROMIUM_ENV} or install chromium)")
    profile = Path(scratch) / "profile"
    command = [browser, *_OFFLINE_FLAGS, f"--user-data-dir={profile}", *flags, page.resolve().as_uri()]
    returncode, stdout, stderr = run_with_time_limit(command, TIMEOUT_S, page)
    if returncode != 0:
        raise StyleBoostError(f"Chromium failed on {page} (exit {returncode}): {last_line(stderr)}")
    return stdout


def run_with_time_limit(command: list[str], timeout_s: float, page: Path) -> tuple[int, str, str]:
    """Run ``command`` in its own process group; on time-out kill that group (the browser's helpers too)."""
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   errors="replace", start_new_session=True)
    except OSError as err:
        raise StyleBoostError(f"cannot start {command[0]}: {err.strerror or err}") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise StyleBoostError(f"Chromium took over {timeout_s:g} s on {page}") from None
    return process.returncode, stdout, stderr


def last_line(text: str) -> str:
    """The last non-empty line of the browser's stderr (its own complaint), or a stand-in."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
