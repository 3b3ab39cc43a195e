"""Compare personalisation methods on a held-out toy-world style: ``python eval/compare_methods.py --out DIR``.

Trains the base model's competitors (DreamBooth with generated class images, StyleBoost with the
curated Aux set, LoRA without priors, textual inversion) on the same StyleRef set and budget over
seeds, generates and evaluates them with the base model in one report. All logic lives in
``styleboost.experiments.compare``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styleboost.core.errors import run_cli
from styleboost.core.settings import dataclass_from_args
from styleboost.experiments.compare import CompareConfig, add_arguments, compare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compare_methods.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        config = dataclass_from_args(CompareConfig, args)
        summary = compare(config)
        print((Path(config.out) / "compare.md").read_text())
        print(f"styleboost: {len(summary['table'])} methods compared in {config.out} (report/report.html)")
        return 0

    return run_cli(body, prog="compare_methods.py")


if __name__ == "__main__":
    sys.exit(main())
