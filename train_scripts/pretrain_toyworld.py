"""Pre-train the toy world from its seed: ``python train_scripts/pretrain_toyworld.py [--flag value ...]``.

Writes a diffusers pipeline, an open_clip model and a style encoder (and ``pretrain.json`` with
timings, sizes and the quality bar). The shipped weights in ``styleboost/toyworld/pretrained`` were
made with ``--output_dir styleboost/toyworld/pretrained``. All logic lives in
``styleboost.toyworld.pretrain``; ``--help`` lists every setting.
"""

from __future__ import annotations

import sys

from styleboost.core.errors import run_cli
from styleboost.toyworld.pretrain import config_from_args, pretrain


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        out = pretrain(config_from_args(argv, prog="pretrain_toyworld.py"))
        print(f"styleboost: toy world pre-trained; models in {out}")
        return 0

    return run_cli(body, prog="pretrain_toyworld.py")


if __name__ == "__main__":
    sys.exit(main())
