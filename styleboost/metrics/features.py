"""Run feature extractors over image files: cached vectors are read back, the rest decoded once and batched.

``compute_features(paths, extractors, ...)`` hashes every file, asks the cache for each extractor's
vectors, decodes only the images some extractor still lacks (in DataLoader workers), runs those
extractors batch by batch (fp16 autocast on CUDA where the extractor allows it) and stores the new
vectors. Returns one ``(N, D)`` float32 CPU tensor per extractor, in the order of ``paths``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from styleboost.metrics.cache import EmbeddingCache, hash_files
from styleboost.metrics.extractors import FeatureExtractor
from styleboost.metrics.loader import square_batches

DECODE_VERSION = "square-bilinear-v1"  # bump when decode_square changes what an image becomes


@dataclass(frozen=True)
class Scoring:
    """How images are decoded and batched, and where the networks run."""

    image_size: int = 299
    batch_size: int = 64
    workers: int = 0
    device: str = "cpu"
    fp16: bool = False  # autocast on CUDA for the extractors that allow it
    progress: bool = False


def cache_key(extractor: FeatureExtractor, scoring: Scoring) -> str:
    return f"{extractor.key}|{DECODE_VERSION}:{scoring.image_size}"


def compute_features(
    paths: Sequence[Path],
    extractors: dict[str, FeatureExtractor],
    scoring: Scoring,
    cache: EmbeddingCache | None = None,
    desc: str = "scoring",
) -> dict[str, torch.Tensor]:
    """One ``(len(paths), D)`` tensor per extractor name; cached vectors are not recomputed.

    Names whose extractors share a key (e.g. CLIP embeddings used for both CLIP-I and FID) are run once."""
    cache = cache or EmbeddingCache(None)
    keys = {name: cache_key(ex, scoring) for name, ex in extractors.items()}
    first_name = {key: name for name, key in reversed(keys.items())}
    unique = {name: extractors[name] for name in first_name.values()}
    hashes = hash_files(paths)
    found = {name: cache.lookup(keys[name], hashes) if ex.cacheable else {} for name, ex in unique.items()}
    todo = sorted({i for name in unique for i, h in enumerate(hashes) if h not in found[name]})
    fresh = _run_extractors([paths[i] for i in todo], unique, found, [hashes[i] for i in todo], scoring, desc)
    for name, extractor in unique.items():
        if extractor.cacheable:
            cache.store(keys[name], fresh[name])
    return {name: _in_order(hashes, {**found[first_name[key]], **fresh[first_name[key]]}) for name, key in keys.items()}


def _run_extractors(
    paths: list[Path],
    extractors: dict[str, FeatureExtractor],
    found: dict[str, dict[str, torch.Tensor]],
    hashes: list[str],
    scoring: Scoring,
    desc: str,
) -> dict[str, dict[str, torch.Tensor]]:
    """Vectors by file hash for the images and extractors the cache did not have."""
    fresh: dict[str, dict[str, torch.Tensor]] = {name: {} for name in extractors}
    if not paths:
        return fresh
    for extractor in extractors.values():
        extractor.to(scoring.device)
    device_type = torch.device(scoring.device).type
    batches = square_batches(paths, scoring.image_size, scoring.batch_size, scoring.workers)
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not scoring.progress, leave=False)
    for indices, pixels in batches:
        pixels = pixels.to(scoring.device, non_blocking=True)
        batch_hashes = [hashes[i] for i in indices]
        for name, extractor in extractors.items():
            rows = [j for j, h in enumerate(batch_hashes) if h not in found[name]]
            if not rows:
                continue
            use_fp16 = scoring.fp16 and extractor.autocast and device_type == "cuda"
            with torch.no_grad(), torch.autocast(device_type, dtype=torch.float16, enabled=use_fp16):
                vectors = extractor(pixels[rows]).float().cpu()
            fresh[name].update({batch_hashes[j]: v for j, v in zip(rows, vectors)})
        bar.update(len(indices))
    bar.close()
    return fresh


def _in_order(hashes: list[str], vectors: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack([vectors[h] for h in hashes]) if hashes else torch.empty(0)
