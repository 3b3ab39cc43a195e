"""Metrics of generated images against a StyleRef set: the library behind ``styleboost evaluate``.

- ``image_sets``: which images a run has and what prompt made each (``metadata.jsonl``).
- ``loader``, ``features``, ``cache``: decode in workers, run feature extractors in batches, cache by file hash.
- ``extractors``, ``clip``: style vectors, CLIP image/text embeddings, Gram matrices, FID/KID features.
- ``scores``, ``fid_kid``: per-image scores and set distances from those features.
- ``definitions``: what each metric is, as data the report renders.
"""
