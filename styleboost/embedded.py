"""The embedded default run: the tiny local model and a generated toy style, when none is given.

A user without a GPU or hub access can run the whole trainer with no arguments; any model or
data folder given on the command line replaces the embedded one.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

import yaml

from styleboost.config import TrainConfig
from styleboost.notice import notice

TOY_STYLE_SIZE = 64


def embedded_settings() -> dict[str, Any]:
    """Hyper-parameters of the embedded default (``styleboost/configs/embedded_default.yaml``)."""
    text = resources.files("styleboost").joinpath("configs/embedded_default.yaml").read_text()
    return yaml.safe_load(text)


def fill_local_defaults(cfg: TrainConfig) -> TrainConfig:
    """Use the tiny local model and the toy StyleRef/Aux sets where the config names none."""
    from styleboost.testing import default_cache_dir, tiny_pipeline_path

    changes: dict[str, Any] = {}
    if cfg.pretrained_model_name_or_path is None:
        changes["pretrained_model_name_or_path"] = str(tiny_pipeline_path())
        notice(f"no --pretrained_model_name_or_path: using the tiny local model {changes['pretrained_model_name_or_path']}")
    if cfg.styleref_dir is None:
        from styleboost.toydata import make_default_datasets

        styleref, aux = make_default_datasets(default_cache_dir() / "toy-style", size=TOY_STYLE_SIZE, seed=0)
        changes["styleref_dir"] = str(styleref)
        if cfg.aux_dir is None and cfg.aux_mode == "curated":
            changes["aux_dir"] = str(aux)
        notice(f"no --styleref_dir: training on the generated toy style in {styleref.parent}")
    return dataclasses.replace(cfg, **changes)
