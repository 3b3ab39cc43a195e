"""Configs are data: YAML files and flags map onto one dataclass; shipped configs are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import load_yaml_settings
from styleboost.experiments.embedded import embedded_settings
from styleboost.training.config import TrainConfig, config_from_args

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "train_scripts" / "configs").glob("*.yaml"))


def test_flags_override_the_yaml_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("styleref_dir: a\naux_dir: b\nrank: 8\nlearning_rate: 0.01\nnew_token: ['<x>']\n")
    cfg = config_from_args(["--config", str(config), "--rank", "32", "--random_flip"])
    assert (cfg.rank, cfg.learning_rate, cfg.random_flip, cfg.new_token) == (32, 0.01, True, ["<x>"])
    assert cfg.bound_tokens == ["<x>"]


def test_no_arguments_gives_the_embedded_default():
    cfg = config_from_args([], base=embedded_settings())
    assert cfg.styleref_dir is None and cfg.pretrained_model_name_or_path is None
    assert cfg.train_batch_size == embedded_settings()["train_batch_size"] != TrainConfig().train_batch_size
    assert cfg.learning_rate == embedded_settings()["learning_rate"] != TrainConfig().learning_rate


def test_a_styleref_flag_leaves_the_embedded_settings_out():
    cfg = config_from_args(["--styleref_dir", "x", "--aux_mode", "none"], base=embedded_settings())
    assert cfg.train_batch_size == TrainConfig().train_batch_size
    assert cfg.learning_rate == TrainConfig().learning_rate


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_are_valid(path):
    cfg = TrainConfig(**load_yaml_settings(path, TrainConfig))
    cfg.validate()
    assert cfg.styleref_dir and cfg.pretrained_model_name_or_path


def test_yaml_that_is_not_a_mapping(tmp_path):
    config = tmp_path / "list.yaml"
    config.write_text("- a\n- b\n")
    with pytest.raises(StyleBoostError, match="list.yaml"):
        load_yaml_settings(config, TrainConfig)


def test_missing_config_file(tmp_path):
    with pytest.raises(StyleBoostError, match="config file not found"):
        load_yaml_settings(tmp_path / "nope.yaml", TrainConfig)
