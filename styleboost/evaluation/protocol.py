"""An evaluation protocol as data, and running it: generate with each trained model, then evaluate them together.

A protocol (``eval/protocols/*.yaml``) fixes what a comparison needs to be fair: the prompt sets,
images per prompt, seeds and sampler, and which metrics with which models. Those settings are fields
of ``GenerateConfig`` and ``EvaluateConfig``; ``Protocol`` takes them from there (type, default and
help), so a protocol key means what the flag of the same name means. ``run_protocol`` makes the
images of every run into ``<out>/generated/<run>/`` (images already there are kept, so an
interrupted protocol resumes) and writes the report into ``<out>/report/``; ``run`` is
``styleboost protocol``, whose flags are the fields of ``ProtocolRunConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import load_yaml_settings, option
from styleboost.evaluation.config import EvaluateConfig, parse_runs
from styleboost.evaluation.evaluate import evaluate
from styleboost.evaluation.models import EvalModels
from styleboost.generation.generate import GenerateConfig, generate_images
from styleboost.sd.weights import CUSTOM_DIFFUSION_FILE, EMBEDDINGS_FILE, LORA_FILE

# The settings a protocol fixes. ``seed`` is one key for both: the seed of every prompt's first image and of
# the KID subsets.
GENERATION_KEYS = ("images_per_prompt", "seed", "steps", "guidance", "scheduler", "negative_prompt", "height", "width")
EVALUATION_KEYS = ("metrics", "clip", "encoder", "fid_features", "kid_subsets", "kid_subset_size", "image_size")


def config_field(cls: type, name: str) -> dataclasses.Field:
    """The field ``name`` of the config dataclass ``cls``."""
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def borrowed_fields(cls: type, names: Sequence[str]) -> list[tuple[str, Any, dataclasses.Field]]:
    """``(name, type, field)`` of each named field of ``cls``, with its default and help: for ``make_dataclass``."""
    fields = [config_field(cls, name) for name in names]
    return [(f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                                metadata=f.metadata)) for f in fields]


class ProtocolMethods:
    """What a ``Protocol`` does with its settings (its fields are made from the two configs below)."""

    def prompt_files(self) -> list[str]:
        """The prompt files, found relative to the protocol file, its ancestors, or the working folder."""
        return [str(resolve_near(p, self.source)) for p in self.prompt_sets]

    def settings_for(self, cls: type) -> dict[str, Any]:
        """The protocol's values of the fields of ``cls`` (``GenerateConfig`` or ``EvaluateConfig``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in names}

    def record(self) -> dict[str, Any]:
        """What ``report.json`` says of the protocol: every setting, and the file it was read from."""
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k != "source"}
        return {**settings, "file": str(self.source)}


Protocol = dataclasses.make_dataclass(
    "Protocol",
    [
        ("name", "str", option("protocol", "Name shown in the report.")),
        ("prompt_sets", "list[str]",
         option([], "Prompt files (relative to the protocol file or an ancestor folder of it).")),
        *borrowed_fields(GenerateConfig, GENERATION_KEYS),
        *borrowed_fields(EvaluateConfig, EVALUATION_KEYS),
        ("source", "Path | None",
         dataclasses.field(default=None, repr=False, metadata={"help": "The file it was read from.", "cli": False})),
    ],
    bases=(ProtocolMethods,),
    namespace={"__module__": __name__,
               "__doc__": "What every run of a comparison is generated and scored with (the keys of a protocol YAML)."},
)


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
    """What a run folder holds: a LoRA, learned embeddings (or both: lora_ti; Custom Diffusion's attention
    processors go as its LoRA), or a full diffusers pipeline.
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
    lora = str(path) if any((path / f).is_file() for f in (LORA_FILE, CUSTOM_DIFFUSION_FILE)) else None
    embeddings = str(path / EMBEDDINGS_FILE) if (path / EMBEDDINGS_FILE).is_file() else None
    if not (lora or embeddings):
        raise StyleBoostError(f"--run {name}={folder}: no {LORA_FILE}, {CUSTOM_DIFFUSION_FILE}, {EMBEDDINGS_FILE} "
                              "or model_index.json (a training output folder?)")
    if not base_model:
        raise StyleBoostError(f"--run {name}={folder} holds adapter weights; name the base model with --model")
    return RunSource(name, base_model, lora, embeddings)


def parse_run_sources(specs: list[str], base_model: str | None) -> list[RunSource]:
    """The ``NAME=DIR`` run specs (``NAME=``: the base model) as the sources their images are made from."""
    return [run_source(name, folder, base_model) for name, folder in parse_runs(specs, allow_empty_dir=True)]


def generate_run(protocol: Protocol, source: RunSource, out: Path, settings: dict[str, Any]) -> Path:
    """Make (or complete) one run's images with the protocol's prompts, seeds and sampler."""
    folder = out / "generated" / source.name
    config = GenerateConfig(
        model=source.model, prompts=protocol.prompt_files(), out=str(folder), lora=source.lora,
        embeddings=source.embeddings, **protocol.settings_for(GenerateConfig), **settings,
    )
    config.validate()
    generate_images(config)
    return folder


def generate_runs(protocol: Protocol, runs: list[str], out: str | Path, model: str | None = None,
                  generate_settings: dict[str, Any] | None = None,
                  run_settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """Make every run's images into ``<out>/generated/<run>/``; {run name: its folder}. ``run_settings`` adds
    ``GenerateConfig`` settings to the named runs only (e.g. a Multi-StyleForge run's ``set_tokens``)."""
    out, extra = Path(out).expanduser(), run_settings or {}
    return {s.name: generate_run(protocol, s, out, {**(generate_settings or {}), **extra.get(s.name, {})})
            for s in parse_run_sources(runs, model)}


def evaluate_runs(protocol: Protocol, folders: dict[str, Path], styleref: str, out: str | Path,
                  evaluate_settings: dict[str, Any] | None = None, models: EvalModels | None = None) -> dict[str, Any]:
    """Score the runs' image folders (generated, or restyled in the same record format) in one report
    (``<out>/report``) with the protocol's metrics."""
    config = EvaluateConfig(
        runs=[f"{name}={folder}" for name, folder in folders.items()], styleref=styleref,
        out=str(Path(out).expanduser() / "report"), **protocol.settings_for(EvaluateConfig),
        **(evaluate_settings or {}),
    )
    return evaluate(config, models, context={"protocol": protocol.record()})


def run_protocol(protocol: Protocol, runs: list[str], styleref: str, out: str | Path, model: str | None = None,
                 generate_settings: dict[str, Any] | None = None, evaluate_settings: dict[str, Any] | None = None,
                 models: EvalModels | None = None) -> dict[str, Any]:
    """Generate every run's images, then evaluate all runs in one report (``<out>/report``)."""
    folders = generate_runs(protocol, runs, out, model, generate_settings)
    return evaluate_runs(protocol, folders, styleref, out, evaluate_settings, models)


# ----------------------------------------------------------------------------- command line


@dataclass
class ProtocolRunConfig:
    """Which protocol, which runs, and how to run them (the flags of ``styleboost protocol``)."""

    protocol: str = option(help="Protocol YAML (eval/protocols/*.yaml).")
    runs: list[str] = option(
        help="A run: its training output folder (LoRA, embeddings or full pipeline); NAME= for the base model.",
        flags=("--run",), action="append", metavar="NAME=DIR")
    styleref: str = option(help="The StyleRef folder the runs were trained on.")
    out: str = option(help="Output folder: generated/<run>/ and report/.")
    model: str | None = option(
        None, "Base model (hub id, diffusers folder or .safetensors) the LoRA / embeddings runs load onto.")
    tokens: list[str] | None = option(None, "What [V] becomes (default: from each run's run.json).", flags=("--token",))
    batch_size: int = option(config_field(GenerateConfig, "batch_size").default, "Images per pipeline call.")
    device: str | None = option(None, "cuda, cpu... (default: cuda if available).")
    fp16: bool | None = option(None, "Half precision (default: on for CUDA).")
    cache_dir: str | None = option(None, "Embedding cache folder ('none' to turn it off).")
    overwrite: bool = option(False, "Replace a report already in <out>/report (images are kept).")
    progress: bool = option(True, "Progress bars (--no-progress: none).")

    def generate_settings(self) -> dict[str, Any]:
        """What every run's ``GenerateConfig`` takes from these flags."""
        return {"device": self.device, "fp16": self.fp16, "progress": self.progress, "tokens": self.tokens,
                "batch_size": self.batch_size}

    def evaluate_settings(self) -> dict[str, Any]:
        """What the ``EvaluateConfig`` takes from these flags."""
        return {"device": self.device, "fp16": self.fp16, "progress": self.progress, "cache_dir": self.cache_dir,
                "overwrite": self.overwrite}


def run(config: ProtocolRunConfig) -> int:
    """``styleboost protocol``: generate and evaluate every run, and say where the report is."""
    protocol = load_protocol(config.protocol)
    report = run_protocol(protocol, config.runs, config.styleref, config.out, model=config.model,
                          generate_settings=config.generate_settings(), evaluate_settings=config.evaluate_settings())
    print(f"protocol {protocol.name}: {len(report['runs'])} run(s); report in {Path(config.out) / 'report'}")
    return 0
