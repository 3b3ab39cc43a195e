"""Train a per-style encoder-decoder: ``python train_scripts/train_transfer.py --styleref_dir DIR --content_dir DIR
--output_dir OUT``.

All logic lives in ``styleboost.transfer.transfer_training``; ``--help`` lists every setting. ``OUT`` is what
``styleboost transfer --method encoder-decoder --model OUT`` reads.
"""

from __future__ import annotations

import sys

from styleboost.core.errors import run_cli
from styleboost.transfer.transfer_training import config_from_args, train_transfer


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        out = train_transfer(config_from_args(argv, prog="train_transfer.py"))
        print(f"styleboost: encoder-decoder trained: styleboost transfer --method encoder-decoder --model {out}")
        return 0

    return run_cli(body, prog="train_transfer.py")


if __name__ == "__main__":
    sys.exit(main())
