"""The embedded default run: the pre-trained toy world and one of its held-out styles, when none is given.

A user without a GPU or hub access runs the whole method with no arguments: the toy world's
Stable Diffusion pipeline (shipped in ``styleboost/toyworld/pretrained``) learns the held-out
``thermal`` style from a StyleRef set mixing people and landscapes, with a curated Aux set of people
in named styles through the prior-preservation term; then the base model and the tuned one are
generated from the toy world's people / non-people prompts and evaluated side by side
(``<output_dir>/evaluation/report/report.html``). Any model or data folder given on the command line
replaces the embedded one.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from styleboost.core.notice import notice
from styleboost.core.shipped import TOYWORLD
from styleboost.evaluation.protocol import load_protocol, run_protocol
from styleboost.toyworld import assets
from styleboost.training.config import TrainConfig

EVALUATION_DIR = "evaluation"


def embedded_settings() -> dict[str, Any]:
    """Hyper-parameters of the embedded default (``styleboost/experiments/configs/embedded_default.yaml``)."""
    text = resources.files("styleboost.experiments").joinpath("configs/embedded_default.yaml").read_text()
    return yaml.safe_load(text)


def toyworld_file(*parts: str) -> Path:
    return Path(str(resources.files("styleboost.toyworld").joinpath(*parts)))


def toyworld_protocol():
    """The toy world's evaluation protocol (``styleboost/toyworld/configs/protocol.yaml``)."""
    return load_protocol(toyworld_file("configs", "protocol.yaml"))


def fill_local_defaults(cfg: TrainConfig) -> TrainConfig:
    """Use the toy world's pipeline and a held-out-style StyleRef/Aux experiment where the config names none; a toy
    world run's validation metrics use the toy world's CLIP and style encoder unless others are named."""
    changes: dict[str, Any] = {}
    if cfg.pretrained_model_name_or_path is None:
        changes["pretrained_model_name_or_path"] = str(assets.pipeline_path())
        notice(f"no --pretrained_model_name_or_path: using the pre-trained toy world {changes['pretrained_model_name_or_path']}")
        if cfg.validation_prompts is None:
            changes["validation_prompts"] = str(toyworld_file("prompts", "validation.txt"))
    if cfg.styleref_dir is None:
        sets = assets.make_experiment_sets(assets.default_experiment_root())
        changes["styleref_dir"] = str(sets.styleref)
        if cfg.aux_dir is None and cfg.aux_mode == "curated":
            changes["aux_dir"] = str(sets.aux)
        notice(f"no --styleref_dir: learning the held-out toy style {sets.style!r} from {sets.styleref}")
    cfg = dataclasses.replace(cfg, **changes)
    if uses_toy_world(cfg):  # validation scores by the toy world's own networks, as its protocol's
        cfg = dataclasses.replace(cfg, validation_encoder=cfg.validation_encoder or TOYWORLD,
                                  validation_clip=cfg.validation_clip or TOYWORLD)
    return cfg


def uses_toy_world(cfg: TrainConfig) -> bool:
    model = cfg.pretrained_model_name_or_path
    return model is not None and Path(model).resolve() == assets.pipeline_path().resolve()


def evaluate_run(cfg: TrainConfig, output_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Generate the toy-world protocol with the base model and the trained run and evaluate both
    (``<output_dir>/evaluation/report/``); returns the report."""
    protocol = toyworld_protocol()
    out = Path(output_dir) / EVALUATION_DIR
    shared = {"progress": progress}
    return run_protocol(protocol, ["base=", f"{cfg.method}={output_dir}"], cfg.styleref_dir, out,
                        model=cfg.pretrained_model_name_or_path, generate_settings=dict(shared),
                        evaluate_settings={**shared, "overwrite": cfg.overwrite})
