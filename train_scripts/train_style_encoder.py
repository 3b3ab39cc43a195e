"""Train a style-similarity encoder: ``accelerate launch train_scripts/train_style_encoder.py --data DIR [...]``.

``--data`` is a folder with one sub-folder per style (WikiArt layout, or the synthetic style set of
``styleboost make-style-set``) or a CSV of path,style. All logic lives in
``styleboost.style_encoder.training``; ``--help`` lists every setting.
"""

from __future__ import annotations

import sys

from styleboost.core.errors import run_cli
from styleboost.style_encoder.training import config_from_args, train_style_encoder


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        out = train_style_encoder(config_from_args(argv, prog="train_style_encoder.py"))
        print(f"styleboost: style encoder trained; best encoder in {out / 'best'}")
        return 0

    return run_cli(body, prog="train_style_encoder.py")


if __name__ == "__main__":
    sys.exit(main())
