"""A disk cache of per-image feature vectors, keyed by what made them and by the image file's hash.

Re-scoring the same images with the same models reads their vectors back instead of decoding and
running the networks again. One safetensors file per feature extractor (its key names the model,
its weights and the preprocessing), holding one tensor per image, named by the SHA-256 of the file.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.images import file_sha256
from styleboost.core.notice import notice


def hash_files(paths: Iterable[Path], threads: int = 8) -> list[str]:
    """SHA-256 of each file's bytes (read in parallel threads: hashing releases the GIL)."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(file_sha256, paths))


def module_fingerprint(module: nn.Module) -> str:
    """A short hash of a module's weights: tells apart models that share a name but not weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def file_identity(path: str | Path) -> str:
    """Path, size and modification time of a weights file: changes when the file does, costs no read."""
    stat = Path(path).stat()
    return f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


class EmbeddingCache:
    """Vectors by (extractor key, file hash). ``root=None`` is a cache that never hits."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root).expanduser() if root else None
        self.hits = 0
        self.misses = 0

    def file_for(self, key: str) -> Path | None:
        if self.root is None:
            return None
        return self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"

    def _read(self, key: str) -> dict[str, torch.Tensor]:
        path = self.file_for(key)
        if path is None or not path.is_file():
            return {}
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:  # a damaged cache file is recomputed, never fatal
            notice(f"ignoring unreadable cache file {path} ({err})")
            return {}

    def lookup(self, key: str, hashes: list[str]) -> dict[str, torch.Tensor]:
        """The cached vectors among ``hashes``; counts hits and misses."""
        stored = self._read(key)
        found = {h: stored[h] for h in hashes if h in stored}
        self.hits += len(found)
        self.misses += len(set(hashes) - set(found))
        return found

    def store(self, key: str, vectors: dict[str, torch.Tensor]) -> None:
        """Add ``vectors`` to the extractor's file (written under a temporary name, then renamed)."""
        path = self.file_for(key)
        if path is None or not vectors:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**self._read(key), **{h: v.detach().float().cpu().contiguous() for h, v in vectors.items()}}
        write_bytes_atomic(path, save(merged, metadata={"key": key}))
