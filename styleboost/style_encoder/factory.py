"""Make a style encoder from a name or a folder, and save one: the one way in and out.

``create_style_encoder(name_or_path)`` accepts
- a saved encoder folder (``config.json`` + ``model.safetensors``),
- the name of an encoder shipped trained in ``pretrained/`` (``default`` is the one we trained on
  the synthetic style set with ``train_scripts/train_style_encoder.py``),
- the name of an architecture in ``configs/`` (``small-cnn``, the larger ``wide-cnn``, ``efficientnet_b0``,
  ``clip-vit-b-32``, the training-free ``gram-small-cnn`` / ``gram-vgg19``, the CSD layout ``csd-vit-l-14``), built with random
  or the user's backbone weights: ``ARCH:WEIGHTS`` (a local ``.safetensors`` file or a hub id) names them,
- a config ``.json`` file of that structure (its ``pretrained`` naming the weights).
Weights are only ever read from safetensors; loading never executes pickle.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from styleboost.core.atomic import publish
from styleboost.core.errors import StyleBoostError, first_line
from styleboost.core.shipped import TOYWORLD, style_encoder_dirs, toyworld_dir
from styleboost.style_encoder.encoder_config import EncoderConfig, named_configs, read_config
from styleboost.style_encoder.model import StyleEncoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
DEFAULT_ENCODER = "default"


def shipped_encoders() -> dict[str, Path]:
    """Trained encoders inside the package (``pretrained/<name>/``, and ``toyworld``), by name."""
    found = {}
    for folder in style_encoder_dirs():
        name = TOYWORLD if folder == toyworld_dir() / "style_encoder" else folder.name
        if is_encoder_folder(folder):
            found[name] = folder
    return found


def is_encoder_folder(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def available_encoders() -> list[str]:
    """Every name ``create_style_encoder`` understands (besides folders)."""
    return sorted({*shipped_encoders(), *named_configs()})


def create_style_encoder(name_or_path: str | os.PathLike = DEFAULT_ENCODER, **overrides: Any) -> StyleEncoder:
    """A saved encoder folder, a shipped trained encoder, or a fresh one of a named architecture.

    ``overrides`` replace config fields of a *fresh* encoder (e.g. ``class_names``, ``pretrained``)."""
    path = Path(name_or_path)
    shipped = shipped_encoders()
    if path.is_dir() or str(name_or_path) in shipped:
        if overrides:
            raise StyleBoostError(f"{name_or_path}: a trained encoder's settings cannot be overridden")
        return load_style_encoder(path if path.is_dir() else shipped[str(name_or_path)])
    configs = named_configs()
    name, _, weights = str(name_or_path).partition(":")
    if weights and (name in configs or name.endswith(".json")) and "pretrained" not in overrides:  # ARCH:WEIGHTS
        return create_style_encoder(name, pretrained=weights, **overrides)
    if str(name_or_path) in configs:
        cfg = read_config(configs[str(name_or_path)])
    elif path.suffix == ".json" and path.is_file():
        cfg = read_config(path)
    else:
        raise StyleBoostError(
            f"style encoder {str(name_or_path)!r}: not an encoder folder, shipped encoder or architecture; "
            f"choose a folder with {CONFIG_FILE} + {WEIGHTS_FILE} or one of {', '.join(available_encoders())}"
        )
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(EncoderConfig)})
    if unknown:
        raise StyleBoostError(f"unknown style-encoder setting(s) {', '.join(unknown)}")
    return StyleEncoder(dataclasses.replace(cfg, **overrides))


def load_style_encoder(folder: str | os.PathLike) -> StyleEncoder:
    """Rebuild a saved encoder from ``config.json`` and load ``model.safetensors`` into it."""
    folder = Path(folder)
    if not is_encoder_folder(folder):
        raise StyleBoostError(f"{folder}: not a style encoder folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    cfg = dataclasses.replace(read_config(folder / CONFIG_FILE), pretrained=None)  # weights come from the file
    encoder = StyleEncoder(cfg)
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
        encoder.load_state_dict(state, strict=True)
    except Exception as err:  # safetensors and torch raise several types for a bad or mismatched file
        raise StyleBoostError(f"{folder / WEIGHTS_FILE}: does not fit {CONFIG_FILE} ({first_line(err)[:200]})") from None
    return encoder.eval()


def save_style_encoder(encoder: StyleEncoder, folder: str | os.PathLike, overwrite: bool = False,
                       training: dict[str, Any] | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``folder`` via a temporary folder and a rename."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise StyleBoostError(f"{folder} already exists; pass --overwrite to replace it")
    cfg = encoder.config if training is None else dataclasses.replace(encoder.config, training=training)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "name": cfg.name})
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")

    return publish(folder, write)
