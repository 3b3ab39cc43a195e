"""Train StyleBoost: ``accelerate launch train_scripts/train_styleboost.py [--config FILE.yaml] [--flag value ...]``.

With no arguments it runs the embedded default (tiny local model, generated toy style).
All logic lives in ``styleboost.train``; ``--help`` lists every setting.
"""

from __future__ import annotations

import sys

from styleboost.cli import run_cli
from styleboost.config import config_from_args
from styleboost.embedded import fill_local_defaults
from styleboost.train import train


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        cfg = fill_local_defaults(config_from_args(argv, prog="train_styleboost.py"))
        cfg.validate()
        run = train(cfg)
        if run.accelerator.is_main_process:
            print(f"styleboost: finished {cfg.max_train_steps} steps; outputs in {run.output_dir}")
        return 0

    return run_cli(body, prog="train_styleboost.py")


if __name__ == "__main__":
    sys.exit(main())
