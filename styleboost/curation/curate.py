"""``styleboost curate-aux``: choose the Aux set from a pool of images instead of picking it by hand.

One job: score every pool image and choose ``--n`` of them. The scores:

- **person**: CLIP zero-shot, the probability (softmax over the prompts) that the image matches one of the
  ``--person-prompts`` rather than one of the ``--other-prompts``;
- **style affinity**: the style encoder's mean cosine similarity of the image to the StyleRef images (the
  evaluation's style score), since Aux images in styles near the target help it most;
- **quality**: sharpness (log variance of the Laplacian of the grey image at 128 px) less a penalty for the
  share of clipped (near black or white) pixels; images under ``--min-size`` px are refused outright.

Near-duplicates (CLIP image cosine >= ``--duplicate-threshold``) keep only their best-scored member. Of the
images that look like a person (``--min-person``), ``--n`` are picked greedily by maximal marginal relevance:
each pick maximises (z-scored style affinity + ``--quality-weight`` x z-scored quality) minus
``--diversity-weight`` x its highest CLIP similarity to the images already picked, so the set is both on-style
and varied. The picks are copied to ``--out`` with captions (the pool image's own ``.txt``, else ``--caption``),
beside ``curation.json`` (every score and reason) and ``curation.html`` (the page of the choice).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from styleboost.core.atomic import publish
from styleboost.core.errors import StyleBoostError
from styleboost.core.images import list_images, open_rgb
from styleboost.core.notice import notice
from styleboost.core.settings import comma_list, option
from styleboost.curation.page import curation_page
from styleboost.evaluation.config import EvaluateConfig
from styleboost.evaluation.evaluate import scoring_of
from styleboost.evaluation.models import EvalModels, build_models
from styleboost.metrics.clip import DEFAULT_CLIP
from styleboost.metrics.extractors import ClipImages
from styleboost.metrics.features import Scoring, compute_features
from styleboost.metrics.scores import similarity_to_set
from styleboost.style_encoder import DEFAULT_ENCODER

RECORD_FILE = "curation.json"
PAGE_FILE = "curation.html"
QUALITY_SIZE = 128
CLIPPED = 0.02  # a channel value within 2% of 0 or 1 counts as clipped


@dataclass
class CurateConfig:
    """Every setting of ``styleboost curate-aux``."""

    pool: str = option(help="Folder of candidate images (a .txt beside an image is its caption).")
    styleref: str = option(help="Folder of the StyleRef images of the target style.")
    out: str = option(help="Folder for the chosen Aux set, curation.json and curation.html.")
    n: int = option(20, "Images to choose.")
    encoder: str = option(DEFAULT_ENCODER, "Style encoder of the style affinity (as evaluate's --encoder).")
    clip: str = option(DEFAULT_CLIP, "open_clip model of the person score and near-duplicates (as evaluate's --clip).")
    person_prompts: list[str] = option(["a person", "a portrait of a person", "a group of people"],
                                       "Comma-separated prompts that mean 'a person'.", type=comma_list, nargs=None)
    other_prompts: list[str] = option(["a house", "a tree", "a landscape", "an animal", "a car", "a building",
                                       "a still life"], "Comma-separated prompts of everything else.",
                                      type=comma_list, nargs=None)
    min_person: float = option(0.5, "Smallest person probability an image may have to be chosen.")
    min_size: int = option(256, "Smallest image side in pixels an image may have to be chosen.")
    duplicate_threshold: float = option(0.95, "CLIP image cosine at or above which two images are near-duplicates.")
    quality_weight: float = option(0.25, "Weight of the quality score against the style affinity (sharpness also "
                                  "holds back styles that are soft by nature: keep it low).")
    diversity_weight: float = option(1.0, "Weight of the similarity to images already chosen (0: no diversity).")
    caption: str = option("a person", "Caption of a chosen image that has no .txt of its own.")
    image_size: int = option(224, "Images are resized to squares of this size before the networks.")
    device: str | None = option(None, "cuda, cpu... (default: cuda if available).")
    overwrite: bool = option(False, "Replace an Aux set already in --out.")
    progress: bool = option(True, "Progress bars (--no-progress: none).")

    def validate(self) -> None:
        if self.n < 1:
            raise StyleBoostError(f"--n {self.n}: choose at least 1 image")
        if not self.person_prompts or not self.other_prompts:
            raise StyleBoostError("--person-prompts and --other-prompts each need at least one prompt")
        if not 0 <= self.min_person <= 1 or not 0 < self.duplicate_threshold <= 1:
            raise StyleBoostError("--min-person must be in [0, 1] and --duplicate-threshold in (0, 1]")
        out = Path(self.out)
        if (out / RECORD_FILE).exists() and not self.overwrite:
            raise StyleBoostError(f"--out {out} already holds a curated Aux set; pass --overwrite to replace it")


def models_of(cfg: CurateConfig) -> tuple[EvalModels, Scoring]:
    """The style encoder and CLIP, loaded and placed as ``styleboost evaluate`` loads them."""
    config = EvaluateConfig(runs=[], styleref=cfg.styleref, out=cfg.out, encoder=cfg.encoder, clip=cfg.clip,
                            metrics=["style", "clip_t"], image_size=cfg.image_size, device=cfg.device, workers=0,
                            progress=cfg.progress)
    return build_models(config), scoring_of(config)


def person_probability(clip, image_vectors: torch.Tensor, person: list[str], other: list[str]) -> torch.Tensor:
    """Zero-shot P(person): softmax over all prompts at CLIP's logit scale, summed over the person prompts."""
    texts = clip.encode_texts(person + other)
    scale = float(clip.model.logit_scale.detach().exp()) if hasattr(clip.model, "logit_scale") else 100.0
    probabilities = (scale * torch.nn.functional.normalize(image_vectors.float(), dim=1) @ texts.T).softmax(dim=1)
    return probabilities[:, :len(person)].sum(dim=1)


def quality_score(path: Path) -> tuple[float, int]:
    """(sharpness less the clipped share, the shorter side in px) of one image."""
    image = open_rgb(path)
    side = min(image.size)
    small = np.asarray(image.resize((QUALITY_SIZE, QUALITY_SIZE), Image.BILINEAR), dtype=np.float32) / 255
    grey = small.mean(axis=2)
    sharpness = math.log(float(ndimage.laplace(grey).var()) + 1e-6)
    clipped = float(((small < CLIPPED) | (small > 1 - CLIPPED)).mean())
    return sharpness - 10 * clipped, side


def zscore(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def mark_duplicates(clip_vectors: torch.Tensor, merit: np.ndarray, threshold: float) -> list[int | None]:
    """For each image, the index of a better-scored near-duplicate that stays (None: it stays itself)."""
    vectors = torch.nn.functional.normalize(clip_vectors.float(), dim=1)
    similarity = (vectors @ vectors.T).numpy()
    kept: list[int] = []
    duplicate_of: list[int | None] = [None] * len(merit)
    for index in np.argsort(-merit, kind="stable"):
        twin = next((k for k in kept if similarity[index, k] >= threshold), None)
        if twin is None:
            kept.append(int(index))
        else:
            duplicate_of[index] = twin
    return duplicate_of


def pick_diverse(candidates: list[int], merit: np.ndarray, clip_vectors: torch.Tensor, n: int,
                 diversity_weight: float) -> list[int]:
    """Greedy maximal marginal relevance: each pick maximises merit - weight x max similarity to the picks."""
    vectors = torch.nn.functional.normalize(clip_vectors.float(), dim=1).numpy()
    picked: list[int] = []
    while candidates and len(picked) < n:
        def gain(i: int) -> float:
            closest = max((float(vectors[i] @ vectors[j]) for j in picked), default=0.0)
            return merit[i] - diversity_weight * closest
        best = max(candidates, key=gain)
        picked.append(best)
        candidates = [c for c in candidates if c != best]
    return picked


def score_pool(cfg: CurateConfig, pool: list[Path], styleref: list[Path]) -> list[dict[str, Any]]:
    """Every pool image's scores and why it is or is not a candidate."""
    models, scoring = models_of(cfg)
    features = compute_features(pool, {"style": models.style, "clip": ClipImages(models.clip)}, scoring, desc="pool")
    reference = compute_features(styleref, {"style": models.style}, scoring, desc="StyleRef")["style"]
    affinity = similarity_to_set(features["style"], reference)[0].numpy()
    person = person_probability(models.clip, features["clip"], cfg.person_prompts, cfg.other_prompts).numpy()
    quality, sides = zip(*(quality_score(p) for p in pool))
    merit = zscore(affinity) + cfg.quality_weight * zscore(np.array(quality))
    duplicate_of = mark_duplicates(features["clip"], merit, cfg.duplicate_threshold)
    rows = []
    for i, path in enumerate(pool):
        reason = ("smaller than --min-size" if sides[i] < cfg.min_size else
                  f"near-duplicate of {pool[duplicate_of[i]].name}" if duplicate_of[i] is not None else
                  "not a person (below --min-person)" if person[i] < cfg.min_person else None)
        rows.append({"file": str(path), "person": round(float(person[i]), 4), "style": round(float(affinity[i]), 4),
                     "quality": round(float(quality[i]), 4), "merit": round(float(merit[i]), 4), "side": sides[i],
                     "excluded": reason, "chosen": False})
    candidates = [i for i, r in enumerate(rows) if r["excluded"] is None]
    for rank, index in enumerate(pick_diverse(candidates, merit, features["clip"], cfg.n, cfg.diversity_weight)):
        rows[index]["chosen"], rows[index]["rank"] = True, rank
    return rows


def caption_of(path: Path, default: str) -> str:
    caption = path.with_suffix(".txt")
    return caption.read_text(encoding="utf-8").strip() if caption.is_file() else default


def write_choice(cfg: CurateConfig, rows: list[dict[str, Any]]) -> Path:
    """The chosen images (``NNN-<name>``) with captions, curation.json and curation.html, published whole."""
    chosen = sorted((r for r in rows if r["chosen"]), key=lambda r: r["rank"])

    def fill(folder: Path) -> None:
        folder.mkdir(parents=True)
        for row in chosen:
            source = Path(row["file"])
            name = f"{row['rank']:03d}-{source.stem}"
            shutil.copyfile(source, folder / f"{name}{source.suffix.lower()}")
            (folder / f"{name}.txt").write_text(caption_of(source, cfg.caption) + "\n", encoding="utf-8")
            row["written"] = f"{name}{source.suffix.lower()}"
        settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("overwrite", "progress")}
        (folder / RECORD_FILE).write_text(json.dumps({"settings": settings, "images": rows}, indent=1) + "\n")
        (folder / PAGE_FILE).write_text(curation_page(cfg, rows), encoding="utf-8")

    return publish(Path(cfg.out), fill)


def curate_aux(cfg: CurateConfig) -> list[dict[str, Any]]:
    """Score the pool, choose ``cfg.n`` images and write them; returns every image's row."""
    cfg.validate()
    pool = list_images(cfg.pool, flag="--pool")
    styleref = list_images(cfg.styleref, flag="--styleref")
    rows = score_pool(cfg, pool, styleref)
    picked = sum(r["chosen"] for r in rows)
    if picked < cfg.n:
        notice(f"--n {cfg.n}: only {picked} of the {len(pool)} pool images pass the person, size and duplicate checks")
    write_choice(cfg, rows)
    return rows


def run(cfg: CurateConfig) -> int:
    rows = curate_aux(cfg)
    chosen = [r for r in rows if r["chosen"]]
    print(f"{len(chosen)} of {len(rows)} pool images chosen into {cfg.out} ({RECORD_FILE}, {PAGE_FILE}); "
          f"mean person {np.mean([r['person'] for r in chosen]):.2f}, style {np.mean([r['style'] for r in chosen]):.3f}"
          if chosen else f"no pool image could be chosen; see {cfg.out}/{PAGE_FILE}")
    return 0
