"""Style-retrieval metrics: exact values on hand-worked rankings, limits on easy/random/content-only embeddings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from styleboost.core.errors import StyleBoostError
from styleboost.style_encoder import retrieval
from styleboost.style_encoder.retrieval import markdown_table, query_database_split, retrieval_metrics


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def one_hot_plus_noise(labels: list[int], dim: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.eye(dim)[labels] + noise * rng.standard_normal((len(labels), dim))
    return unit_rows(x)


def chance_ap_at_k(n_database: int, n_relevant: int, k: int) -> float:
    """Expected normalised AP@k when the database is a uniformly random permutation.

    E[precision(i) rel(i)] = (1/i) * (P(rel i) + (i-1) * P(rel i and rel j)) for any j < i.
    """
    n, r = n_database, n_relevant
    p_one = r / n
    p_two = r * (r - 1) / (n * (n - 1))
    return sum((p_one + (i - 1) * p_two) / i for i in range(1, min(k, n) + 1)) / min(k, r)


# --------------------------------------------------------------------------- split


def test_split_is_seeded_and_covers_every_image():
    styles = [f"s{i % 7}" for i in range(140)]
    q1, d1 = query_database_split(styles, 0.2, seed=3)
    q2, d2 = query_database_split(styles, 0.2, seed=3)
    q3, _ = query_database_split(styles, 0.2, seed=4)
    assert np.array_equal(q1, q2) and np.array_equal(d1, d2)
    assert not np.array_equal(q1, q3)
    assert sorted([*q1, *d1]) == list(range(140)) and not set(q1) & set(d1)
    for style in set(styles):
        assert sum(styles[i] == style for i in q1) == 4  # round(0.2 * 20)


def test_every_multi_image_style_has_a_query_and_singletons_stay_in_database():
    styles = ["a", "a", "b", "c", "c", "c", "d"] + ["e"] * 11
    queries, database = query_database_split(styles, 0.2, seed=0)
    query_styles = [styles[i] for i in queries]
    assert sorted(set(query_styles)) == ["a", "c", "e"]
    assert query_styles.count("a") == 1 and query_styles.count("c") == 1 and query_styles.count("e") == 2
    assert styles.index("b") in database and styles.index("d") in database
    # a huge fraction still leaves one same-style image in the database
    queries, database = query_database_split(["x", "x", "y", "y", "y"], 0.99, seed=0)
    assert len(queries) == 3 and len(database) == 2


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_rejects_fraction_outside_unit_interval(fraction):
    with pytest.raises(StyleBoostError, match="query_fraction"):
        query_database_split(["a", "a", "b", "b"], fraction)


# --------------------------------------------------------------------------- metrics on easy cases


def test_separated_styles_score_perfectly():
    labels = [i % 5 for i in range(60)]
    embeddings = one_hot_plus_noise(labels, dim=16, noise=0.01)
    m = retrieval_metrics(embeddings, [f"style{i}" for i in labels])
    assert m["accuracy"] == 1.0
    for k in (1, 10, 100):
        assert m[f"map@{k}"] == pytest.approx(1.0)
    assert m["recall@1"] == 1.0
    assert (m["n_queries"], m["n_database"], m["n_styles"]) == (10, 50, 5)
    assert "content_leak" not in m
    assert m["notes"] == ["k=100 exceeds the 50 database images; map@100 and recall@100 use the whole ranking"]


def test_content_only_embeddings_leak_content_and_retrieve_style_badly():
    contents, styles = zip(*itertools.product(range(8), range(6)))
    embeddings = one_hot_plus_noise(list(contents), dim=8, noise=0.05)
    m = retrieval_metrics(embeddings, [f"s{s}" for s in styles], contents=[f"c{c}" for c in contents])
    assert m["content_leak"] > 0.9
    # 6 styles x 8 images: per style 2 queries, R = 6 of 36 database images
    assert m["map@10"] < 2 * chance_ap_at_k(36, 6, 10) < 0.5


def test_style_only_embeddings_have_negative_content_leak():
    contents, styles = zip(*itertools.product(range(8), range(6)))
    embeddings = one_hot_plus_noise(list(styles), dim=8, noise=0.05)
    m = retrieval_metrics(embeddings, [f"s{s}" for s in styles], contents=[f"c{c}" for c in contents])
    assert m["content_leak"] < -0.9
    assert m["map@10"] == pytest.approx(1.0)


def test_random_embeddings_score_near_chance():
    styles = [f"s{i % 10}" for i in range(1000)]
    embeddings = unit_rows(np.random.default_rng(0).standard_normal((1000, 32)))
    m = retrieval_metrics(embeddings, styles, ks=(1, 10))
    # per style 100 images: 20 queries, R = 80 of 800 database images
    chance = chance_ap_at_k(800, 80, 10)  # 0.0363: most rankings have 0-2 hits in 10, normalised by 10
    assert m["map@10"] == pytest.approx(chance, abs=0.012)  # about 3 standard errors over 200 queries
    assert m["recall@1"] == pytest.approx(0.1, abs=0.05)
    assert m["accuracy"] == pytest.approx(0.1, abs=0.07)


def test_chance_formula_matches_simulation():
    rng = np.random.default_rng(1)
    relevance = np.zeros((20000, 30))
    relevance[:, :6] = 1
    relevance = torch.from_numpy(rng.permuted(relevance, axis=1))
    ap = retrieval.average_precision_at_k(relevance, torch.full((20000,), 6), 10)
    assert ap.mean().item() == pytest.approx(chance_ap_at_k(30, 6, 10), abs=0.005)


# --------------------------------------------------------------------------- hand-worked example


def hand_worked_embeddings(styles: list[str]) -> np.ndarray:
    """Place images so the two queries see known rankings of the 4 database images.

    Query of style a -> e1, query of style b -> e2; database image j -> (x_j, y_j, z_j) with
    z_j filling the unit norm, so its similarity to the a-query is x_j and to the b-query y_j.
    """
    queries, database = query_database_split(styles, 0.2, seed=0)
    assert sorted(styles[i] for i in queries) == ["a", "b"]
    # database a1, a2, b1, b2 (in index order): a-query ranks b1 a1 b2 a2, b-query ranks a1 a2 b1 b2
    xy = {"a": [(0.6, 0.7), (0.2, 0.5)], "b": [(0.8, 0.3), (0.4, 0.1)]}
    query_direction = {"a": (1, 0, 0), "b": (0, 1, 0)}
    embeddings = np.zeros((len(styles), 3))
    for index in queries:
        embeddings[index] = query_direction[styles[index]]
    for style in "ab":
        for index, (x, y) in zip([i for i in database if styles[i] == style], xy[style]):
            embeddings[index] = (x, y, np.sqrt(1 - x * x - y * y))
    return embeddings


def test_hand_worked_average_precision():
    styles = ["a", "b", "a", "b", "a", "b"]
    m = retrieval_metrics(hand_worked_embeddings(styles), styles, ks=(1, 2, 10))
    # a-query, R = 2, relevance 0 1 0 1: AP@1 = 0, AP@2 = (1/2)/2, AP@10 = (1/2 + 2/4)/2
    # b-query, R = 2, relevance 0 0 1 1: AP@1 = 0, AP@2 = 0,       AP@10 = (1/3 + 2/4)/2
    assert m["map@1"] == 0.0
    assert m["map@2"] == pytest.approx((0.25 + 0.0) / 2)
    assert m["map@10"] == pytest.approx((0.5 + 5 / 12) / 2)
    assert (m["recall@1"], m["recall@2"], m["recall@10"]) == (0.0, 0.5, 1.0)
    # precision@k: same-style share of the top k (a: 0/1, 1/2, 2/10; b: 0/1, 0/2, 2/10 - only 4 in the database)
    assert (m["precision@1"], m["precision@2"], m["precision@10"]) == (0.0, 0.25, pytest.approx(0.2))
    # centroids: a = (0.8, 1.2, .) / 1.895, b = (1.2, 0.4, .) / 1.910 -> both queries pick the other style
    assert m["accuracy"] == 0.0
    assert (m["n_queries"], m["n_database"], m["n_styles"]) == (2, 4, 2)
    assert m["notes"] == ["k=10 exceeds the 4 database images; map@10 and recall@10 use the whole ranking"]


def test_average_precision_at_k_by_hand():
    relevance = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]])
    n_relevant = torch.tensor([3, 4])
    # row 0: (1/1 + 2/3) / min(3, 3); (1/1 + 2/3 + 3/4) / 3. row 1: (1/2) / 3; (1/2) / 4
    assert retrieval.average_precision_at_k(relevance, n_relevant, 3).tolist() == pytest.approx([5 / 9, 1 / 6])
    assert retrieval.average_precision_at_k(relevance, n_relevant, 5).tolist() == pytest.approx([29 / 36, 1 / 8])


def test_chunked_ranking_matches_one_chunk(monkeypatch):
    rng = np.random.default_rng(2)
    styles = [f"s{i}" for i in rng.integers(0, 6, 300)]
    embeddings = unit_rows(rng.standard_normal((300, 8)) + 1.5 * np.eye(8)[[int(s[1]) for s in styles]])
    whole = retrieval_metrics(embeddings, styles, ks=(1, 5, 50))
    monkeypatch.setattr(retrieval, "SIMILARITY_CHUNK_ELEMENTS", 500)  # 2 queries per chunk
    chunked = retrieval_metrics(embeddings, styles, ks=(1, 5, 50))
    notes = whole.pop("notes")
    assert chunked.pop("notes") == notes
    assert chunked == pytest.approx(whole)
    assert 0.2 < whole["map@5"] < 0.99  # neither trivial nor perfect


# --------------------------------------------------------------------------- content leak


def brute_force_content_leak(embeddings: np.ndarray, styles: list[str], contents: list[str]) -> float:
    same_content, same_style = [], []
    for i, j in itertools.combinations(range(len(styles)), 2):
        similarity = float(embeddings[i] @ embeddings[j])
        if contents[i] == contents[j] and styles[i] != styles[j]:
            same_content.append(similarity)
        if styles[i] == styles[j] and contents[i] != contents[j]:
            same_style.append(similarity)
    return float(np.mean(same_content) - np.mean(same_style))


def test_content_leak_identity_matches_brute_force():
    rng = np.random.default_rng(5)
    styles = [f"s{i}" for i in rng.integers(0, 4, 60)]
    contents = [f"c{i}" for i in rng.integers(0, 5, 60)]  # includes repeated (content, style) pairs
    embeddings = unit_rows(rng.standard_normal((60, 12)) + 0.5)
    m = retrieval_metrics(embeddings, styles, contents)
    assert m["content_leak"] == pytest.approx(brute_force_content_leak(embeddings, styles, contents), abs=1e-9)


def test_content_leak_left_out_with_a_note_when_a_pair_set_is_empty():
    styles = ["a", "a", "b", "b"]
    embeddings = one_hot_plus_noise([0, 1, 2, 3], dim=4, noise=0.1)
    unique_contents = retrieval_metrics(embeddings, styles, contents=["w", "x", "y", "z"], ks=(1,))
    assert "content_leak" not in unique_contents
    assert unique_contents["notes"] == ["content_leak left out: no two images show the same content in different styles"]
    one_content = retrieval_metrics(embeddings, styles, contents=["x", "x", "x", "x"], ks=(1,))
    assert "content_leak" not in one_content
    assert one_content["notes"] == ["content_leak left out: no two images have the same style with different contents"]
    assert all(np.isfinite(v) for v in unique_contents.values() if not isinstance(v, list))


# --------------------------------------------------------------------------- bad input


GOOD = unit_rows(np.random.default_rng(0).standard_normal((4, 3)))


@pytest.mark.parametrize(
    ("embeddings", "styles", "contents", "ks", "message"),
    [
        (GOOD, ["a", "a", "b"], None, (1,), "4 rows but styles has 3 labels"),
        (GOOD, ["a", "a", "b", "b"], ["x"], (1,), "4 rows but contents has 1 labels"),
        (GOOD, ["a"] * 4, None, (1,), "at least 2 styles"),
        (GOOD, ["a", "b", "c", "d"], None, (1,), "no style has 2 or more images"),
        (GOOD[0], ["a", "a", "b"], None, (1,), "2-D"),
        (np.where(np.eye(4, 3) > 0, np.nan, GOOD), ["a", "a", "b", "b"], None, (1,), "3 non-finite"),
        (np.vstack([GOOD[:3], [[np.inf, 0, 0]]]), ["a", "a", "b", "b"], None, (1,), "1 non-finite"),
        (np.vstack([GOOD[:3], np.zeros((1, 3))]), ["a", "a", "b", "b"], None, (1,), "all-zero rows"),
        (np.array([["x"] * 3] * 4), ["a", "a", "b", "b"], None, (1,), "numeric array"),
        (GOOD, ["a", "a", "b", "b"], None, (0, 10), "positive integers"),
        (GOOD, ["a", "a", "b", "b"], None, (), "positive integers"),
    ],
)
def test_bad_input_is_one_clear_line(embeddings, styles, contents, ks, message):
    with pytest.raises(StyleBoostError, match=message) as info:
        retrieval_metrics(embeddings, styles, contents, ks=ks)
    assert "\n" not in str(info.value)


def test_accepts_torch_tensors():
    labels = [i % 3 for i in range(12)]
    embeddings = one_hot_plus_noise(labels, dim=4, noise=0.01)
    from_numpy = retrieval_metrics(embeddings, [str(i) for i in labels], ks=(1,))
    from_torch = retrieval_metrics(torch.from_numpy(embeddings).float(), [str(i) for i in labels], ks=(1,))
    assert from_torch["map@1"] == from_numpy["map@1"] == 1.0


# --------------------------------------------------------------------------- table


def test_markdown_table_has_header_and_one_line_per_encoder_and_set():
    rows = {
        "trained": {
            "heldout_contents": {"accuracy": 0.91234, "map@1": 0.8, "map@10": 0.75, "recall@1": 0.8, "content_leak": -0.2},
            "heldout_styles": {"accuracy": 0.5, "map@10": 0.4, "n_queries": 10, "notes": []},
        },
        "gram": {"heldout_contents": {"accuracy": 0.3, "map@1": 0.2, "map@10": 0.1, "recall@1": 0.2}},
    }
    lines = markdown_table(rows).strip().splitlines()
    assert lines[0] == "| encoder | set | accuracy | map@1 | map@10 | recall@1 | content_leak |"
    assert lines[1] == "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    assert lines[2:] == [
        "| trained | heldout_contents | 0.912 | 0.800 | 0.750 | 0.800 | -0.200 |",
        "| trained | heldout_styles | 0.500 | - | 0.400 | - | - |",
        "| gram | heldout_contents | 0.300 | 0.200 | 0.100 | 0.200 | - |",
    ]


def test_markdown_table_of_real_metrics():
    labels = [i % 3 for i in range(30)]
    m = retrieval_metrics(one_hot_plus_noise(labels, dim=4, noise=0.01), [str(i) for i in labels])
    lines = markdown_table({"enc": {"set": m}}).strip().splitlines()
    assert lines[0] == "| encoder | set | accuracy | map@1 | map@10 | map@100 | precision@10 | recall@1 | recall@10 |"
    # 10 images a style, 2 of them queries: 8 same-style images in a database, so at most 8 of the top 10
    assert lines[2] == "| enc | set | 1.000 | 1.000 | 1.000 | 1.000 | 0.800 | 1.000 | 1.000 |"
