"""The settings of one evaluation: ``EvaluateConfig`` (one ``option`` field per ``styleboost evaluate`` flag),
its checks, and ``parse_runs`` (the ``NAME=DIR`` run specs)."""

from __future__ import annotations

from dataclasses import dataclass

from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import comma_list, option
from styleboost.metrics.clip import DEFAULT_CLIP
from styleboost.metrics.definitions import METRIC_GROUPS
from styleboost.style_encoder import DEFAULT_ENCODER

FID_FEATURES = ("inception", "clip")


@dataclass
class EvaluateConfig:
    """Every setting of one evaluation (the flags of ``styleboost evaluate`` map onto these fields)."""

    runs: list[str] = option(
        help="A run to score: its name in the report and its `styleboost generate` folder. Repeat to compare runs.",
        flags=("--run",), action="append", metavar="NAME=DIR")
    styleref: str = option(help="Folder of the StyleRef images the style was trained on.")
    out: str = option(help="Report folder (report.json, report.md, report.html).")
    encoder: str = option(DEFAULT_ENCODER, "Style encoder: a trained encoder folder or a shipped name (default: default).")
    clip: str = option(DEFAULT_CLIP, "open_clip model: ARCH:PRETRAINED (e.g. ViT-L-14:openai, or ARCH:/path/ckpt), "
                       "hf-hub:org/repo, a local open_clip folder, or toyworld (the toy world's CLIP).")
    # one comma-separated value (nargs=None), as the flag has always been typed
    metrics: list[str] = option(list(METRIC_GROUPS), f"Comma-separated metric groups ({','.join(METRIC_GROUPS)}).",
                                type=comma_list, nargs=None)
    fid_features: str = option("inception", "Features for FID/KID: torchmetrics' Inception-v3 (standard) or the "
                               "CLIP image embedding.", choices=FID_FEATURES)
    inception_weights: str | None = option(
        None, "Local file of the FID Inception weights (pt_inception-2015-12-05), for offline use.")
    gram_weights: str = option("torchvision", "VGG19 weights for the Gram distance: torchvision (ImageNet), "
                               "a .safetensors file, or random.")
    image_size: int = option(299, "Images are resized to squares of this size first.")
    batch_size: int = option(64, "Images per batch.")
    workers: int | None = option(None, "DataLoader worker processes decoding images (default: up to 8, leaving a "
                                 "core for the main process).")
    kid_subsets: int = option(100, "Random subsets KID is averaged over.")
    kid_subset_size: int = option(1000, "Largest KID subset (capped by the set sizes).")
    seed: int = option(0, "Seed of the KID subsets.")
    device: str | None = option(None, "cuda, cuda:1, cpu... (default: cuda if available).")
    fp16: bool | None = option(None, "fp16 autocast (default: on for CUDA; FID features stay fp32).")
    cache_dir: str | None = option(None, "Embedding cache folder (default: ~/.cache/styleboost/embeddings; "
                                   "'none' to turn it off).")
    overwrite: bool = option(False, "Replace a report already in --out.")
    progress: bool = option(True, "Progress bars (--no-progress: none).")

    def validate(self) -> None:
        """Reject settings that cannot work, with one line naming the flag."""
        if not self.runs:
            raise StyleBoostError("--run NAME=DIR is required (once per run to compare)")
        unknown = sorted(set(self.metrics) - set(METRIC_GROUPS))
        if unknown:
            raise StyleBoostError(f"--metrics {','.join(unknown)}: unknown; choose from {', '.join(METRIC_GROUPS)}")
        if self.fid_features not in FID_FEATURES:
            raise StyleBoostError(f"--fid-features {self.fid_features!r}: choose from {', '.join(FID_FEATURES)}")
        for name in ("image_size", "batch_size", "kid_subsets", "kid_subset_size"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        parse_runs(self.runs)


def parse_runs(specs: list[str], allow_empty_dir: bool = False) -> list[tuple[str, str]]:
    """``NAME=DIR`` pairs, names unique (``NAME=`` too with ``allow_empty_dir``: the base model in a protocol)."""
    pairs = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name.strip() or not (folder.strip() or allow_empty_dir):
            raise StyleBoostError(f"--run {spec!r}: expected NAME=DIR, e.g. --run lora=gen/lora")
        pairs.append((name.strip(), folder.strip()))
    names = [n for n, _ in pairs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StyleBoostError(f"--run name {repeated[0]!r} is given twice; names must differ")
    return pairs
