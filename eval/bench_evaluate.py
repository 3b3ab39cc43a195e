"""Benchmark of image scoring: images per second for style encoder + CLIP, end to end from PNG files.

Writes ``--images`` PNGs of ``--size`` px (photo crops and scenes from the synthetic style set's
content generator, so the files compress like real images) and times ``compute_features`` - the
code ``styleboost evaluate`` runs - three ways:

- decode only: DataLoader workers decoding and resizing, no network;
- end to end, cold: hashing, decoding, style encoder + CLIP image tower, no cache;
- end to end, cached: the same call again with the embedding cache warm (a re-run of evaluate).

Defaults follow the device. On a GPU: ViT-L/14 built with random weights (architecture-true speed, no
download), fp16 autocast, batch 64, 1024 images, and the goal printed beside the figure: >= 500 images/s end to
end on an H100-class GPU. On a CPU: the tiny random-weight open_clip model, fp32, 256 images. The style encoder
is the shipped default either way.

    python eval/bench_evaluate.py [--images N] [--size 512] [--clip ARCH] [--device cuda] [--no-fp16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from styleboost.metrics.cache import EmbeddingCache
from styleboost.metrics.clip import load_clip
from styleboost.metrics.extractors import ClipImages, StyleVectors
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.loader import square_batches
from styleboost.style_encoder import create_style_encoder
from styleboost.styles.synthstyle import make_contents
from styleboost.testing import TINY_OPEN_CLIP, register_tiny_open_clip

GOAL_IMAGES_PER_S = 500


def write_images(folder: Path, count: int, size: int) -> list[Path]:
    paths = []
    for i, content in enumerate(make_contents("heldout", count, size=size, seed=7)):
        paths.append(folder / f"{i:05d}.png")
        content.image.save(paths[-1])
    return paths


def timed(label: str, count: int, body, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    body()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:8.2f} s {count / seconds:10.1f} images/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="PNG files to score (default: 1024 on CUDA, 256).")
    parser.add_argument("--size", type=int, default=512, help="Side of the PNG files (SD 1.5 makes 512).")
    parser.add_argument("--clip", default=None, help="open_clip spec; a bare ARCH is random weights (default: "
                        f"ViT-L-14 on CUDA, {TINY_OPEN_CLIP} on a CPU).")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(8, max(0, (os.cpu_count() or 1) - 1)))
    parser.add_argument("--image-size", type=int, default=299)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                        help="fp16 autocast (default: on for CUDA).")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    args.images = args.images or (1024 if cuda else 256)
    args.clip = args.clip or ("ViT-L-14" if cuda else TINY_OPEN_CLIP)
    args.fp16 = cuda if args.fp16 is None else args.fp16
    register_tiny_open_clip()  # the default --clip; metrics.clip knows only open_clip's own and shipped names

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = write_images(Path(tmp), args.images, args.size)
        print(f"wrote {len(paths)} PNGs of {args.size} px in {time.perf_counter() - start:.1f} s "
              f"({sum(p.stat().st_size for p in paths) / len(paths) / 1024:.0f} KiB each)")
        clip = load_clip(args.clip)
        extractors = {"style": StyleVectors(create_style_encoder(args.encoder)), "clip": ClipImages(clip)}
        params = sum(p.numel() for p in clip.model.parameters()) / 1e6
        print(f"device {args.device}, fp16 {args.fp16}, batch {args.batch_size}, workers {args.workers}, "
              f"CLIP {args.clip} ({params:.0f} M parameters, {clip.image_size} px), threads {torch.get_num_threads()}")
        scoring = Scoring(args.image_size, args.batch_size, args.workers, args.device, args.fp16)
        cache = EmbeddingCache(Path(tmp) / "cache")
        for extractor in extractors.values():
            extractor.to(args.device)
        compute_features(paths[: args.batch_size], extractors, scoring)  # warm-up: kernels, worker start-up

        def decode() -> None:
            for _ in square_batches(paths, args.image_size, args.batch_size, args.workers):
                pass

        timed("decode + resize only", len(paths), decode, args.device)
        cold = timed("end to end (style + CLIP), cold", len(paths),
                     lambda: compute_features(paths, extractors, scoring, cache), args.device)
        timed("end to end, cached (a re-run)", len(paths),
              lambda: compute_features(paths, extractors, scoring, cache), args.device)
        if cuda:
            print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB; "
                  f"{torch.cuda.get_device_name()}: {len(paths) / cold:.0f} images/s cold, goal >= {GOAL_IMAGES_PER_S} "
                  f"on an H100-class GPU with ViT-L/14 fp16 at batch 64")


if __name__ == "__main__":
    main()
