"""The ``styleboost`` command: sub-commands that parse arguments and call the library.

User-fixable problems (``StyleBoostError``) print as one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Callable, TypeVar

from styleboost.core.errors import StyleBoostError


T = TypeVar("T")


def flag_adder(parser: argparse.ArgumentParser) -> Callable[..., None]:
    """``add("--a-b", ...)``: ``parser.add_argument`` that also accepts the flag as ``--a_b``."""

    def add(flag: str, **kwargs: Any) -> None:
        underscored = "--" + flag[2:].replace("-", "_")
        names = [flag] if underscored == flag else [flag, underscored]
        parser.add_argument(*names, **kwargs)

    return add


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """An instance of the config dataclass ``cls`` from the parsed arguments that name its fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def run_cli(body: Callable[[], int | None], prog: str = "styleboost") -> int:
    """Run ``body``; turn a ``StyleBoostError`` into one line on stderr and exit status 2."""
    try:
        return int(body() or 0)
    except StyleBoostError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="styleboost", description="StyleBoost toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    from styleboost.evaluation import evaluate
    from styleboost.generation import generate
    from styleboost.styles import synthstyle
    from styleboost.style_encoder import evaluation

    generate.add_arguments(sub.add_parser("generate", help="Generate images from prompt files."))
    synthstyle.add_arguments(sub.add_parser("make-style-set", help="Build the synthetic style data set."))
    evaluate.add_arguments(sub.add_parser("evaluate", help="Score generated images against the StyleRef set; compare runs."))
    evaluation.add_arguments(sub.add_parser("style-eval", help="Compare style encoders by style retrieval."))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_cli(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
