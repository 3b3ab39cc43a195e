"""Train StyleBoost: ``accelerate launch train_scripts/train_styleboost.py [--config FILE.yaml] [--flag value ...]``.

With no arguments it runs the embedded default: the pre-trained toy world learns a held-out style,
then the base and tuned models are generated and evaluated side by side. All logic lives in
``styleboost.training.loop`` and ``styleboost.experiments.embedded``; ``--help`` lists every setting.
"""

from __future__ import annotations

import sys

from styleboost.core.errors import run_cli
from styleboost.evaluation.report.markdown import overall_markdown
from styleboost.evaluation.validation_scorer import validation_scorer
from styleboost.experiments.embedded import embedded_settings, evaluate_run, fill_local_defaults, uses_toy_world
from styleboost.training.config import config_from_args
from styleboost.training.loop import train


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        cfg = fill_local_defaults(config_from_args(argv, prog="train_styleboost.py", base=embedded_settings()))
        cfg.validate()
        run = train(cfg, validation_scorer(cfg))
        if not run.accelerator.is_main_process:
            return 0
        print(f"styleboost: finished {cfg.max_train_steps} steps; outputs in {run.output_dir}")
        if uses_toy_world(cfg):
            report = evaluate_run(cfg, run.output_dir)
            print(overall_markdown(report))
            print(f"styleboost: base model vs {cfg.method} compared in {run.output_dir}/evaluation/report/report.html")
        return 0

    return run_cli(body, prog="train_styleboost.py")


if __name__ == "__main__":
    sys.exit(main())
