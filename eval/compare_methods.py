"""Compare every method on a held-out toy-world style: ``python eval/compare_methods.py --out DIR [--readme README.md]``.

Trains the base model's competitors (DreamBooth with generated class images, StyleBoost with the
curated Aux set, Multi-StyleForge, LoRA without priors, textual inversion, Custom Diffusion) on the same
StyleRef set and budget over seeds, restyles the base model's images with the style-transfer baselines
(Gatys, AdaIN, a per-style encoder-decoder), and evaluates them all with the base model in one report;
``--readme`` writes the result table into the README. All logic lives in ``styleboost.experiments.compare``;
``styleboost compare`` is the same command.
"""

from __future__ import annotations

import sys

from styleboost.cli import sub_command_main


def main(argv: list[str] | None = None) -> int:
    return sub_command_main("compare", argv, prog="compare_methods.py")


if __name__ == "__main__":
    sys.exit(main())
