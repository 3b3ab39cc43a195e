"""The ``styleboost`` command: sub-commands that parse arguments and call the library.

User-fixable problems (``StyleBoostError``) print as one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from styleboost.core.errors import run_cli
from styleboost.evaluation import evaluate, protocol
from styleboost.experiments import compare
from styleboost.generation import generate
from styleboost.style_encoder import evaluation
from styleboost.styles import synthstyle


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styleboost", description="StyleBoost toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)

    generate.add_arguments(sub.add_parser("generate", help="Generate images from prompt files."))
    synthstyle.add_arguments(sub.add_parser("make-style-set", help="Build the synthetic style data set."))
    evaluate.add_arguments(sub.add_parser("evaluate", help="Score generated images against the StyleRef set; compare runs."))
    evaluation.add_arguments(sub.add_parser("style-eval", help="Compare style encoders by style retrieval."))
    protocol.add_arguments(sub.add_parser("protocol", help="Generate with every run under one protocol, then evaluate them together."))
    compare.add_arguments(sub.add_parser("compare", help="Train, generate and evaluate every method on a held-out toy style."))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_cli(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
