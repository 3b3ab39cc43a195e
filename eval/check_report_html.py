"""Check a report.html the way a reader sees it: rendered by headless Chromium.

Dumps the DOM of REPORT_DIR/report.html, checks that every run name and every prompt of
REPORT_DIR/report.json is on the page and that every image or background is embedded as a data:
URI (one line per check), and saves a screenshot of the top of the page. Exit status 0 when every
check passes, 1 when one fails, 2 on a usage error (no Chromium, no report).

    python eval/check_report_html.py runs/eval/report --screenshot /tmp/report.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styleboost.core.errors import run_cli
from styleboost.evaluation.report.checks import rendered_report_checks
from styleboost.evaluation.report.files import REPORT_FILES
from styleboost.evaluation.report.headless import SCREENSHOT_HEIGHT, SCREENSHOT_WIDTH, screenshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", help="A folder written by styleboost evaluate (report.json, report.html).")
    parser.add_argument("--screenshot", help="Where the PNG goes (default: REPORT_DIR/report.png).")
    parser.add_argument("--width", type=int, default=SCREENSHOT_WIDTH, help="Screenshot width in pixels.")
    parser.add_argument("--height", type=int, default=SCREENSHOT_HEIGHT, help="Screenshot height in pixels.")
    parser.add_argument("--chromium", help="The browser to run (default: $STYLEBOOST_CHROMIUM, then PATH).")
    args = parser.parse_args(argv)

    def body() -> int:
        report_dir = Path(args.report_dir)
        results = rendered_report_checks(report_dir, args.chromium)
        for result in results:
            print(result.summary())
        png = screenshot(report_dir / REPORT_FILES["html"], args.screenshot or report_dir / "report.png",
                         args.width, args.height, args.chromium)
        print(f"screenshot: {png}")
        return 0 if all(result.ok for result in results) else 1

    return run_cli(body, prog="check_report_html.py")


if __name__ == "__main__":
    sys.exit(main())
