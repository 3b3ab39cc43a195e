"""Ceiling of style retrieval on a randomised set's held-out families: an encoder trained on the test styles.

The held-out-family test sets (``styleboost make-random-style-set``) are judged on contents no training image
shows. This script asks how well the encoder *architecture* can do on them at all: it renders every test style
of every held-out family on ``--contents`` of the set's *training* contents (the same recipes, seeds and
pool the set was built with), trains an encoder on those images alone (native crops by default) and scores it
with ``style-eval`` on the family test sets. The styles are then seen and only the contents are new, so a
family's score here bounds what any encoder of that architecture and budget reaches on it; where it stays
low, the test styles are near-duplicates of one another or the style does not survive a change of content.

    styleboost make-random-style-set data/rs2000 --styles 2000 --images-per-style 6
    python eval/style_ceiling.py --data data/rs2000 --out runs/style-ceiling --steps 1000

About 12 minutes of training at 1000 steps on a 2-core CPU, plus a minute of rendering and scoring.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from styleboost.core.errors import StyleBoostError, run_cli
from styleboost.style_encoder.evaluation import evaluate_encoders
from styleboost.style_encoder.retrieval import markdown_table
from styleboost.style_encoder.training import EncoderTrainConfig, train_style_encoder
from styleboost.styles.randomised_set import (
    RandomisedSetConfig,
    content_choice,
    draw_heldout_styles,
    family_sets,
    read_set_config,
)
from styleboost.styles.synthstyle import make_contents, write_styled


def set_config(data: Path, contents: int) -> RandomisedSetConfig:
    """The settings ``data`` was built with, drawing ``contents`` training contents a style."""
    cfg = read_set_config(data)
    if not 1 <= contents <= cfg.train_contents:
        raise StyleBoostError(f"--contents {contents}: between 1 and the set's {cfg.train_contents} training contents")
    return dataclasses.replace(cfg, images_per_style=contents)


def write_seen_styles(cfg: RandomisedSetConfig, folder: Path) -> int:
    """Every held-out family's test styles on training contents, in ``folder``; returns the image count."""
    pool = make_contents("train", cfg.train_contents, cfg.size, cfg.seed)
    jobs = [(style.recipe, content_choice(cfg, style.name, pool))
            for family in cfg.heldout_families for style in draw_heldout_styles(cfg, family)]
    return write_styled(folder, jobs, cfg.seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="A randomised style set (styleboost make-random-style-set).")
    parser.add_argument("--out", required=True, help="Folder for the seen-styles images, the run and the report.")
    parser.add_argument("--steps", type=int, default=1000, help="Training steps.")
    parser.add_argument("--contents", type=int, default=6, help="Training contents each test style is rendered on.")
    parser.add_argument("--architecture", default="small-cnn", help="Encoder architecture to train.")
    parser.add_argument("--overwrite", action="store_true", help="Replace an earlier run and report in --out.")
    args = parser.parse_args(argv)

    def body() -> int:
        data, out = Path(args.data), Path(args.out)
        cfg = set_config(data, args.contents)
        print(f"{write_seen_styles(cfg, out / 'seen_styles')} images of the test styles on training contents")
        train_cfg = EncoderTrainConfig(data=str(out / "seen_styles"), output_dir=str(out / "run"),
                                       architecture=args.architecture,
                                       max_train_steps=args.steps, eval_every=max(1, args.steps // 4),
                                       checkpointing_steps=args.steps, overwrite=args.overwrite,
                                       report_to="none", progress=False)
        train_cfg.validate()
        encoder = str(train_style_encoder(train_cfg) / "best")
        sets = [(name, str(path)) for name, path in family_sets(data).items() if name.startswith("family:")]
        report = evaluate_encoders([encoder], sets, out / "report", overwrite=args.overwrite, progress=False)
        print(markdown_table(report["results"]))
        return 0

    return run_cli(body, prog="style_ceiling.py")


if __name__ == "__main__":
    sys.exit(main())
