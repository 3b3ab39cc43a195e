"""Train an AdaIN decoder: ``python train_scripts/train_adain.py --content_dir DIR --style_dir DIR --output_dir OUT``.

All logic lives in ``styleboost.transfer.adain_training``; ``--help`` lists every setting. The decoder it writes
(``OUT/decoder.safetensors``) is what ``styleboost transfer --method adain --decoder`` reads.
"""

from __future__ import annotations

import sys

from styleboost.core.errors import run_cli
from styleboost.transfer.adain_training import DECODER_FILE, config_from_args, train_adain


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        out = train_adain(config_from_args(argv, prog="train_adain.py"))
        print(f"styleboost: AdaIN decoder trained: {out / DECODER_FILE}")
        return 0

    return run_cli(body, prog="train_adain.py")


if __name__ == "__main__":
    sys.exit(main())
