"""Score how well a style encoder's embeddings group images by style.

Given one embedding per held-out image, its style label and optionally its content label (which
source image a stylised image shows), ``retrieval_metrics`` splits the images into queries and a
database and reports nearest-centroid accuracy, mAP@k, Recall@k and a content-leak score.
``styleboost style-eval`` calls it once per (encoder, evaluation set) to compare a trained style
encoder with a Gram-matrix baseline, and ``markdown_table`` formats that comparison.

Everything runs on CPU torch. Query-database similarities are computed a chunk of queries at a
time, and the content-leak means come from per-group vector sums, so N = 20,000 images of D = 512
never build an N x N matrix.
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from styleboost.core import markdown
from styleboost.core.errors import StyleBoostError

DEFAULT_KS = (1, 10, 100)
TABLE_COLUMNS = ("accuracy", "classifier_accuracy", "map@1", "map@10", "map@100", "precision@10", "recall@1", "recall@10",
                 "content_leak")
# Query x database similarities held at once: 2**24 float32 values = 64 MiB.
SIMILARITY_CHUNK_ELEMENTS = 1 << 24

Metrics = dict[str, float | int | list[str]]


# --------------------------------------------------------------------------- split


def query_database_split(
    styles: Sequence[Hashable], query_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split image indices into queries and a database, style by style.

    For every style with ``n`` images, ``max(1, round(query_fraction * n))`` of them (capped at
    ``n - 1``, so at least one same-style image stays in the database) are drawn as queries with a
    generator seeded by ``seed``; the rest form the database. A style with a single image goes to
    the database only: as a query it would have no same-style image to retrieve, but it still
    serves as a distractor for the other queries.

    The result depends only on ``styles``, ``query_fraction`` and ``seed``. Returns two sorted int64
    index arrays ``(query_indices, database_indices)`` that together cover ``range(len(styles))``.
    """
    if not 0.0 < query_fraction < 1.0:
        raise StyleBoostError(f"query_fraction must be strictly between 0 and 1, got {query_fraction}")
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(members, size=_query_count(len(members), query_fraction), replace=False)
        for members in _indices_by_label(styles).values()
    ]
    queries = np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *chosen]).astype(np.int64))
    database = np.setdiff1d(np.arange(len(styles), dtype=np.int64), queries)
    return queries, database


def _query_count(n_images: int, query_fraction: float) -> int:
    """How many of a style's ``n_images`` become queries: none for a single image, else 1..n-1."""
    if n_images < 2:
        return 0
    return min(n_images - 1, max(1, round(query_fraction * n_images)))


def _indices_by_label(labels: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    """Image indices of each label, labels in sorted order (so seeded draws do not depend on input order)."""
    groups: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    return {label: np.asarray(groups[label], dtype=np.int64) for label in sorted(groups)}


# --------------------------------------------------------------------------- metrics


def retrieval_metrics(
    embeddings: np.ndarray | torch.Tensor,
    styles: Sequence[str],
    contents: Sequence[str] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    query_fraction: float = 0.2,
    seed: int = 0,
) -> Metrics:
    """Style-retrieval scores of ``embeddings`` (N, D) labelled with ``styles`` (and ``contents``).

    Embeddings are L2-normalised here (a no-op for normalised input), so similarity is cosine.
    The split is ``query_database_split(styles, query_fraction, seed)``; every query has at least
    one same-style image in the database. Returns a flat dict:

    - ``accuracy``: share of queries whose most similar database style centroid (mean of that
      style's database embeddings, L2-normalised) is their own style.
    - ``map@k`` for each k: mean over queries of the standard normalised AP@k,
      ``AP@k = (1 / min(k, R)) * sum_{i<=k} precision(i) * rel(i)``, where the database is ranked
      by similarity to the query, ``rel(i)`` says whether rank i has the query's style,
      ``precision(i)`` is the share of same-style images in ranks 1..i, and ``R`` is the number of
      database images of the query's style. 1 means the top ``min(k, R)`` are all same-style.
    - ``recall@k`` for each k: share of queries with at least one same-style image in the top k
      (the metric-learning Recall@K, not the information-retrieval recall).
    - ``content_leak`` (only when ``contents`` is given): mean cosine similarity over all pairs
      i < j of the whole set with the same content and different styles, minus the mean over pairs
      with the same style and different contents. Strongly negative: the encoder ignores content
      (style outweighs the scene); near 0 or positive: images of one scene look alike to it
      whatever the style.
    - ``n_queries``, ``n_database``, ``n_styles`` (ints).
    - ``notes``: a list of human-readable strings (possibly empty), the only non-number value.
      When one of the two content-leak pair sets is empty, ``content_leak`` is left out (never
      NaN) and a note says why; a k larger than the database is clipped to the database size (so
      ``map@k``/``recall@k`` use the whole ranking) and a note says so. The keys keep the
      requested k.

    Raises ``StyleBoostError`` when the embeddings are not 2-D, their row count differs from the
    number of labels, they hold non-finite values or all-zero rows, there are fewer than 2 styles,
    no style has 2 images, or ``ks`` is not a sequence of positive integers.
    """
    vectors = _normalised_embeddings(embeddings, styles, contents)
    ks = _checked_ks(ks)
    style_ids, n_styles = _label_ids(styles)
    if n_styles < 2:
        raise StyleBoostError(f"need at least 2 styles to measure style retrieval, got {n_styles}")
    query_idx, database_idx = (torch.from_numpy(part) for part in query_database_split(styles, query_fraction, seed))
    if len(query_idx) == 0:
        raise StyleBoostError("no style has 2 or more images, so no query has a same-style image to retrieve")

    similarity_vectors = vectors.float()
    metrics: Metrics = {
        "accuracy": _nearest_centroid_accuracy(similarity_vectors, style_ids, n_styles, query_idx, database_idx)
    }
    metrics.update(_ranking_metrics(similarity_vectors, style_ids, query_idx, database_idx, ks))
    notes = _clipped_k_notes(ks, len(database_idx))
    if contents is not None:
        leak, note = _content_leak(vectors, style_ids, _label_ids(contents)[0], _label_ids(list(zip(contents, styles)))[0])
        if leak is None:
            notes.append(note)
        else:
            metrics["content_leak"] = leak
    metrics.update(n_queries=len(query_idx), n_database=len(database_idx), n_styles=n_styles, notes=notes)
    return metrics


def _normalised_embeddings(
    embeddings: np.ndarray | torch.Tensor, styles: Sequence[str], contents: Sequence[str] | None
) -> torch.Tensor:
    """The embeddings as an L2-normalised float64 CPU tensor, after checking shape, labels and values."""
    tensor = _as_number_tensor(embeddings)
    if tensor.ndim != 2:
        raise StyleBoostError(f"embeddings must be a 2-D (N, D) array, got shape {tuple(tensor.shape)}")
    for name, labels in (("styles", styles), ("contents", contents)):
        if labels is not None and len(labels) != tensor.shape[0]:
            raise StyleBoostError(f"embeddings have {tensor.shape[0]} rows but {name} has {len(labels)} labels")
    tensor = tensor.to(torch.float64)
    n_bad = int((~torch.isfinite(tensor)).sum())
    if n_bad:
        raise StyleBoostError(f"embeddings contain {n_bad} non-finite values (NaN or inf)")
    n_zero = int((tensor.norm(dim=1) == 0).sum())
    if n_zero:
        raise StyleBoostError(f"embeddings contain {n_zero} all-zero rows, which have no direction to compare")
    return F.normalize(tensor, dim=1)


def _as_number_tensor(embeddings: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A CPU tensor view/copy of array-like ``embeddings``; non-numeric input is a StyleBoostError."""
    if isinstance(embeddings, torch.Tensor):
        return embeddings.detach().cpu()
    array = np.asarray(embeddings)
    if array.dtype.kind not in "fiu":
        raise StyleBoostError(f"embeddings must be a numeric array, got dtype {array.dtype}")
    return torch.from_numpy(array)


def _checked_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """``ks`` as a tuple of positive ints, or a StyleBoostError."""
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise StyleBoostError(f"ks must be a non-empty sequence of positive integers, got {ks}")
    return tuple(int(k) for k in ks)


def _label_ids(labels: Sequence[Hashable]) -> tuple[torch.Tensor, int]:
    """Each label replaced by a dense integer id (ids follow sorted label order), and the number of labels."""
    ids = {label: i for i, label in enumerate(sorted(set(labels)))}
    return torch.tensor([ids[label] for label in labels], dtype=torch.int64), len(ids)


def _nearest_centroid_accuracy(
    vectors: torch.Tensor, style_ids: torch.Tensor, n_styles: int, query_idx: torch.Tensor, database_idx: torch.Tensor
) -> float:
    """Share of queries whose closest L2-normalised database style centroid is their own style."""
    sums = torch.zeros(n_styles, vectors.shape[1], dtype=vectors.dtype)
    centroids = F.normalize(sums.index_add_(0, style_ids[database_idx], vectors[database_idx]), dim=1)
    predicted = (vectors[query_idx] @ centroids.T).argmax(dim=1)
    return (predicted == style_ids[query_idx]).double().mean().item()


def _ranking_metrics(
    vectors: torch.Tensor,
    style_ids: torch.Tensor,
    query_idx: torch.Tensor,
    database_idx: torch.Tensor,
    ks: tuple[int, ...],
) -> dict[str, float]:
    """``map@k``, ``recall@k`` and ``precision@k`` (the share of same-style images in the top k, which cannot
    reach 1 when a style has fewer than k database images) for every k, ranking the database a chunk of queries
    at a time."""
    database, database_styles = vectors[database_idx], style_ids[database_idx]
    same_style_counts = torch.bincount(database_styles, minlength=int(style_ids.max()) + 1)
    depth = min(max(ks), len(database_idx))
    ap_sums = dict.fromkeys(ks, 0.0)
    hit_counts = dict.fromkeys(ks, 0)
    precision_sums = dict.fromkeys(ks, 0.0)
    for chunk in query_idx.split(max(1, SIMILARITY_CHUNK_ELEMENTS // len(database_idx))):
        top = (vectors[chunk] @ database.T).topk(depth, dim=1).indices
        relevance = (database_styles[top] == style_ids[chunk, None]).double()
        n_relevant = same_style_counts[style_ids[chunk]]
        for k in ks:
            ap_sums[k] += average_precision_at_k(relevance, n_relevant, k).sum().item()
            hit_counts[k] += int(relevance[:, :k].any(dim=1).sum())
            precision_sums[k] += (relevance[:, :k].sum(dim=1) / k).sum().item()
    n_queries = len(query_idx)
    maps = {f"map@{k}": ap_sums[k] / n_queries for k in ks}
    recalls = {f"recall@{k}": hit_counts[k] / n_queries for k in ks}
    precisions = {f"precision@{k}": precision_sums[k] / n_queries for k in ks}
    return {**maps, **recalls, **precisions}


def average_precision_at_k(relevance: torch.Tensor, n_relevant: torch.Tensor, k: int) -> torch.Tensor:
    """Normalised AP@k per row: ``(1 / min(k, R)) * sum_{i<=k} precision(i) * rel(i)``.

    ``relevance`` (Q, depth) holds 1.0 where rank i (1-based, i <= depth) is relevant, else 0.0;
    ranks past ``depth`` count as absent. ``n_relevant`` (Q,) is R, the number of relevant items
    in the whole ranking (at least 1).
    """
    rel = relevance[:, :k]
    ranks = torch.arange(1, rel.shape[1] + 1, dtype=rel.dtype)
    precision = rel.cumsum(dim=1) / ranks
    return (precision * rel).sum(dim=1) / n_relevant.clamp(max=k).to(rel.dtype)


def _clipped_k_notes(ks: tuple[int, ...], n_database: int) -> list[str]:
    """One note per k larger than the database, which is clipped to the whole ranking."""
    return [
        f"k={k} exceeds the {n_database} database images; map@{k} and recall@{k} use the whole ranking"
        for k in ks
        if k > n_database
    ]


def _content_leak(
    vectors: torch.Tensor, style_ids: torch.Tensor, content_ids: torch.Tensor, content_style_ids: torch.Tensor
) -> tuple[float | None, str]:
    """Mean same-content/different-style similarity minus mean same-style/different-content similarity.

    Returns ``(leak, "")``, or ``(None, note)`` when one of the two pair sets is empty. Pairs with
    the same content *and* style are removed from both sets by subtracting the (content, style)
    group totals.
    """
    content_sum, content_pairs = _within_group_pair_similarity(vectors, content_ids)
    style_sum, style_pairs = _within_group_pair_similarity(vectors, style_ids)
    both_sum, both_pairs = _within_group_pair_similarity(vectors, content_style_ids)
    if content_pairs == both_pairs:
        return None, "content_leak left out: no two images show the same content in different styles"
    if style_pairs == both_pairs:
        return None, "content_leak left out: no two images have the same style with different contents"
    same_content_mean = (content_sum - both_sum) / (content_pairs - both_pairs)
    same_style_mean = (style_sum - both_sum) / (style_pairs - both_pairs)
    return same_content_mean - same_style_mean, ""


def _within_group_pair_similarity(vectors: torch.Tensor, group_ids: torch.Tensor) -> tuple[float, int]:
    """Sum of dot products over unordered pairs i < j in the same group, and the number of such pairs.

    Uses ``sum_{i<j in g} v_i . v_j = (|sum_{i in g} v_i|^2 - sum_{i in g} |v_i|^2) / 2`` per group,
    so memory is (groups x D), not N x N.
    """
    n_groups = int(group_ids.max()) + 1
    group_sums = torch.zeros(n_groups, vectors.shape[1], dtype=vectors.dtype).index_add_(0, group_ids, vectors)
    pair_sum = (group_sums.pow(2).sum() - vectors.pow(2).sum()) / 2
    sizes = torch.bincount(group_ids, minlength=n_groups)
    return pair_sum.item(), int((sizes * (sizes - 1) // 2).sum())


# --------------------------------------------------------------------------- table


def markdown_table(rows: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A GitHub markdown table of ``rows[encoder][evaluation_set][metric] = value``.

    One line per (encoder, evaluation set), in the mapping's order. Metric columns are those of
    ``TABLE_COLUMNS`` (accuracy, map@1, map@10, map@100, recall@1, recall@10, content_leak) that at
    least one row has; values are printed to 3 decimals, a metric a row lacks as ``-``. Other keys
    (counts, notes) are ignored. Ends with a newline.
    """
    columns = [
        column
        for column in TABLE_COLUMNS
        if any(column in metrics for sets in rows.values() for metrics in sets.values())
    ]
    lines = [
        [encoder, set_name, *(_table_value(metrics.get(c)) for c in columns)]
        for encoder, sets in rows.items()
        for set_name, metrics in sets.items()
    ]
    return markdown.markdown_table(["encoder", "set", *columns], lines, left_columns=2) + "\n"


def _table_value(value: float | None) -> str:
    """A metric to 3 decimals, or ``-`` when missing."""
    return "-" if value is None else f"{value:.3f}"
