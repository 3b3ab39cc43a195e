"""Session fixtures: tiny Stable Diffusion pipeline folders (one per prediction type, and SDXL), built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def fresh_notices():
    """Notices print once per process; each test starts as a fresh process would, so that what it expects to be
    told does not depend on which tests ran before it."""
    from styleboost.core import notice

    notice._seen.clear()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and OpenMP threads crawl when the CPU is shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


@pytest.fixture(scope="session")
def sdxl_model_dir(tmp_path_factory) -> str:
    """A tiny random SDXL pipeline (two text encoders, text_time UNet whose up_blocks.0 has two attentions, as
    SDXL's has more) saved as a diffusers folder."""
    from styleboost.testing import save_pipeline, tiny_sdxl_components

    return str(save_pipeline(tmp_path_factory.mktemp("tiny-sdxl"), tiny_sdxl_components))


@pytest.fixture(scope="session")
def style_dirs(tmp_path_factory) -> tuple[str, str]:
    """A small toy-world StyleRef set (captions with [V]) and Aux set (people, no token) at 32 px."""
    from styleboost.toyworld.assets import make_experiment_sets

    sets = make_experiment_sets(tmp_path_factory.mktemp("toy"), styleref_count=4, aux_count=3, size=32, seed=0)
    return str(sets.styleref), str(sets.aux)


# people and other contents alternating, so even and odd images differ in kind
STYLEREF_CONTENTS = ("person", "house", "portrait", "tree", "group", "landscape")


def write_styleref_images(folder: Path, n: int, *, size: int = 32, seed: int = 0) -> list[Path]:
    """``n`` toy-world images of ``STYLEREF_CONTENTS`` in the held-out target style, captioned
    "<content> in [V] style"; returns their PNG paths in order."""
    from styleboost.toyworld.assets import TARGET_STYLE
    from styleboost.toyworld.world import write_style_folder

    items = [(STYLEREF_CONTENTS[k % len(STYLEREF_CONTENTS)], TARGET_STYLE) for k in range(n)]
    write_style_folder(folder, items, size=size, seed=seed, caption="{content} in [V] style")
    return sorted(Path(folder).glob("*.png"))


@pytest.fixture
def train_config(tiny_model_dir, style_dirs, tmp_path):
    """A factory of small, fast TrainConfigs on the tiny model; keyword arguments override."""
    from styleboost.training.config import TrainConfig

    def make(**overrides):
        settings = dict(
            pretrained_model_name_or_path=tiny_model_dir,
            styleref_dir=style_dirs[0],
            aux_dir=style_dirs[1],
            output_dir=str(tmp_path / "run"),
            max_train_steps=4,
            train_batch_size=2,
            learning_rate=1e-3,
            report_to="none",
            checkpointing_steps=1000,
            num_validation_images=1,
            validation_inference_steps=2,
        )
        settings.update(overrides)
        cfg = TrainConfig(**settings)
        cfg.validate()
        return cfg

    return make


@pytest.fixture
def base_args(tiny_model_dir, style_dirs, tmp_path) -> list[str]:
    """Command-line flags of a tiny, fast training run (tests swap single flags)."""
    return [
        "--pretrained_model_name_or_path", tiny_model_dir, "--styleref_dir", style_dirs[0], "--aux_dir", style_dirs[1],
        "--output_dir", str(tmp_path / "out"), "--max_train_steps", "2", "--report_to", "none",
        "--validation_inference_steps", "2", "--num_validation_images", "1",
    ]


def load_entry_point(name: str):
    """Import a script of train_scripts/ as a module (they are not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "train_scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def train_main():
    """``main(argv) -> exit code`` of train_scripts/train_styleboost.py."""
    return load_entry_point("train_styleboost").main


def two_token_settings(folder: Path) -> dict:
    """Settings of a two-token textual-inversion run (Multi-StyleForge) on four images written into ``folder``,
    captioned alternately with [V1] and [V2]."""
    for i, image in enumerate(write_styleref_images(folder, 4, size=32, seed=3)):
        image.with_suffix(".txt").write_text(f"an image in [V{1 + i % 2}] style")
    return dict(styleref_dir=str(folder), method="textual_inversion", new_token=["<v1>", "<v2>"], aux_mode="none",
                aux_dir=None, train_batch_size=1, learning_rate=5e-2)
