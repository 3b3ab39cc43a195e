"""Generate images from prompt files with a base or style-tuned Stable Diffusion model.

One job: turn prompt files (one prompt a line, ``[V]`` for the bound token) into PNG images with
deterministic seeds, a ``metadata.jsonl`` line per image and a grid per prompt. A LoRA folder
and/or learned token embeddings can be loaded on top of the base model. Re-running into the same
output folder skips the images already there; ``--overwrite`` makes them again.

Output layout (``out/``)::

    images/<prompt set>/p003_s2.png   prompt 3 of <prompt set>.txt, seed 2 (settings in PNG text)
    grids/<prompt set>/p003.png       all images of that prompt, in seed order
    metadata.jsonl                    one JSON record per image (``file`` is relative to out/)
    runs.jsonl                        one line per run: settings, versions, counts
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from styleboost.core.atomic import save_image_atomic, write_text_atomic
from styleboost.core.settings import dataclass_from_args, flag_adder
from styleboost.core.images import file_sha256
from styleboost.core.errors import StyleBoostError, first_line
from styleboost.sd.weights import (
    EMBEDDINGS_FILE,
    LORA_FILE,
    find_embeddings,
    load_embeddings,
    read_embeddings,
)
from styleboost.sd.loading import default_resolution, load_pipeline, source_name
from styleboost.core.notice import notice
from styleboost.sd.prompts import read_prompt_file
from styleboost.sd.tokens import fill_placeholders

RUN_MANIFEST_NAME = "run.json"
DEFAULT_TOKEN = "sks"
GRID_COLUMNS = 4

# --scheduler name -> (diffusers class name, extra config for from_config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
}

# Record keys that decide an image's pixels; an existing image must match them to be skipped. LoRA and
# embeddings are recorded by path and by the SHA-256 of the file (retrained weights at the same path differ).
_SETTING_KEYS = (
    "prompt", "negative_prompt", "seed", "model", "scheduler", "lora", "lora_sha256", "lora_scale", "embeddings",
    "embeddings_sha256", "steps", "guidance", "height", "width",
)


@dataclass
class GenerateConfig:
    """Every setting of one generation run (the CLI flags map one-to-one onto these fields)."""

    model: str
    prompts: list[str]
    out: str
    lora: str | None = None
    embeddings: str | None = None
    tokens: list[str] | None = None  # what [V], [V1], [V2]... become; None: run.json, embeddings, "sks"
    images_per_prompt: int = 4
    seed: int = 0
    scheduler: str | None = None  # a key of SCHEDULERS; None keeps the model's own
    steps: int = 30
    guidance: float = 7.5
    negative_prompt: str | None = None
    lora_scale: float = 1.0
    batch_size: int = 4
    height: int | None = None  # None: the model's native size
    width: int | None = None
    fp16: bool | None = None  # None: fp16 on CUDA, fp32 elsewhere
    device: str | None = None  # None: cuda if available, else cpu
    overwrite: bool = False
    allow_pickle: bool = False  # for the base model only
    model_config: str | None = None  # a single-file --model's architecture: a diffusers folder or hub id
    progress: bool = True

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


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one file; ``name`` (the file stem) names its output folders."""

    name: str
    path: str
    templates: list[str]


@dataclass(frozen=True)
class ImageJob:
    """One image to make: which prompt, which seed, where it goes."""

    prompt_set: str
    prompt_index: int
    seed: int
    template: str
    prompt: str
    file: str  # relative to the output folder


# ----------------------------------------------------------------------------- inputs


def load_prompt_sets(paths: list[str]) -> list[PromptSet]:
    """One ``PromptSet`` per file; two files with the same stem would share output names."""
    sets = [PromptSet(Path(p).stem, str(p), read_prompt_file(p)) for p in paths]
    names = [s.name for s in sets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StyleBoostError(f"prompt files share the name {duplicates[0]!r}; rename one (outputs are named by it)")
    return sets


def find_lora_weights(path: str) -> Path:
    """The LoRA weights file of a training output folder (or the file itself)."""
    lora = Path(path).expanduser()
    if lora.is_file() and lora.suffix == ".safetensors":
        return lora
    if lora.is_file():
        raise StyleBoostError(f"--lora {lora}: expected a folder with {LORA_FILE} or a .safetensors file")
    if not lora.is_dir():
        raise StyleBoostError(f"--lora folder not found: {lora}")
    weights = lora / LORA_FILE
    if not weights.is_file():
        raise StyleBoostError(f"--lora folder {lora} has no {LORA_FILE}")
    return weights


def tokens_from_run_manifest(folder: Path) -> list[str] | None:
    """The bound tokens recorded in a training folder's ``run.json``, if it has one."""
    manifest = folder / RUN_MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
    except json.JSONDecodeError as err:
        raise StyleBoostError(f"{manifest} is not valid JSON ({err.msg}, line {err.lineno})") from None
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    for tokens in (data.get("tokens"), data.get("bound_tokens"), config.get("new_token"), config.get("token")):
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


# ----------------------------------------------------------------------------- the pipeline


def pick_device(device: str | None) -> str:
    """The requested device, or CUDA when there is one, else the CPU."""
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(fp16: bool | None, device: str) -> torch.dtype:
    """fp16 on CUDA unless refused; fp32 elsewhere (fp16 asked for off CUDA falls back with a notice)."""
    on_cuda = device.startswith("cuda")
    if fp16 and not on_cuda:
        notice(f"--fp16 needs a CUDA device; generating in fp32 on {device}")
        return torch.float32
    if fp16 or (fp16 is None and on_cuda):
        return torch.float16
    return torch.float32


def set_scheduler(pipe, name: str | None) -> str:
    """Swap in the named scheduler (same noise schedule); return the class name now in use."""
    if name is not None:
        import diffusers

        class_name, extra = SCHEDULERS[name]
        pipe.scheduler = getattr(diffusers, class_name).from_config(pipe.scheduler.config, **extra)
    return type(pipe.scheduler).__name__


def scheduler_name(config: GenerateConfig, pipe=None) -> str | None:
    """The scheduler as records name it: the --scheduler name, else the class of the model's own, read from the
    loaded ``pipe`` or, before loading, from a model folder's model_index.json (None: known once loaded)."""
    if config.scheduler is not None:
        return config.scheduler
    if pipe is not None:
        return type(pipe.scheduler).__name__
    try:
        index = json.loads((Path(config.model).expanduser() / "model_index.json").read_text())
    except (OSError, ValueError):  # a checkpoint file or a hub id
        return None
    entry = index.get("scheduler") if isinstance(index, dict) else None  # [library, class name]
    return entry[1] if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str) else None


def load_lora(pipe, path: str) -> None:
    """Load LoRA weights (UNet and, when trained, text encoder) into the pipeline."""
    weights = find_lora_weights(path)
    try:
        pipe.load_lora_weights(str(weights.parent), weight_name=weights.name)
    except (ValueError, KeyError, RuntimeError, OSError) as err:
        raise StyleBoostError(f"could not load LoRA {path} into this model: {first_line(err)}") from None


def load_generation_pipeline(config: GenerateConfig, embeddings: dict[str, torch.Tensor] | None = None):
    """The base model with the LoRA and embeddings of ``config``, on its device, progress bar off."""
    device = pick_device(config.device)
    pipe = load_pipeline(config.model, torch_dtype=pick_dtype(config.fp16, device), allow_pickle=config.allow_pickle,
                         single_file_config=config.model_config, config_flag="--model-config")
    if config.lora:
        load_lora(pipe, config.lora)
    if embeddings:
        load_embeddings(pipe, embeddings)
    set_scheduler(pipe, config.scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


# ----------------------------------------------------------------------------- planning


def plan_jobs(config: GenerateConfig, prompt_sets: list[PromptSet], tokens: list[str]) -> list[ImageJob]:
    """Every image of the run, in prompt order; image i of every prompt uses seed ``seed + i``."""
    jobs = []
    for prompt_set in prompt_sets:
        for index, template in enumerate(prompt_set.templates):
            prompt = fill_placeholders(template, tokens, source=f"{prompt_set.path}: prompt {index}")
            for i in range(config.images_per_prompt):
                seed = config.seed + i
                file = f"images/{prompt_set.name}/p{index:03d}_s{seed}.png"
                jobs.append(ImageJob(prompt_set.name, index, seed, template, prompt, file))
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


def make_record(job: ImageJob, settings: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    """The metadata.jsonl line of one image."""
    return {
        "file": job.file,
        "prompt": job.prompt,
        "prompt_template": job.template,
        "prompt_set": job.prompt_set,
        "prompt_index": job.prompt_index,
        "seed": job.seed,
        **settings,
        "height": height,
        "width": width,
    }


def read_metadata(out: Path) -> dict[str, dict[str, Any]]:
    """Existing metadata.jsonl records, by file, in the order they were written (``evaluate`` reads them too)."""
    path = Path(out) / "metadata.jsonl"
    if not path.is_file():
        return {}
    records = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise StyleBoostError(f"{path} line {number} is not JSON; fix or remove it") from None
            if not isinstance(record, dict) or not isinstance(record.get("file"), str):
                raise StyleBoostError(f'{path} line {number} has no "file" field; fix or remove it')
            records[record["file"]] = record
    return records


def existing_record(out: Path, job: ImageJob, records: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record of an image already on disk: its metadata line, else the copy in its PNG text."""
    if job.file in records:
        return records[job.file]
    from PIL import Image

    try:
        with Image.open(out / job.file) as image:
            text = getattr(image, "text", {}) or {}
            return json.loads(text["styleboost"]) if "styleboost" in text else None
    except (OSError, ValueError):
        return None


def check_same_settings(record: dict[str, Any] | None, wanted: dict[str, Any], file: str) -> None:
    """Refuse to count an existing image as done when it was made differently."""
    if record is None:
        raise StyleBoostError(f"{file} exists but has no metadata; use another --out or --overwrite")
    for key in _SETTING_KEYS:
        if key in wanted and record.get(key) != wanted[key]:
            raise StyleBoostError(
                f"{file} was made with {key}={record.get(key)!r}, not {wanted[key]!r}; use another --out or --overwrite"
            )


# ----------------------------------------------------------------------------- outputs


def png_info(record: dict[str, Any]):
    """PNG text chunks: readable settings plus the whole record as JSON."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key in ("prompt", "seed", "model", "lora", "embeddings", "steps", "guidance", "scheduler", "negative_prompt"):
        info.add_text(key, "" if record.get(key) is None else str(record[key]))
    info.add_text("styleboost", json.dumps(record))
    return info


def save_image(image, path: Path, record: dict[str, Any]) -> None:
    """Write a PNG under a temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(image, path, pnginfo=png_info(record))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def drop_metadata(out: Path, files: set[str]) -> None:
    """Remove the metadata lines of images about to be made again (--overwrite)."""
    path = out / "metadata.jsonl"
    if not files or not path.is_file():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = [line for line in lines if json.loads(line).get("file") not in files]
    write_text_atomic(path, "".join(line + "\n" for line in keep))


def save_grid(out: Path, jobs: list[ImageJob]) -> Path:
    """All images of one prompt side by side (GRID_COLUMNS a row), padded with black."""
    from diffusers.utils import make_image_grid
    from PIL import Image

    images = [Image.open(out / job.file).convert("RGB") for job in jobs]
    cols = min(len(images), GRID_COLUMNS)
    rows = math.ceil(len(images) / cols)
    images += [Image.new("RGB", images[0].size)] * (rows * cols - len(images))
    path = out / "grids" / jobs[0].prompt_set / f"p{jobs[0].prompt_index:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image_atomic(make_image_grid(images, rows=rows, cols=cols), path)
    return path


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
    done, todo = _split_done(out, jobs, settings, config)
    records = dict(done)
    if todo:
        records.update(_run_jobs(config, out, todo, settings, embeddings, pipe))
    _write_grids(out, jobs, changed={job.file for job in todo})
    _write_run_line(out, config, settings, generated=len(todo), skipped=len(done))
    return [records[job.file] for job in jobs]


def embeddings_source(config: GenerateConfig) -> Path | None:
    """The embeddings file to load: --embeddings, else one saved beside the LoRA (LoRA + TI runs)."""
    if config.embeddings:
        return find_embeddings(config.embeddings)
    beside_lora = Path(config.lora).expanduser() / EMBEDDINGS_FILE if config.lora else None
    return beside_lora if beside_lora is not None and beside_lora.is_file() else None


def _split_done(out: Path, jobs: list[ImageJob], settings: dict[str, Any], config: GenerateConfig):
    """({file: record} of images already made with these settings, [jobs still to run])."""
    records = read_metadata(out)
    done, todo = {}, []
    for job in jobs:
        if config.overwrite or not (out / job.file).is_file():
            todo.append(job)
            continue
        record = existing_record(out, job, records)
        wanted = {**settings, "prompt": job.prompt, "seed": job.seed}
        wanted.update({k: v for k, v in (("height", config.height), ("width", config.width)) if v})
        check_same_settings(record, wanted, job.file)
        if job.file not in records:
            append_jsonl(out / "metadata.jsonl", record)
        done[job.file] = record
    if config.overwrite:
        drop_metadata(out, {job.file for job in todo})
    return done, todo


def _run_jobs(config: GenerateConfig, out: Path, todo: list[ImageJob], settings: dict[str, Any], embeddings,
              pipe=None):
    """Load the model (unless given) and make the missing images, batch by batch, recording each as it is saved."""
    from tqdm.auto import tqdm

    if pipe is None:
        pipe = load_generation_pipeline(config, embeddings)
    settings = {**settings, "scheduler": scheduler_name(config, pipe)}
    height = config.height or default_resolution(pipe)
    width = config.width or default_resolution(pipe)
    out.mkdir(parents=True, exist_ok=True)
    records = {}
    with tqdm(total=len(todo), desc="generate", unit="img", disable=not config.progress) as bar:
        for batch in _batches(todo, config.batch_size):
            images = _denoise(pipe, config, batch, settings, height, width)
            for job, image in zip(batch, images):
                record = make_record(job, settings, height, width)
                save_image(image, out / job.file, record)
                append_jsonl(out / "metadata.jsonl", record)
                records[job.file] = record
            bar.update(len(batch))
    return records


def _denoise(pipe, config: GenerateConfig, batch: list[ImageJob], settings: dict[str, Any], height: int, width: int):
    """One pipeline call; a generator per image keeps each image independent of the batch it is in."""
    generators = [torch.Generator("cpu").manual_seed(job.seed) for job in batch]
    negative = settings["negative_prompt"]
    kwargs = {"cross_attention_kwargs": {"scale": config.lora_scale}} if config.lora else {}
    result = pipe(
        prompt=[job.prompt for job in batch],
        negative_prompt=[negative] * len(batch) if negative else None,
        generator=generators,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        height=height,
        width=width,
        **kwargs,
    )
    return result.images


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_grids(out: Path, jobs: list[ImageJob], changed: set[str]) -> None:
    """A grid per prompt whose images changed in this run or whose grid is missing."""
    by_prompt: dict[tuple[str, int], list[ImageJob]] = {}
    for job in jobs:
        by_prompt.setdefault((job.prompt_set, job.prompt_index), []).append(job)
    for (name, index), group in by_prompt.items():
        grid = out / "grids" / name / f"p{index:03d}.png"
        if not grid.is_file() or any(job.file in changed for job in group):
            save_grid(out, group)


def _write_run_line(out: Path, config: GenerateConfig, settings: dict[str, Any], *, generated: int, skipped: int):
    """Append what this run did, with which settings and library versions, to runs.jsonl."""
    import diffusers
    import transformers

    from styleboost import __version__

    out.mkdir(parents=True, exist_ok=True)
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": dataclasses.asdict(config),
        "tokens": settings["tokens"],
        "generated": generated,
        "skipped": skipped,
        "versions": {
            "styleboost": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
        },
    }
    append_jsonl(out / "runs.jsonl", line)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``styleboost generate``; ``--a-b`` is also accepted as ``--a_b``."""
    d = GenerateConfig(model="", prompts=[], out="")
    add = flag_adder(parser)
    add("--model", required=True, help="Hub id, local diffusers folder or one .safetensors checkpoint.")
    add("--prompts", nargs="+", required=True, help="Prompt files: one prompt a line, # comments, [V] = token.")
    add("--out", required=True, help="Output folder (images/, grids/, metadata.jsonl).")
    add("--lora", help=f"LoRA folder with {LORA_FILE} (a training output folder).")
    add("--embeddings", help=f"Learned token embeddings: a .safetensors file or a folder with {EMBEDDINGS_FILE}.")
    add("--token", dest="tokens", nargs="+", help="What [V] ([V1], [V2]...) becomes (default: the tokens in run.json "
        "of --lora/--embeddings/--model, else the embedding tokens, else 'sks').")
    add("--images-per-prompt", type=int, default=d.images_per_prompt, help="Images per prompt; image i uses seed+i.")
    add("--seed", type=int, default=d.seed, help="Seed of the first image of every prompt.")
    add("--scheduler", choices=list(SCHEDULERS), help="Sampler (default: the model's own).")
    add("--steps", type=int, default=d.steps, help="Denoising steps.")
    add("--guidance", type=float, default=d.guidance, help="Classifier-free guidance scale.")
    add("--negative-prompt", help="Negative prompt for every image ([V] is filled too).")
    add("--lora-scale", type=float, default=d.lora_scale, help="Strength of the LoRA (0 = base model).")
    add("--batch-size", type=int, default=d.batch_size, help="Images per pipeline call (does not change images).")
    add("--height", type=int, help="Image height, a multiple of 8 (default: the model's native size).")
    add("--width", type=int, help="Image width, a multiple of 8 (default: the model's native size).")
    add("--fp16", action=argparse.BooleanOptionalAction, help="Half precision (default: on for CUDA).")
    add("--device", help="cuda, cuda:1, cpu, mps... (default: cuda if available).")
    add("--overwrite", action="store_true", help="Make images that already exist in --out again.")
    add("--allow-pickle", action="store_true", help="Allow a pickle (.ckpt) base model; it can run code.")
    add("--model-config", help="For a single-file --model: a local diffusers pipeline folder (or hub id) whose "
        "component configs describe its architecture; needed offline (default: fetched from the hub).")
    add("--no-progress", dest="progress", action="store_false", help="No progress bar.")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> GenerateConfig:
    """The ``GenerateConfig`` of parsed ``styleboost generate`` arguments."""
    return dataclass_from_args(GenerateConfig, args)


def run(args: argparse.Namespace) -> int:
    """``styleboost generate``: make the images and say where they are."""
    records = generate_images(config_from_args(args))
    print(f"{len(records)} images in {args.out} (metadata.jsonl, grids/)")
    return 0
