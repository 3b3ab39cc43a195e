"""StyleBoost in the toy world with the Aux set chosen by ``styleboost curate-aux``, with random people images
from the same pool, and with the hand-picked set: person-prompt style score and CLIP-T over seeds.

    python eval/compare_aux_choice.py --out results/aux-choice [--seeds 0 1 2] [--max_train_steps 400]
"""

from __future__ import annotations

import json
import sys

from styleboost.core.errors import run_cli
from styleboost.core.settings import settings_from_args
from styleboost.experiments.aux_choice import CHOICES, AuxChoiceConfig, compare_aux_choice


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        summary = compare_aux_choice(settings_from_args(AuxChoiceConfig, argv, prog="compare_aux_choice.py",
                                                        description=__doc__.splitlines()[0]))
        for choice in ("base", *CHOICES):
            cells = summary["table"][choice]["people"]
            print(f"{choice:<12} people style {cells['style_score']['mean']:.3f} ± {cells['style_score']['std']:.3f}"
                  f"  CLIP-T {cells['clip_t']['mean']:.1f} ± {cells['clip_t']['std']:.1f}"
                  f"  KID x10^3 {1000 * cells['kid']['mean']:.1f}")
        print(json.dumps(summary["aux_style_affinity"]))
        return 0

    return run_cli(body, prog="compare_aux_choice.py")


if __name__ == "__main__":
    sys.exit(main())
