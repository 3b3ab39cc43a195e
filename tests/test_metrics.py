"""The metric building blocks on hand-made inputs: scores, FID/KID against independent formulas,
prompts without the token, the feature cache, decoding and the Gram distance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.metrics.cache import EmbeddingCache
from styleboost.metrics.extractors import GramDistances, GramMatrices, ModuleFeatures, split_gram_matrices
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.fid_kid import frechet_distance, kernel_distance
from styleboost.metrics.image_sets import prompt_without_token, read_run
from styleboost.metrics.loader import decode_square, square_batches
from styleboost.metrics.scores import clip_score, mean_distance_within_groups, similarity_to_set
from styleboost.style_encoder.backbones import SmallCNN


@pytest.mark.parametrize("template, expected", [
    ("a portrait of a woman in [V] style", "a portrait of a woman"),
    ("[V] style painting of a cat", "painting of a cat"),
    ("a cat, [V] style", "a cat"),
    ("a dog in the style of [V]", "a dog"),
    ("a [V] style painting of a cat", "a painting of a cat"),
    ("a cat in [V1] [V2] style", "a cat"),
    ("a woman", "a woman"),
])
def test_prompt_without_token_removes_the_token_phrase(template, expected):
    assert prompt_without_token(template) == expected


def test_prompt_without_token_removes_filled_in_tokens_as_whole_words_only():
    assert prompt_without_token("a portrait of a man in sks style", ["sks"]) == "a portrait of a man"
    assert prompt_without_token("a portrait of sksy", ["sks"]) == "a portrait of sksy"
    assert prompt_without_token("a <my-style> style dog", ["<my-style>"]) == "a dog"


def test_similarity_to_set_is_mean_cosine_and_centroid_cosine():
    reference = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mean, centroid = similarity_to_set(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), reference)
    assert torch.allclose(mean, torch.tensor([0.5, -0.5]))
    assert torch.allclose(centroid, torch.tensor([2 ** -0.5, -(2 ** -0.5)]))


def test_clip_score_is_100_cos_clamped_at_zero():
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    texts = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    assert torch.allclose(clip_score(images, texts), torch.tensor([100.0, 0.0, 60.0]))


def test_diversity_is_mean_distance_to_the_others_of_the_group():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [5.0, 5.0]])
    out = mean_distance_within_groups(vectors, ["a", "a", "a", None])
    assert torch.allclose(out[:3], torch.tensor([0.5, 1.0, 0.5]))  # 1 - cos to each of the two others
    assert torch.isnan(out[3])
    assert torch.isnan(mean_distance_within_groups(vectors[:1], ["alone"])[0])


def test_fid_matches_the_closed_form_with_scipy_sqrtm():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(200, 6, generator=generator, dtype=torch.float64)
    fake = torch.randn(150, 6, generator=generator, dtype=torch.float64) * 1.5 + 0.5
    mu1, mu2 = real.mean(0).numpy(), fake.mean(0).numpy()
    s1, s2 = np.cov(real.numpy(), rowvar=False), np.cov(fake.numpy(), rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-4)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(real[:1], fake) is None


def test_kid_matches_the_unbiased_mmd_formula_and_is_seeded():
    generator = torch.Generator().manual_seed(1)
    real = torch.randn(12, 4, generator=generator, dtype=torch.float64)
    fake = torch.randn(12, 4, generator=generator, dtype=torch.float64) + 1.0
    kernel = lambda a, b: (a @ b.T / 4 + 1) ** 3  # noqa: E731 - torchmetrics' default polynomial kernel
    m = 12
    k_xx, k_yy, k_xy = kernel(real, real), kernel(fake, fake), kernel(real, fake)
    expected = ((k_xx.sum() - k_xx.trace()) + (k_yy.sum() - k_yy.trace())) / (m * (m - 1)) - 2 * k_xy.mean()
    mean, std = kernel_distance(real, fake, subsets=3, subset_size=m)  # whole sets: every subset is the same
    assert mean == pytest.approx(float(expected), rel=1e-6)
    assert std == pytest.approx(0.0, abs=1e-9)
    assert kernel_distance(real, fake, subsets=20, subset_size=5, seed=3) == kernel_distance(real, fake, 20, 5, 3)
    assert kernel_distance(real, fake[:1]) == (None, None)


def test_cache_round_trip_and_damaged_file(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.store("model-a", {"h1": torch.tensor([1.0, 2.0])})
    cache.store("model-a", {"h2": torch.tensor([3.0, 4.0])})
    found = EmbeddingCache(tmp_path).lookup("model-a", ["h1", "h2", "h3"])
    assert set(found) == {"h1", "h2"} and torch.equal(found["h2"], torch.tensor([3.0, 4.0]))
    assert EmbeddingCache(tmp_path).lookup("model-b", ["h1"]) == {}
    cache.file_for("model-a").write_bytes(b"not safetensors")
    assert EmbeddingCache(tmp_path).lookup("model-a", ["h1"]) == {}  # recomputed, never fatal


def test_decode_square_resizes_the_short_side_and_centre_crops(tmp_path):
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, 20:60] = 255  # a white centre band, black sides
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    square = decode_square(tmp_path / "wide.png", 20)
    assert square.shape == (3, 20, 20) and square.dtype == torch.uint8
    assert square[:, :, 2:-2].min() == 255  # the crop keeps the centre band


def test_square_batches_name_the_file_that_does_not_decode(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(StyleBoostError, match="bad.png"):
        list(square_batches([tmp_path / "good.png", tmp_path / "bad.png"], 8, 4, 0))


class CountingMean(torch.nn.Module):
    """Channel means of uint8 images; counts the images it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.seen += len(pixels)
        return pixels.float().mean(dim=(2, 3))


def test_compute_features_reads_cached_vectors_back_and_runs_shared_keys_once(tmp_path):
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (16, 16), colour).save(paths[-1])
    module = CountingMean()
    extractor = ModuleFeatures(module, key="mean")
    cache = EmbeddingCache(tmp_path / "cache")
    first = compute_features(paths, {"a": extractor, "b": extractor}, Scoring(image_size=8, batch_size=2), cache)
    assert module.seen == 3  # two names, one key: run once
    assert torch.allclose(first["a"][0], torch.tensor([255.0, 0.0, 0.0]))
    again = compute_features(paths[::-1], {"a": extractor}, Scoring(image_size=8), EmbeddingCache(tmp_path / "cache"))
    assert module.seen == 3 and torch.equal(again["a"], first["a"].flip(0))
    compute_features(paths, {"a": extractor}, Scoring(image_size=12), cache)
    assert module.seen == 6  # another decode size is another key


def test_gram_distance_is_zero_to_itself_and_grows_with_difference():
    torch.manual_seed(0)
    grams = GramMatrices(SmallCNN([4, 8]), weights_id="test")
    smooth = torch.full((1, 3, 32, 32), 128, dtype=torch.uint8)
    noisy = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    reference = split_gram_matrices(grams, grams(smooth)[0])
    distances = GramDistances(grams, reference)
    assert torch.allclose(distances(smooth), torch.zeros(1, 2))
    assert (distances(noisy) > 0).all()
    assert distances.key != GramDistances(grams, split_gram_matrices(grams, grams(noisy)[0])).key


def test_read_run_without_metadata_keeps_images_with_prompt_unknown(tmp_path):
    (tmp_path / "grids").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "grids" / "grid.png")
    Image.new("RGB", (8, 12)).save(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"not an image")
    run = read_run("x", tmp_path)
    assert [im.file for im in run.images] == ["a.png", "b.png"]  # grids/ and the broken file are not scored
    assert all(im.prompt is None for im in run.images)
    notes = " ".join(run.notes)
    assert "no metadata.jsonl" in notes and "do not decode" in notes and "not 8x8" in notes


def test_uncacheable_extractors_run_every_time_and_leave_no_cache_file(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (10, 20, 30)).save(path)
    torch.manual_seed(0)
    grams = GramMatrices(SmallCNN([4]), weights_id="test")
    calls = []
    grams.backbone.register_forward_hook(lambda module, args, output: calls.append(1))
    cache = EmbeddingCache(tmp_path / "cache")
    first = compute_features([path], {"gram": grams}, Scoring(image_size=16), cache)
    second = compute_features([path], {"gram": grams}, Scoring(image_size=16), cache)
    assert len(calls) == 2 and torch.equal(first["gram"], second["gram"])
    assert not (tmp_path / "cache").exists()


def test_read_run_names_the_metadata_line_without_a_file(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "metadata.jsonl").write_text('{"file": "a.png", "prompt": "x"}\n{"prompt": "y"}\n')
    with pytest.raises(StyleBoostError, match='metadata.jsonl line 2 has no "file" field'):
        read_run("x", tmp_path)
