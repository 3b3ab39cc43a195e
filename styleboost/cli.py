"""The ``styleboost`` command: sub-commands that parse arguments and call the library.

User-fixable problems (``StyleBoostError``) print as one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from styleboost.core.errors import run_cli
from styleboost.evaluation import evaluate, protocol
from styleboost.experiments import compare
from styleboost.generation import generate
from styleboost.style_encoder import evaluation
from styleboost.styles import synthstyle


SUB_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], str]] = {
    "generate": (generate.add_arguments, "Generate images from prompt files."),
    "make-style-set": (synthstyle.add_arguments, "Build the synthetic style data set."),
    "evaluate": (evaluate.add_arguments, "Score generated images against the StyleRef set; compare runs."),
    "style-eval": (evaluation.add_arguments, "Compare style encoders by style retrieval."),
    "protocol": (protocol.add_arguments, "Generate with every run under one protocol, then evaluate them together."),
    "compare": (compare.add_arguments, "Train, generate and evaluate every method on a held-out toy style."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styleboost", description="StyleBoost toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, help) in SUB_COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help, description=help))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args))


def sub_command_main(name: str, argv: list[str] | None = None, prog: str | None = None) -> int:
    """One sub-command as a program of its own (the ``eval/`` scripts): its flags, its one-line errors."""
    add_arguments, help = SUB_COMMANDS[name]
    parser = argparse.ArgumentParser(prog=prog, description=help)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(lambda: args.func(args), prog=parser.prog)


if __name__ == "__main__":
    sys.exit(main())
