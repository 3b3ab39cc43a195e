"""Generate with each trained model under one protocol, then evaluate them in one report.

    python eval/run_protocol.py --protocol eval/protocols/styleboost.yaml \
        --model stable-diffusion-v1-5/stable-diffusion-v1-5 \
        --run base= --run dreambooth=runs/dreambooth --run styleboost=runs/styleboost \
        --styleref data/styleref --out results/my-style

Images go to <out>/generated/<run>/ (kept between runs, so an interrupted protocol resumes), the
report to <out>/report/ (report.json, report.md, report.html). All logic lives in
``styleboost.evaluation.protocol``; ``styleboost protocol`` is the same command.
"""

from __future__ import annotations

import sys

from styleboost.cli import sub_command_main


def main(argv: list[str] | None = None) -> int:
    return sub_command_main("protocol", argv, prog="run_protocol")


if __name__ == "__main__":
    sys.exit(main())
