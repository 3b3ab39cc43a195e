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

import argparse
import sys

from styleboost.core.errors import run_cli
from styleboost.evaluation import protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_protocol", description=__doc__.splitlines()[0])
    protocol.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(lambda: protocol.run(args), prog="run_protocol")


if __name__ == "__main__":
    sys.exit(main())
