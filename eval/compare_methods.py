"""Compare personalisation methods on a held-out toy-world style: ``python eval/compare_methods.py --out DIR``.

Trains the base model's competitors (DreamBooth with generated class images, StyleBoost with the
curated Aux set, LoRA without priors, textual inversion) on the same StyleRef set and budget over
seeds, generates and evaluates them with the base model in one report. All logic lives in
``styleboost.experiments.compare``; ``styleboost compare`` is the same command.
"""

from __future__ import annotations

import argparse
import sys

from styleboost.core.errors import run_cli
from styleboost.experiments import compare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compare_methods.py", description=__doc__.splitlines()[0])
    compare.add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(lambda: args.func(args), prog="compare_methods.py")


if __name__ == "__main__":
    sys.exit(main())
