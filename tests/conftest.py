"""Session fixtures: one tiny Stable Diffusion pipeline folder per prediction type, built offline."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny epsilon-prediction SD pipeline saved as a diffusers folder."""
    from styleboost.testing import save_tiny_pipeline

    return str(save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd")))


@pytest.fixture(scope="session")
def tiny_vpred_model_dir(tmp_path_factory) -> str:
    """The same tiny pipeline with a v-prediction scheduler (SD 2.x style)."""
    from styleboost.testing import save_tiny_pipeline

    return str(save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd-v"), prediction_type="v_prediction"))
