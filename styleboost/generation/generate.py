"""``styleboost generate``: the recipe that turns prompt files into images, and its settings.

One job: turn prompt files (one prompt a line, ``[V]`` for the bound token) into PNG images with
deterministic seeds, a ``metadata.jsonl`` line per image and a grid per prompt. A prompt longer than the text
encoder's window is cut after its last whole word that fits, with a notice (refused when the cut would drop the
bound token), and recorded as drawn. A LoRA folder
and/or learned token embeddings can be loaded on top of the base model. Re-running into the same
output folder skips the images already there; ``--overwrite`` makes them again. The record format is
``generation.records``; the model, LoRA and sampler loading is ``generation.pipeline``.

Output layout (``out/``)::

    images/<prompt set>/p003_s2.png   prompt 3 of <prompt set>.txt, seed 2 (settings in PNG text)
    grids/<prompt set>/p003.png       all images of that prompt, in seed order
    metadata.jsonl                    one JSON record per image (``file`` is relative to out/)
    runs.jsonl                        one line per run: settings, versions, counts
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
from PIL import Image
from tqdm.auto import tqdm

from styleboost.core.atomic import save_image_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.images import file_sha256
from styleboost.core.manifest import manifest_path, package_versions, read_manifest
from styleboost.core.settings import option
from styleboost.generation.pipeline import SCHEDULERS, load_generation_pipeline, scheduler_name
from styleboost.generation.records import (
    ImageJob,
    append_jsonl,
    make_record,
    metadata_path,
    save_image,
    split_done,
)
from styleboost.sd.loading import default_resolution, source_name
from styleboost.sd.prompts import fit_prompt, prompt_lines
from styleboost.sd.sampling import batches, draw_images
from styleboost.sd.tokens import fill_placeholders
from styleboost.sd.weights import (
    CUSTOM_DIFFUSION_FILE,
    EMBEDDINGS_FILE,
    LORA_FILE,
    find_embeddings,
    find_lora_weights,
    read_embeddings,
)

DEFAULT_TOKEN = "sks"
GRID_COLUMNS = 4


@dataclass
class GenerateConfig:
    """Every setting of one generation run (the CLI flags map one-to-one onto these fields)."""

    model: str = option(help="Hub id, local diffusers folder or one .safetensors checkpoint.")
    prompts: list[str] = option(help="Prompt files: one prompt a line, # comments, [V] = token.")
    out: str = option(help="Output folder (images/, grids/, metadata.jsonl).")
    lora: str | None = option(
        None, f"LoRA folder with {LORA_FILE}, or a Custom Diffusion run's with {CUSTOM_DIFFUSION_FILE} (a training "
        "output folder; the embeddings saved beside either are loaded too).")
    embeddings: str | None = option(
        None, f"Learned token embeddings: a .safetensors file or a folder with {EMBEDDINGS_FILE}.")
    tokens: list[str] | None = option(
        None, "What [V] ([V1], [V2]...) becomes (default: the tokens in run.json of --lora/--embeddings/--model, "
        "else the embedding tokens, else 'sks').", flags=("--token",))
    set_tokens: list[str] = option(
        [], "SET=N: in the prompt file named SET (its stem) a plain [V] is the N-th token, e.g. people=1 "
        "non_people=2 for a run with a token per part of the style (Multi-StyleForge); [Vn] stays the n-th.",
        flags=("--set-token",), metavar="SET=N")
    images_per_prompt: int = option(4, "Images per prompt; image i uses seed+i.")
    seed: int = option(0, "Seed of the first image of every prompt.")
    scheduler: str | None = option(None, "Sampler (default: the model's own).", choices=list(SCHEDULERS))
    steps: int = option(30, "Denoising steps.")
    guidance: float = option(7.5, "Classifier-free guidance scale.")
    negative_prompt: str | None = option(None, "Negative prompt for every image ([V] is filled too).")
    lora_scale: float = option(1.0, "Strength of the LoRA (0 = base model).")
    batch_size: int = option(4, "Images per pipeline call (does not change images).")
    height: int | None = option(None, "Image height, a multiple of 8 (default: the model's native size).")
    width: int | None = option(None, "Image width, a multiple of 8 (default: the model's native size).")
    fp16: bool | None = option(None, "Half precision (default: on for CUDA, off elsewhere).")
    device: str | None = option(None, "cuda, cuda:1, cpu, mps... (default: cuda if available).")
    overwrite: bool = option(False, "Make images that already exist in --out again.")
    allow_pickle: bool = option(False, "Allow a pickle (.ckpt) base model; it can run code.")
    model_config: str | None = option(
        None, "For a single-file --model: a local diffusers pipeline folder (or hub id) whose component configs "
        "describe its architecture; needed offline (default: fetched from the hub).")
    progress: bool = option(True, "Show a progress bar (--no-progress: none).")

    def validate(self) -> None:
        """Reject settings that cannot work, with one line naming the flag."""
        if self.images_per_prompt < 1:
            raise StyleBoostError(f"--images-per-prompt must be at least 1 (got {self.images_per_prompt})")
        if self.batch_size < 1:
            raise StyleBoostError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.steps < 1:
            raise StyleBoostError(f"--steps must be at least 1 (got {self.steps})")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or value % 8):
                raise StyleBoostError(f"--{name} {value} is not a positive multiple of 8")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise StyleBoostError(f"--scheduler {self.scheduler!r} is unknown; choose from {', '.join(SCHEDULERS)}")
        if not self.prompts:
            raise StyleBoostError("--prompts needs at least one prompt file")
        self.plain_token_of_sets()

    def plain_token_of_sets(self) -> dict[str, int]:
        """{prompt set: which token (1-based) its plain [V] is} from ``--set-token SET=N``."""
        chosen = {}
        for entry in self.set_tokens:
            name, _, index = entry.partition("=")
            if not name or not index.isdigit() or int(index) < 1:
                raise StyleBoostError(f"--set-token {entry!r}: write SET=N (a prompt file's stem and a token number)")
            chosen[name] = int(index)
        return chosen


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one file and their line numbers; ``name`` (the file stem) names its output folders."""

    name: str
    path: str
    templates: list[str]
    lines: list[int]


# ----------------------------------------------------------------------------- inputs


def load_prompt_sets(paths: list[str]) -> list[PromptSet]:
    """One ``PromptSet`` per file; two files with the same stem would share output names."""
    sets = []
    for path in paths:
        lines = prompt_lines(path)
        sets.append(PromptSet(Path(path).stem, str(path), [t for _, t in lines], [n for n, _ in lines]))
    names = [s.name for s in sets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StyleBoostError(f"prompt files share the name {duplicates[0]!r}; rename one (outputs are named by it)")
    return sets


def tokens_from_run_manifest(folder: Path) -> list[str] | None:
    """The bound tokens recorded in a training folder's ``run.json``, if it has one."""
    try:
        manifest = read_manifest(folder)
    except json.JSONDecodeError as err:
        raise StyleBoostError(f"{manifest_path(folder)} is not valid JSON ({err.msg}, line {err.lineno})") from None
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    for tokens in (manifest.get("tokens"), config.get("new_token"), config.get("token")):
        if isinstance(tokens, str):
            return [tokens]
        if isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens):
            return list(tokens)
    return None


def resolve_tokens(config: GenerateConfig, embeddings: dict[str, torch.Tensor] | None = None) -> list[str]:
    """What [V]/[Vn] become: --token, else the run.json of the LoRA, embeddings or (fully tuned) model
    folder, else the embedding tokens, else 'sks'."""
    if config.tokens:
        return list(config.tokens)
    paths = [Path(p).expanduser() for p in (config.lora, config.embeddings) if p]
    paths += [Path(config.model).expanduser()] if Path(config.model).expanduser().is_dir() else []
    for folder in (f if f.is_dir() else f.parent for f in paths):
        tokens = tokens_from_run_manifest(folder)
        if tokens:
            return tokens
    if embeddings:
        return list(embeddings)
    return [DEFAULT_TOKEN]


def embeddings_source(config: GenerateConfig) -> Path | None:
    """The embeddings file to load: --embeddings, else one saved beside the LoRA (LoRA + TI runs)."""
    if config.embeddings:
        return find_embeddings(config.embeddings)
    beside_lora = Path(config.lora).expanduser() / EMBEDDINGS_FILE if config.lora else None
    return beside_lora if beside_lora is not None and beside_lora.is_file() else None


# ----------------------------------------------------------------------------- planning


def plan_jobs(config: GenerateConfig, prompt_sets: list[PromptSet], tokens: list[str]) -> list[ImageJob]:
    """Every image of the run, in prompt order; image i of every prompt uses seed ``seed + i``."""
    jobs = []
    plain = config.plain_token_of_sets()
    unknown = sorted(set(plain) - {s.name for s in prompt_sets})
    if unknown:
        raise StyleBoostError(f"--set-token {unknown[0]}=...: no prompt file is named {unknown[0]!r} "
                              f"(the prompt sets: {', '.join(s.name for s in prompt_sets)})")
    for prompt_set in prompt_sets:
        for index, (template, line) in enumerate(zip(prompt_set.templates, prompt_set.lines)):
            source = f"{prompt_set.path} line {line}"
            prompt = fill_placeholders(template, tokens, source=source, plain=plain.get(prompt_set.name, 1))
            for i in range(config.images_per_prompt):
                seed = config.seed + i
                file = f"images/{prompt_set.name}/p{index:03d}_s{seed}.png"
                jobs.append(ImageJob(prompt_set.name, index, seed, template, prompt, file, source))
    return jobs


def base_settings(config: GenerateConfig, tokens: list[str], embeddings_file: Path | None) -> dict[str, Any]:
    """The record fields shared by every image of the run (scheduler is added once it is known)."""
    lora_file = find_lora_weights(config.lora) if config.lora else None
    return {
        "model": source_name(config.model),
        "lora": source_name(config.lora),
        "lora_sha256": file_sha256(lora_file) if lora_file else None,
        "embeddings": source_name(str(embeddings_file)) if embeddings_file else None,
        "embeddings_sha256": file_sha256(embeddings_file) if embeddings_file else None,
        "tokens": tokens,
        "negative_prompt": fill_placeholders(config.negative_prompt or "", tokens, source="--negative-prompt"),
        "steps": config.steps,
        "guidance": config.guidance,
        "lora_scale": config.lora_scale if config.lora else None,
    }


# ----------------------------------------------------------------------------- the run


def generate_images(config: GenerateConfig) -> list[dict[str, Any]]:
    """Make every image of ``config`` that is not already in ``config.out``; return all their records."""
    config.validate()
    if config.lora:
        find_lora_weights(config.lora)
    embeddings_file = embeddings_source(config)
    embeddings = read_embeddings(embeddings_file) if embeddings_file else None
    prompt_sets = load_prompt_sets(config.prompts)
    tokens = resolve_tokens(config, embeddings)
    settings = base_settings(config, tokens, embeddings_file)
    jobs = plan_jobs(config, prompt_sets, tokens)
    out = Path(config.out)
    pipe = None
    settings["scheduler"] = scheduler_name(config)
    if settings["scheduler"] is None and not config.overwrite and any((out / job.file).is_file() for job in jobs):
        pipe = load_generation_pipeline(config, embeddings)  # to check existing images against its scheduler
        settings["scheduler"] = scheduler_name(config, pipe)
    done, todo = split_done(out, jobs, lambda job: _wanted_record(job, settings, config), config.overwrite)
    records, seconds = dict(done), None
    if todo:
        made, seconds = _run_jobs(config, out, todo, settings, embeddings, pipe)
        records.update(made)
    _write_grids(out, jobs, changed={job.file for job in todo})
    _write_run_line(out, config, settings, generated=len(todo), skipped=len(done), seconds_per_image=seconds)
    return [records[job.file] for job in jobs]


def _wanted_record(job: ImageJob, settings: dict[str, Any], config: GenerateConfig) -> dict[str, Any]:
    """The settings an image of ``job`` already on disk must have been made with to count as done."""
    wanted = {**settings, "prompt_as_written": job.prompt, "seed": job.seed}
    wanted.update({k: v for k, v in (("height", config.height), ("width", config.width)) if v})
    return wanted


def _run_jobs(config: GenerateConfig, out: Path, todo: list[ImageJob], settings: dict[str, Any], embeddings,
              pipe=None):
    """Load the model (unless given) and make the missing images, batch by batch, recording each as it is saved;
    returns their records and the seconds per image of drawing them (the model load left out)."""
    if pipe is None:
        pipe = load_generation_pipeline(config, embeddings)
    todo = fit_to_window(pipe, todo, settings["tokens"])
    settings = {**settings, "scheduler": scheduler_name(config, pipe)}
    height = config.height or default_resolution(pipe)
    width = config.width or default_resolution(pipe)
    out.mkdir(parents=True, exist_ok=True)
    records, start = {}, time.perf_counter()
    with tqdm(total=len(todo), desc="generate", unit="img", disable=not config.progress) as bar:
        for batch in batches(todo, config.batch_size):
            images = _denoise(pipe, config, batch, settings, height, width)
            for job, image in zip(batch, images):
                record = make_record(job, settings, height, width)
                save_image(image, out / job.file, record)
                append_jsonl(metadata_path(out), record)
                records[job.file] = record
            bar.update(len(batch))
    return records, (time.perf_counter() - start) / len(todo)


def fit_to_window(pipe, jobs: list[ImageJob], tokens: list[str]) -> list[ImageJob]:
    """The jobs with each prompt as the pipeline's text encoder reads it (``sd.prompts.fit_prompt``): a prompt over
    its window is cut, with one notice per prompt, or refused when the cut would drop a bound token."""
    convert = getattr(pipe, "maybe_convert_prompt", None)  # spells multi-vector embedding tokens as several
    expand = (lambda text: convert(text, pipe.tokenizer)) if convert else None
    drawn: dict[str, str] = {}
    for job in jobs:
        if job.prompt not in drawn:
            drawn[job.prompt] = fit_prompt(pipe.tokenizer, job.prompt, tokens, source=job.source, expand=expand)
    return [dataclasses.replace(job, cut=drawn[job.prompt]) if drawn[job.prompt] != job.prompt else job
            for job in jobs]


def _denoise(pipe, config: GenerateConfig, batch: list[ImageJob], settings: dict[str, Any], height: int, width: int):
    """One pipeline call; a generator per image keeps each image independent of the batch it is in."""
    negative = settings["negative_prompt"]
    kwargs = {"cross_attention_kwargs": {"scale": config.lora_scale}} if config.lora else {}
    return draw_images(
        pipe,
        [job.drawn for job in batch],
        [job.seed for job in batch],
        negative_prompt=[negative] * len(batch) if negative else None,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        height=height,
        width=width,
        **kwargs,
    )


# ----------------------------------------------------------------------------- grids and the run log


def save_grid(out: Path, jobs: list[ImageJob]) -> Path:
    """All images of one prompt side by side (GRID_COLUMNS a row), padded with black."""
    from diffusers.utils import make_image_grid  # deferred: diffusers takes seconds to import

    images = [Image.open(out / job.file).convert("RGB") for job in jobs]
    cols = min(len(images), GRID_COLUMNS)
    rows = math.ceil(len(images) / cols)
    images += [Image.new("RGB", images[0].size)] * (rows * cols - len(images))
    path = out / "grids" / jobs[0].prompt_set / f"p{jobs[0].prompt_index:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(make_image_grid(images, rows=rows, cols=cols), path)
    return path


def _write_grids(out: Path, jobs: list[ImageJob], changed: set[str]) -> None:
    """A grid per prompt whose images changed in this run or whose grid is missing."""
    by_prompt: dict[tuple[str, int], list[ImageJob]] = {}
    for job in jobs:
        by_prompt.setdefault((job.prompt_set, job.prompt_index), []).append(job)
    for (name, index), group in by_prompt.items():
        grid = out / "grids" / name / f"p{index:03d}.png"
        if not grid.is_file() or any(job.file in changed for job in group):
            save_grid(out, group)


def _write_run_line(out: Path, config: GenerateConfig, settings: dict[str, Any], *, generated: int, skipped: int,
                    seconds_per_image: float | None):
    """Append what this run did, with which settings, how fast and library versions, to runs.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": dataclasses.asdict(config),
        "tokens": settings["tokens"],
        "generated": generated,
        "skipped": skipped,
        "seconds_per_image": round(seconds_per_image, 3) if seconds_per_image is not None else None,
        "versions": package_versions(),
    }
    append_jsonl(out / "runs.jsonl", line)


# ----------------------------------------------------------------------------- the command


def run(config: GenerateConfig) -> int:
    """``styleboost generate``: make the images and say where they are."""
    records = generate_images(config)
    print(f"{len(records)} images in {config.out} (metadata.jsonl, grids/)")
    return 0
