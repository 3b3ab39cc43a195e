"""An evaluation protocol as data, and running it: generate with each trained model, then evaluate them together.

A protocol (``eval/protocols/*.yaml``) fixes what a comparison needs to be fair: the prompt sets,
images per prompt, seeds and sampler, and which metrics with which models. ``run_protocol`` makes
the images of every run into ``<out>/generated/<run>/`` (images already there are kept, so an
interrupted protocol resumes) and writes the report into ``<out>/report/``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styleboost.core.settings import flag_adder
from styleboost.core.settings import load_yaml_settings, option
from styleboost.core.errors import StyleBoostError
from styleboost.sd.weights import EMBEDDINGS_FILE, LORA_FILE
from styleboost.metrics.clip import DEFAULT_CLIP
from styleboost.metrics.definitions import METRIC_GROUPS


@dataclass
class Protocol:
    """What every run of a comparison is generated and scored with (the keys of a protocol YAML)."""

    name: str = option("protocol", "Name shown in the report.")
    prompt_sets: list[str] = option([], "Prompt files (relative to the protocol file or an ancestor folder of it).")
    images_per_prompt: int = option(4, "Images per prompt; image i uses seed + i.")
    seed: int = option(0, "Seed of the first image of every prompt.")
    steps: int = option(30, "Denoising steps.")
    guidance: float = option(7.5, "Classifier-free guidance scale.")
    scheduler: str | None = option(None, "Sampler (a `styleboost generate --scheduler` name); None: the model's own.")
    negative_prompt: str | None = option(None, "Negative prompt for every image.")
    height: int | None = option(None, "Image height (None: the model's native size).")
    width: int | None = option(None, "Image width (None: the model's native size).")
    metrics: list[str] = option(list(METRIC_GROUPS), "Metric groups to compute.")
    clip: str = option(DEFAULT_CLIP, "open_clip model for CLIP-T / CLIP-I.")
    encoder: str = option("default", "Style encoder.")
    fid_features: str = option("inception", "FID/KID features: inception or clip.")
    kid_subsets: int = option(100, "KID subsets.")
    kid_subset_size: int = option(1000, "Largest KID subset.")
    image_size: int = option(299, "Scoring resolution.")
    source: Path | None = field(default=None, repr=False, metadata={"help": "The file it was read from."})

    def prompt_files(self) -> list[str]:
        """The prompt files, found relative to the protocol file, its ancestors, or the working folder."""
        return [str(resolve_near(p, self.source)) for p in self.prompt_sets]


def resolve_near(path: str, source: Path | None) -> Path:
    """``path`` as given if it exists, else relative to ``source``'s folder or one of its ancestors."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists() or source is None:
        return candidate
    for folder in [source.parent, *source.parent.parents]:
        if (folder / candidate).exists():
            return folder / candidate
    raise StyleBoostError(f"{source}: prompt file {path} not found next to the protocol or in a folder above it")


def load_protocol(path: str | Path) -> Protocol:
    """Read a protocol YAML (one-line errors name the file and the bad key)."""
    path = Path(path)
    settings = load_yaml_settings(path, Protocol)
    settings.pop("source", None)
    protocol = Protocol(**settings, source=path.resolve())
    if not protocol.prompt_sets:
        raise StyleBoostError(f"{path}: prompt_sets is empty; name at least one prompt file")
    protocol.prompt_files()  # every prompt file must exist before anything is generated
    return protocol


@dataclass(frozen=True)
class RunSource:
    """How one run's images are made: the base model plus the run folder's LoRA / embeddings, or its own pipeline."""

    name: str
    model: str
    lora: str | None = None
    embeddings: str | None = None


def run_source(name: str, folder: str, base_model: str | None) -> RunSource:
    """What a run folder holds: a LoRA, learned embeddings (or both: lora_ti), or a full diffusers pipeline.
    An empty folder (``--run base=``) is the base model itself."""
    if not folder:
        if not base_model:
            raise StyleBoostError(f"--run {name}=: the base-model run needs --model")
        return RunSource(name, base_model)
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise StyleBoostError(f"--run {name}={folder}: folder not found")
    if (path / "model_index.json").is_file():
        return RunSource(name, str(path))
    lora = str(path) if (path / LORA_FILE).is_file() else None
    embeddings = str(path / EMBEDDINGS_FILE) if (path / EMBEDDINGS_FILE).is_file() else None
    if not (lora or embeddings):
        raise StyleBoostError(
            f"--run {name}={folder}: no {LORA_FILE}, {EMBEDDINGS_FILE} or model_index.json (a training output folder?)"
        )
    if not base_model:
        raise StyleBoostError(f"--run {name}={folder} holds adapter weights; name the base model with --model")
    return RunSource(name, base_model, lora, embeddings)


def parse_run_sources(specs: list[str], base_model: str | None) -> list[RunSource]:
    from styleboost.evaluation.config import parse_runs

    return [run_source(name, folder, base_model) for name, folder in parse_runs(specs, allow_empty_dir=True)]


def generate_run(protocol: Protocol, source: RunSource, out: Path, settings: dict[str, Any]) -> Path:
    """Make (or complete) one run's images with the protocol's prompts, seeds and sampler."""
    from styleboost.generation.generate import GenerateConfig, generate_images

    folder = out / "generated" / source.name
    config = GenerateConfig(
        model=source.model, prompts=protocol.prompt_files(), out=str(folder), lora=source.lora,
        embeddings=source.embeddings, images_per_prompt=protocol.images_per_prompt, seed=protocol.seed,
        scheduler=protocol.scheduler, steps=protocol.steps, guidance=protocol.guidance,
        negative_prompt=protocol.negative_prompt, height=protocol.height, width=protocol.width, **settings,
    )
    config.validate()
    generate_images(config)
    return folder


def run_protocol(protocol: Protocol, runs: list[str], styleref: str, out: str | Path, model: str | None = None,
                 generate_settings: dict[str, Any] | None = None, evaluate_settings: dict[str, Any] | None = None,
                 models=None) -> dict[str, Any]:
    """Generate every run's images, then evaluate all runs in one report (``<out>/report``)."""
    from styleboost.evaluation.config import EvaluateConfig
    from styleboost.evaluation.evaluate import evaluate

    out = Path(out).expanduser()
    sources = parse_run_sources(runs, model)
    folders = [generate_run(protocol, s, out, dict(generate_settings or {})) for s in sources]
    config = EvaluateConfig(
        runs=[f"{s.name}={f}" for s, f in zip(sources, folders)], styleref=styleref, out=str(out / "report"),
        encoder=protocol.encoder, clip=protocol.clip, metrics=list(protocol.metrics),
        fid_features=protocol.fid_features, kid_subsets=protocol.kid_subsets,
        kid_subset_size=protocol.kid_subset_size, image_size=protocol.image_size, seed=protocol.seed,
        **(evaluate_settings or {}),
    )
    settings = {k: v for k, v in dataclasses.asdict(protocol).items() if k != "source"}
    return evaluate(config, models, context={"protocol": {**settings, "file": str(protocol.source)}})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``eval/run_protocol.py``."""
    add = flag_adder(parser)
    add("--protocol", required=True, help="Protocol YAML (eval/protocols/*.yaml).")
    add("--model", help="Base model (hub id, diffusers folder or .safetensors) the LoRA / embeddings runs load onto.")
    add("--run", dest="runs", action="append", required=True, metavar="NAME=DIR",
        help="A run: its training output folder (LoRA, embeddings or full pipeline); NAME= for the base model.")
    add("--styleref", required=True, help="The StyleRef folder the runs were trained on.")
    add("--out", required=True, help="Output folder: generated/<run>/ and report/.")
    add("--token", dest="tokens", nargs="+", help="What [V] becomes (default: from each run's run.json).")
    add("--batch-size", type=int, default=4, help="Images per pipeline call.")
    add("--device", help="cuda, cpu... (default: cuda if available).")
    add("--fp16", action=argparse.BooleanOptionalAction, help="Half precision (default: on for CUDA).")
    add("--cache-dir", help="Embedding cache folder ('none' to turn it off).")
    add("--overwrite", action="store_true", help="Replace a report already in <out>/report (images are kept).")
    add("--no-progress", dest="progress", action="store_false", help="No progress bars.")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol)
    shared = {"device": args.device, "fp16": args.fp16, "progress": args.progress}
    report = run_protocol(
        protocol, args.runs, args.styleref, args.out, model=args.model,
        generate_settings={**shared, "tokens": args.tokens, "batch_size": args.batch_size},
        evaluate_settings={**shared, "cache_dir": args.cache_dir, "overwrite": args.overwrite},
    )
    print(f"protocol {protocol.name}: {len(report['runs'])} run(s); report in {Path(args.out) / 'report'}")
    return 0
