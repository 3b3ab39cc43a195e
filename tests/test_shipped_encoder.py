"""The shipped default style encoder, judged on a freshly generated synthetic set it never saw.

The set uses another seed than the training set: new crops of the four held-out photographs and new
procedural scenes, rendered in the 30 seen styles (held-out contents) and in the 6 held-out styles; and
randomised styles built on operation families (halftone, cells, warp) the encoder never saw at all.
Thresholds are set below what was measured (see the comments) so that a broken encoder, loader or
preprocessing fails them, while the randomness of one small set does not.
"""

from __future__ import annotations

import pytest

from styleboost.style_encoder import create_style_encoder
from styleboost.style_encoder.dataset import read_style_data
from styleboost.style_encoder.evaluation import score_encoder
from styleboost.styles.randomised_set import RandomisedSetConfig, build_randomised_set, family_sets
from styleboost.styles.synthstyle import build_style_set

FRESH_SEED = 20261122


@pytest.fixture(scope="module")
def fresh_set(tmp_path_factory):
    return build_style_set(tmp_path_factory.mktemp("fresh") / "set", seed=FRESH_SEED, train_contents=2,
                           heldout_contents=8)


def scores(encoder_name: str, folder) -> dict:
    return score_encoder(create_style_encoder(encoder_name), read_style_data(folder), seed=0)


def test_shipped_encoder_retrieves_the_style_of_unseen_contents(fresh_set):
    """Measured on this set (seed 20261122): mAP@10 0.926 for the shipped encoder, 0.322 for the
    training-free Gram baseline; content leak -0.889 vs -0.044. Over seeds 1 and 2: 0.938 / 0.905
    (baseline 0.340 / 0.340). Chance mAP@10 here is about 0.04 (30 styles, 6 relevant per query)."""
    trained = scores("default", fresh_set / "heldout_contents")
    gram = scores("gram-small-cnn", fresh_set / "heldout_contents")
    assert trained["map@10"] > 0.70, trained
    assert trained["map@10"] > gram["map@10"] + 0.30, (trained, gram)
    assert trained["content_leak"] < -0.5, trained  # it looks at style and ignores what is drawn
    assert trained["accuracy"] > 0.75, trained  # measured 0.967 (nearest centroid, 30 styles)


def test_shipped_encoder_groups_styles_it_was_never_trained_on(fresh_set):
    """Measured: mAP@10 1.000 on the 6 held-out styles (baseline 0.391), content leak -0.814; seeds 1 and 2:
    0.984 and 1.000."""
    trained = scores("default", fresh_set / "heldout_styles")
    assert trained["map@10"] > 0.80, trained
    assert trained["content_leak"] < -0.5, trained


def test_shipped_encoder_is_small_and_never_saw_the_held_out_styles():
    from styleboost.style_encoder.factory import shipped_encoders
    from styleboost.styles.synthstyle import DEFAULT_HELDOUT_STYLES

    folder = shipped_encoders()["default"]
    assert (folder / "model.safetensors").stat().st_size < 5 * 2**20
    encoder = create_style_encoder("default")
    assert len(encoder.config.class_names) == 30
    assert not set(encoder.config.class_names) & set(DEFAULT_HELDOUT_STYLES)


@pytest.fixture(scope="module")
def fresh_families(tmp_path_factory):
    """Held-out-family test sets drawn with another seed than the set the README's table was measured on."""
    cfg = RandomisedSetConfig(out=str(tmp_path_factory.mktemp("families") / "set"), styles=2, images_per_style=1,
                              train_contents=2, heldout_styles=12, heldout_images=12, seed=FRESH_SEED)
    build_randomised_set(cfg)
    return {name: path for name, path in family_sets(cfg.out).items() if name.startswith("family:")}


def test_shipped_encoder_beats_the_gram_baseline_on_operation_families_it_never_saw(fresh_families):
    """Halftone screens, Voronoi cells and warps were never in the shipped encoder's training data.

    Measured on this set (seed 20261122, 12 styles x 12 contents a family), mAP@10 shipped / Gram baseline:
    cells 0.531 / 0.303, halftone 0.775 / 0.443, warp 0.599 / 0.391. Over seeds 1 and 2 the smallest margin was
    0.086 (cells, seed 1: 0.428 / 0.342) and the lowest shipped score 0.428. Chance mAP@10 is about 0.08.
    The bars sit below those: the issue's goal (0.75, +0.25) is not met, and this test guards what is."""
    for name, folder in fresh_families.items():
        trained = scores("default", folder)
        gram = scores("gram-small-cnn", folder)
        assert trained["map@10"] > 0.35, (name, trained)
        assert trained["map@10"] > gram["map@10"] + 0.05, (name, trained, gram)
