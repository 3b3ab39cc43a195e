"""P x K batches: every batch holds K images of each of P styles, so every image has positives.

(The seed project's first encoder failed for lack of positive pairs in random batches.)
The batch of step ``s`` is a pure function of (seed, s), so resuming at step s is exact without
replaying the sampler.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np

from styleboost.core.errors import StyleBoostError


class PKBatchSampler:
    """Yields lists of dataset indices: P distinct styles x K images each, for steps start..start+len-1."""

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0, steps: int = 1, start: int = 0) -> None:
        by_style: dict[int, list[int]] = defaultdict(list)
        for index, label in enumerate(labels):
            by_style[int(label)].append(index)
        if len(by_style) < 2:
            raise StyleBoostError("P x K batches need at least 2 styles in the training data")
        if p < 2 or k < 2:
            raise StyleBoostError(f"P x K batches need P >= 2 and K >= 2 (got P={p}, K={k})")
        self.styles = sorted(by_style)
        self.members = {s: np.asarray(by_style[s]) for s in self.styles}
        self.p = min(p, len(self.styles))
        self.k, self.seed, self.steps, self.start = k, seed, steps, start

    def batch(self, step: int) -> list[int]:
        """The indices of step ``step``: styles drawn without replacement, images without replacement when
        a style has at least K of them (with replacement otherwise)."""
        rng = np.random.default_rng([self.seed, step])
        chosen = rng.choice(self.styles, size=self.p, replace=False)
        indices: list[int] = []
        for style in chosen:
            members = self.members[int(style)]
            indices += rng.choice(members, size=self.k, replace=len(members) < self.k).tolist()
        return indices

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.start + self.steps):
            yield self.batch(step)

    def seeded(self) -> SeededBatches:
        """The same batches as ``(index, augmentation seed)`` pairs (see ``SeededBatches``)."""
        return SeededBatches(self)

    def __len__(self) -> int:
        return self.steps


class SeededBatches:
    """Batches of ``(index, seed)``: each image's augmentation draws from its own seed, a function of
    (sampler seed, step, position), not from the global RNG. Resumed runs, runs with DataLoader
    workers and uninterrupted runs therefore augment identically."""

    def __init__(self, sampler: PKBatchSampler) -> None:
        self.sampler = sampler

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step, batch in enumerate(self.sampler, start=self.sampler.start):
            seeds = np.random.default_rng([self.sampler.seed, step, 1]).integers(0, 2**62, size=len(batch))
            yield [(index, int(seed)) for index, seed in zip(batch, seeds)]

    def __len__(self) -> int:
        return len(self.sampler)
