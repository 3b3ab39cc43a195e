"""The ``styleboost`` command: sub-commands that parse arguments and call the library.

User-fixable problems (``StyleBoostError``) print as one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Callable

from styleboost.core.errors import run_cli
from styleboost.core.settings import add_options, settings_from_namespace
from styleboost.curation import curate
from styleboost.evaluation import config, evaluate, protocol
from styleboost.experiments import compare
from styleboost.generation import generate
from styleboost.style_encoder import evaluation
from styleboost.styles import randomised_set, synthstyle
from styleboost.transfer import config as transfer_config
from styleboost.transfer import transfer


@dataclass(frozen=True)
class SubCommand:
    """A sub-command: the config dataclass its flags come from, and the function that runs a config."""

    config: type
    run: Callable[[Any], int]
    help: str

    def add_to(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_options(parser, self.config)
        parser.set_defaults(func=lambda args: self.run(settings_from_namespace(self.config, args)))
        return parser


SUB_COMMANDS: dict[str, SubCommand] = {
    "generate": SubCommand(generate.GenerateConfig, generate.run, "Generate images from prompt files."),
    "make-style-set": SubCommand(synthstyle.StyleSetConfig, synthstyle.run, "Build the synthetic style data set."),
    "make-random-style-set": SubCommand(randomised_set.RandomisedSetConfig, randomised_set.run,
                                        "Build the style-randomisation data set (drawn styles, held-out families)."),
    "evaluate": SubCommand(config.EvaluateConfig, evaluate.run,
                           "Score generated images against the StyleRef set; compare runs."),
    "style-eval": SubCommand(evaluation.StyleEvalConfig, evaluation.run, "Compare style encoders by style retrieval."),
    "protocol": SubCommand(protocol.ProtocolRunConfig, protocol.run,
                           "Generate with every run under one protocol, then evaluate them together."),
    "compare": SubCommand(compare.CompareConfig, compare.run,
                          "Train, generate and evaluate every method on a held-out toy style."),
    "curate-aux": SubCommand(curate.CurateConfig, curate.run,
                             "Choose the Aux set from a pool: person, style affinity, quality, no near-duplicates."),
    "transfer": SubCommand(transfer_config.TransferConfig, transfer.run,
                           "Classic neural style transfer (Gatys, AdaIN, a per-style encoder-decoder): the baselines."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styleboost", description="StyleBoost toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in SUB_COMMANDS.items():
        command.add_to(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args))


def sub_command_main(name: str, argv: list[str] | None = None, prog: str | None = None) -> int:
    """One sub-command as a program of its own (the ``eval/`` scripts): its flags, its one-line errors."""
    command = SUB_COMMANDS[name]
    args = command.add_to(argparse.ArgumentParser(prog=prog, description=command.help)).parse_args(argv)
    return run_cli(lambda: args.func(args), prog=prog or "styleboost")


if __name__ == "__main__":
    sys.exit(main())
