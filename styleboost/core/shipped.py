"""Where the weights shipped inside the package live: the pre-trained toy world and the trained style encoders.

Lower stages find shipped models by name here (``--clip toyworld``, ``--encoder toyworld``) without
importing the toy world. ``$STYLEBOOST_TOYWORLD_DIR`` points every toy-world loader at another
pre-trained world (the output folder of ``train_scripts/pretrain_toyworld.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
TOYWORLD = "toyworld"  # the name of the toy world's shipped CLIP and style encoder
TOYWORLD_DIR_ENV = "STYLEBOOST_TOYWORLD_DIR"


def toyworld_dir() -> Path:
    """The shipped pre-trained toy world, or the folder ``$STYLEBOOST_TOYWORLD_DIR`` names."""
    return Path(os.environ.get(TOYWORLD_DIR_ENV) or PACKAGE / "toyworld" / "pretrained")


def style_encoder_dirs() -> list[Path]:
    """Candidate folders of shipped style encoders: ``style_encoder/pretrained/*`` and the toy world's."""
    folder = PACKAGE / "style_encoder" / "pretrained"
    found = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return found + [toyworld_dir() / "style_encoder"]


def shipped_clip_dirs() -> dict[str, Path]:
    """Shipped open_clip folders by ``--clip`` name."""
    return {TOYWORLD: toyworld_dir() / "clip"}
