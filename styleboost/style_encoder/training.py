"""Train a style encoder: cross-entropy over styles + a distance loss, P x K batches, best-by-val-mAP export.

Layout of an output folder::

    splits.csv          every image with its split (train / val / test), fixed by --seed
    run.json            settings, versions, class names, validation history, test metrics
    checkpoint-N/       accelerate state (model, optimizer, LR schedule, RNG), for --resume_from_checkpoint
    best/               the encoder with the best validation mAP@10 (config.json + model.safetensors)
    last/               the encoder after the last step
    logs/               tensorboard
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from styleboost.core.errors import StyleBoostError
from styleboost.core.manifest import package_versions, read_manifest, update_manifest
from styleboost.core.notice import notice
from styleboost.core.settings import option, settings_from_args
from styleboost.style_encoder.dataset import (
    StyleImageDataset,
    StyleRecord,
    read_style_data,
    split_records,
    write_splits,
)
from styleboost.style_encoder.evaluation import score_encoder
from styleboost.style_encoder.factory import create_style_encoder, load_style_encoder, save_style_encoder
from styleboost.style_encoder.losses import DISTANCE_LOSSES, style_loss
from styleboost.style_encoder.model import StyleEncoder
from styleboost.style_encoder.sampler import PKBatchSampler
from styleboost.training.accelerator import lr_schedule, make_accelerator
from styleboost.training.checkpoint import resolve_resume, save_checkpoint
from styleboost.training.run_dir import RunFolder

SELECTION_METRIC = "map@10"

# ViT image towers: their position embeddings fix the input size, so crops must be resized to it.
FIXED_SIZE_BACKBONES = ("open_clip", "csd")


@dataclass
class EncoderTrainConfig:
    """Every setting of a style-encoder training run (YAML keys and flags alike)."""

    data: str | None = option(None, "Style folder (one sub-folder per style, or with metadata.csv) or a CSV of path,style.")
    image_root: str | None = option(None, "Folder the CSV's paths are relative to (default: the CSV's folder).")
    path_column: str | None = option(None, "CSV column of image paths (default: path/filename/file/image).")
    style_column: str | None = option(None, "CSV column of style names (default: style/label/class/genre; "
                                     "'folder': each path's parent folder).")
    exclude_styles: list[str] = option([], "Styles left out of training entirely (held-out styles for evaluation).")
    architecture: str = option("small-cnn", "Named encoder architecture (styleboost/style_encoder/configs) or a JSON file.")
    pretrained: str | None = option(None, "Backbone weights: hub id / open_clip tag or a local .safetensors file.")
    output_dir: str | None = option(None, "Output folder (default: runs/style-encoder-<time>).")
    overwrite: bool = option(False, "Replace a run already in --output_dir.")
    seed: int = option(0, "Seed of the split, the initialisation, the batches and the augmentations.")
    val_fraction: float = option(0.1, "Share of artworks (contents) in the validation split.")
    test_fraction: float = option(0.1, "Share of artworks (contents) in the test split.")
    styles_per_batch: int = option(16, "P: styles in every batch.")
    images_per_style: int = option(4, "K: images of each of those styles in every batch.")
    max_train_steps: int = option(1500, "Optimizer steps.")
    learning_rate: float = option(2e-3, "Peak AdamW learning rate.")
    weight_decay: float = option(1e-4, "AdamW weight decay.")
    lr_scheduler: str = option("cosine", "diffusers LR schedule: cosine, linear, constant, constant_with_warmup...")
    lr_warmup_steps: int = option(100, "Warm-up steps of the LR schedule.")
    max_grad_norm: float = option(5.0, "Gradient clipping norm.")
    distance_loss: str = option("supcon", "Distance loss on the unit style vectors.", choices=DISTANCE_LOSSES)
    ce_weight: float = option(1.0, "Weight of the cross-entropy over styles.")
    distance_weight: float = option(1.0, "Weight of the distance loss.")
    temperature: float = option(0.1, "Supervised-contrastive temperature.")
    margin: float = option(0.2, "Triplet margin (cosine distance).")
    crop_mode: str | None = option(None, "Training crops: native (3/4 of the side at the image's own scale, so dot "
                                   "and line sizes are seen as drawn; the default) or zoom (random areas of "
                                   "--min_crop_scale..1, resized to the encoder's size; the default for fixed-size "
                                   "ViT towers).", choices=("zoom", "native"))
    min_crop_scale: float = option(0.35, "Smallest zoomed crop, as a share of the image area (--crop_mode zoom).")
    max_rotation: float = option(8.0, "Largest random rotation in degrees (0: none).")
    eval_every: int = option(250, "Validate (mAP@10) every N steps; the best encoder is exported to best/.")
    checkpointing_steps: int = option(500, "Save resumable state every N steps.")
    checkpoints_total_limit: int | None = option(2, "Keep at most N checkpoints.")
    resume_from_checkpoint: str | None = option(None, "'latest' or a checkpoint folder to resume from.")
    mixed_precision: str = option("no", "accelerate mixed precision.", choices=("no", "fp16", "bf16"))
    num_workers: int = option(0, "DataLoader worker processes.")
    report_to: str = option("tensorboard", "Tracker: tensorboard, wandb or none.", choices=("tensorboard", "wandb", "none"))
    progress: bool = option(True, "Show progress bars.")

    def validate(self) -> None:
        if not self.data:
            raise StyleBoostError("--data is required: a style folder or a CSV of path,style")
        for name in ("max_train_steps", "eval_every", "checkpointing_steps"):
            if getattr(self, name) < 1:
                raise StyleBoostError(f"--{name} must be at least 1")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1 or self.val_fraction + self.test_fraction >= 1:
            raise StyleBoostError("--val_fraction and --test_fraction must be in [0, 1) and leave room for training")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_args(argv: list[str] | None = None, prog: str | None = None) -> EncoderTrainConfig:
    """Defaults, then the YAML of --config, then the flags given."""
    cfg = settings_from_args(EncoderTrainConfig, argv, prog=prog, description="Train a style-similarity encoder.")
    cfg.validate()
    return cfg


# --------------------------------------------------------------------------- set-up


def prepare_output_dir(cfg: EncoderTrainConfig) -> RunFolder:
    """The output folder, locked; one holding a run needs --overwrite (replaced once the new run starts) or
    --resume_from_checkpoint."""
    output_dir = cfg.output_dir or time.strftime("runs/style-encoder-%Y%m%d-%H%M%S")
    return RunFolder(output_dir).claim(cfg.overwrite, cfg.resume_from_checkpoint)


def load_splits(cfg: EncoderTrainConfig, out: Path) -> tuple[dict[str, list[StyleRecord]], list[str]]:
    """Read the data, drop --exclude_styles, split by artwork, write splits.csv; return splits and class names."""
    records = read_style_data(cfg.data, cfg.image_root, cfg.path_column, cfg.style_column)
    known = {r.style for r in records}
    unknown = sorted(set(cfg.exclude_styles) - known)
    if unknown:
        raise StyleBoostError(f"--exclude_styles: {', '.join(unknown)} not in {cfg.data}")
    records = [r for r in records if r.style not in set(cfg.exclude_styles)]
    fractions = (1 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction, cfg.test_fraction)
    splits = split_records(records, fractions, cfg.seed)
    class_names = sorted({r.style for r in splits["train"]})
    if len(class_names) < 2:
        raise StyleBoostError(f"{cfg.data}: fewer than two styles left to train on")
    data_root = Path(cfg.data) if Path(cfg.data).is_dir() else Path(cfg.data).parent
    write_splits(splits, out / "splits.csv", data_root)
    return splits, class_names


# --------------------------------------------------------------------------- validation


def previous_best(out: Path) -> float:
    """The selection metric of best/ left by an earlier part of this run (resume), or -inf."""
    config = out / "best" / "config.json"
    if not config.is_file():
        return -math.inf
    return float(json.loads(config.read_text()).get("training", {}).get("val", {}).get(SELECTION_METRIC, -math.inf))


# --------------------------------------------------------------------------- the loop


def make_optimisation(cfg: EncoderTrainConfig, encoder: StyleEncoder, num_processes: int):
    """AdamW over the trainable weights and diffusers' LR schedule, ending at max_train_steps on any
    number of processes."""
    optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad],
                                  lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = lr_schedule(cfg.lr_scheduler, optimizer, warmup_steps=cfg.lr_warmup_steps,
                            total_steps=cfg.max_train_steps, num_processes=num_processes)
    return optimizer, scheduler


def train_step(accelerator, model, optimizer, scheduler, pixels: torch.Tensor, labels: torch.Tensor,
               cfg: EncoderTrainConfig, step: int) -> dict[str, float]:
    """One optimizer step on one P x K batch; returns the loss terms and the learning rate."""
    pixels, labels = pixels.to(accelerator.device), labels.to(accelerator.device)
    with accelerator.autocast():
        embeddings, logits = model(pixels, return_logits=True)
    terms = style_loss(embeddings, logits, labels, cfg.distance_loss, cfg.ce_weight, cfg.distance_weight,
                       cfg.temperature, cfg.margin)
    if not torch.isfinite(terms["loss"]):
        raise StyleBoostError(f"loss became {terms['loss'].item()} at step {step}; lower --learning_rate")
    accelerator.backward(terms["loss"])
    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {k: float(v.detach()) for k, v in terms.items()} | {"lr": scheduler.get_last_lr()[0]}


def start_manifest(accelerator, out: Path, cfg: EncoderTrainConfig, class_names: list[str],
                   splits: dict[str, list[StyleRecord]], start: int) -> None:
    """run.json at the start (validation entries past a resumed checkpoint are dropped) and trackers."""
    if not accelerator.is_main_process:
        return
    update_manifest(out, kind="style-encoder", config=cfg.to_dict(), versions=package_versions(),
                    class_names=class_names, split_sizes={k: len(v) for k, v in splits.items()}, status="running",
                    validation=[v for v in read_manifest(out).get("validation", []) if v["step"] <= start])
    accelerator.init_trackers("style-encoder", config={k: v for k, v in cfg.to_dict().items() if not isinstance(v, list)})


def settle_crop_mode(cfg: EncoderTrainConfig, backbone: str, image_size: int) -> EncoderTrainConfig:
    """``cfg`` with its crop mode decided for the backbone: native unless the backbone takes only one input size."""
    fixed = backbone in FIXED_SIZE_BACKBONES
    if cfg.crop_mode == "native" and fixed:
        raise StyleBoostError(f"--crop_mode native: the {backbone} backbone takes only {image_size} px inputs; "
                              "use --crop_mode zoom")
    mode = cfg.crop_mode or ("zoom" if fixed else "native")
    if mode == "native" and cfg.min_crop_scale != EncoderTrainConfig.min_crop_scale:
        notice(f"--min_crop_scale {cfg.min_crop_scale} does not apply with native crops (they keep 3/4 of the side); "
               "pass --crop_mode zoom to use it")
    return dataclasses.replace(cfg, crop_mode=mode)


def train_style_encoder(cfg: EncoderTrainConfig) -> Path:
    """Train, validate, checkpoint and export; returns the output folder (locked while it trains)."""
    with prepare_output_dir(cfg) as folder:
        return train_in(folder, cfg)


def train_in(folder: RunFolder, cfg: EncoderTrainConfig) -> Path:
    from tqdm.auto import tqdm

    out = folder.path
    splits, class_names = load_splits(cfg, out)
    encoder = create_style_encoder(cfg.architecture, class_names=class_names, pretrained=cfg.pretrained,
                                   init_seed=cfg.seed)
    cfg = settle_crop_mode(cfg, encoder.config.backbone.get("type"), encoder.config.image_size)
    dataset = StyleImageDataset(splits["train"], class_names, encoder.preprocess,
                                encoder.preprocess.train_transform(cfg.min_crop_scale, cfg.max_rotation,
                                                                    zoom=cfg.crop_mode == "zoom"))
    accelerator = make_accelerator(out, cfg.mixed_precision, cfg.report_to)
    model, optimizer, scheduler = accelerator.prepare(encoder, *make_optimisation(cfg, encoder, accelerator.num_processes))
    resume = resolve_resume(out, cfg.resume_from_checkpoint) if cfg.resume_from_checkpoint else None
    start = resume[0] if resume else 0
    if resume:
        accelerator.load_state(str(resume[1]))
    folder.start()
    start_manifest(accelerator, out, cfg, class_names, splits, start)
    sampler = PKBatchSampler(dataset.labels, cfg.styles_per_batch, cfg.images_per_style,
                             seed=cfg.seed * 1000 + accelerator.process_index,
                             steps=max(0, cfg.max_train_steps - start), start=start)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler.seeded(), num_workers=cfg.num_workers)
    best, started = previous_best(out), time.time()
    progress = tqdm(total=cfg.max_train_steps, initial=start, desc="style encoder",
                    disable=not (cfg.progress and accelerator.is_local_main_process))
    model.train()
    for step, (pixels, labels) in enumerate(loader, start=start + 1):
        logs = train_step(accelerator, model, optimizer, scheduler, pixels, labels, cfg, step)
        accelerator.log(logs, step=step)
        progress.update(1)
        progress.set_postfix(loss=f"{logs['loss']:.3f}")
        if step % cfg.eval_every == 0 or step == cfg.max_train_steps:
            best = validate(accelerator, model, splits["val"], out, step, best, cfg)
            model.train()
        if step % cfg.checkpointing_steps == 0 and step < cfg.max_train_steps:
            save_checkpoint(accelerator, out, step, cfg.checkpoints_total_limit)
    progress.close()
    finish(accelerator, model, splits, out, cfg, time.time() - started)
    return out


def validate(accelerator, model, val: list[StyleRecord], out: Path, step: int, best: float,
             cfg: EncoderTrainConfig) -> float:
    """Validation metrics into run.json (on the main process); export best/ when mAP@10 improves.
    Returns the best mAP@10 so far."""
    if not accelerator.is_main_process or not val:
        return best
    encoder = accelerator.unwrap_model(model)
    metrics = score_encoder(encoder, val, seed=cfg.seed)
    metrics.pop("notes", None)
    update_manifest(out, validation=read_manifest(out).get("validation", []) + [{"step": step, **metrics}])
    accelerator.log({f"val/{k}": v for k, v in metrics.items()}, step=step)
    if metrics[SELECTION_METRIC] > best:
        best = metrics[SELECTION_METRIC]
        save_style_encoder(encoder, out / "best", overwrite=True,
                           training=training_record(cfg, step, val=metrics))
    return best


def training_record(cfg: EncoderTrainConfig, step: int, **extra: Any) -> dict[str, Any]:
    """What an exported encoder's config.json says about how it was trained."""
    return {"step": step, **extra, "data": cfg.data, "seed": cfg.seed, "crop_mode": cfg.crop_mode}


def finish(accelerator, model, splits: dict[str, list[StyleRecord]], out: Path, cfg: EncoderTrainConfig,
           seconds: float) -> None:
    """Export last/, score best/ on the test split, close the manifest."""
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if not accelerator.is_main_process:
        return
    encoder = accelerator.unwrap_model(model)
    save_style_encoder(encoder, out / "last", overwrite=True,
                       training=training_record(cfg, cfg.max_train_steps))
    chosen = out / "best" if (out / "best").is_dir() else out / "last"
    test = score_encoder(load_style_encoder(chosen), splits["test"], seed=cfg.seed) if splits["test"] else {}
    test.pop("notes", None)
    update_manifest(out, status="finished", test=test, train_seconds=round(seconds, 1), exported=str(chosen))
