"""Getting a pipeline: loading a base model from a hub id, a local diffusers folder or one checkpoint file, or
assembling one from parts already in memory.

Every loader takes a local path as well as a hub id. Pickle checkpoints (.ckpt, .bin, .pt) are
refused unless the caller opts in, because loading them can run arbitrary code. A single checkpoint file
holds weights only; diffusers builds the pipeline from the component configs of a reference pipeline,
fetched from the hub unless a local folder (or hub id) is given as its config.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from styleboost.core.errors import StyleBoostError, first_line

PICKLE_SUFFIXES = (".ckpt", ".bin", ".pt", ".pth")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def resolve_model_source(name_or_path: str, *, allow_pickle: bool = False) -> tuple[str, str]:
    """Classify ``name_or_path`` as ('folder'|'single_file'|'hub', path) or raise a one-line error."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise StyleBoostError(f"{path} is not a diffusers pipeline folder (no model_index.json)")
        return "folder", str(path)
    if path.is_file():
        if path.suffix == ".safetensors":
            return "single_file", str(path)
        if path.suffix in PICKLE_SUFFIXES:
            if not allow_pickle:
                raise StyleBoostError(
                    f"{path} is a pickle checkpoint, which can run code when loaded; "
                    "convert it to .safetensors or pass --allow_pickle"
                )
            return "single_file", str(path)
        raise StyleBoostError(f"{path}: unknown model file type (expected .safetensors)")
    if _HUB_ID.match(name_or_path) and not name_or_path.startswith((".", "/")):
        return "hub", name_or_path
    raise StyleBoostError(f"model not found: {name_or_path} (not a local folder, file or hub id)")


def source_name(path: str | os.PathLike | None) -> str | None:
    """A local path made absolute (so records, caches and snippets match from any folder); a hub id as given."""
    if path is None:
        return None
    local = Path(path).expanduser()
    return str(local.resolve()) if local.exists() else str(path)


def dtype_kwargs(dtype: torch.dtype | None) -> dict[str, torch.dtype]:
    """The dtype keyword of diffusers' ``from_pretrained``/``from_single_file``: ``dtype`` from diffusers 0.40
    (where ``torch_dtype`` became deprecated and warns), ``torch_dtype`` before it."""
    if dtype is None:
        return {}
    import diffusers  # deferred: diffusers takes seconds to import
    from packaging.version import Version

    return {"dtype" if Version(diffusers.__version__).release >= (0, 40) else "torch_dtype": dtype}


def single_file_config_source(config: str, *, flag: str) -> str:
    """Check the ``config`` of a single-file checkpoint: a local diffusers pipeline folder or a hub id."""
    try:
        kind, source = resolve_model_source(config)
    except StyleBoostError as err:
        raise StyleBoostError(f"{flag}: {err}") from None
    if kind == "single_file":
        raise StyleBoostError(f"{flag} {config}: expected a diffusers pipeline folder or hub id, not a checkpoint file")
    return source


def load_pipeline(
    name_or_path: str,
    *,
    torch_dtype: torch.dtype | None = None,
    allow_pickle: bool = False,
    pipeline_class: Any = None,
    single_file_config: str | None = None,
    config_flag: str = "--single_file_config",
):
    """Load a text-to-image pipeline without its safety checker, whatever form the model is in.

    ``single_file_config`` (used for a single checkpoint file only) is the pipeline folder or hub id whose
    component configs describe the checkpoint; ``config_flag`` is the setting's name in error messages."""
    from diffusers import DiffusionPipeline  # deferred: diffusers takes seconds to import
    from huggingface_hub.utils import LocalEntryNotFoundError

    kind, source = resolve_model_source(name_or_path, allow_pickle=allow_pickle)
    kwargs: dict[str, Any] = dtype_kwargs(torch_dtype)
    try:
        if kind == "single_file":
            cls = pipeline_class or single_file_pipeline_class(source, single_file_config)
            if single_file_config is None:
                try:
                    return cls.from_single_file(source, **kwargs)
                except LocalEntryNotFoundError:  # offline, or the hub could not be reached
                    raise StyleBoostError(
                        f"{source}: the hub cannot be reached for the configs of this checkpoint's architecture; "
                        f"pass {config_flag} with a local diffusers pipeline folder of the same architecture"
                    ) from None
            config = single_file_config_source(single_file_config, flag=config_flag)
            return cls.from_single_file(source, config=config, **kwargs)
        cls = pipeline_class or DiffusionPipeline
        index = _read_model_index(source) if kind == "folder" else {}
        if "safety_checker" in index or kind == "hub":
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        raise StyleBoostError(f"could not load model {name_or_path}: {first_line(err)}") from None


SDXL_CHECKPOINT_KEY = "conditioner.embedders.1.model.positional_embedding"  # SDXL's OpenCLIP bigG, as diffusers tells


def single_file_pipeline_class(checkpoint: str, config: str | None):
    """The pipeline class of a single checkpoint file: the class its ``config`` folder names, else SDXL when the
    file holds SDXL's second text encoder (read from a safetensors header only), else Stable Diffusion 1.x/2.x."""
    import diffusers  # deferred: diffusers takes seconds to import

    config_index = Path(config).expanduser() / "model_index.json" if config else None
    if config_index is not None and config_index.is_file():
        name = json.loads(config_index.read_text()).get("_class_name")
        if name in ("StableDiffusionPipeline", "StableDiffusionXLPipeline"):
            return getattr(diffusers, name)
    if checkpoint.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(checkpoint, framework="pt") as handle:
            if SDXL_CHECKPOINT_KEY in handle.keys():
                return diffusers.StableDiffusionXLPipeline
    return diffusers.StableDiffusionPipeline


def assemble_pipeline(pipeline_class: Any = None, **parts: Any):
    """A text-to-image pipeline over already built ``parts`` (vae, text encoder(s), tokenizer(s), unet, scheduler),
    sharing their memory, without a safety checker (SDXL has none); ``pipeline_class`` defaults to
    ``StableDiffusionPipeline``."""
    import inspect

    from diffusers import StableDiffusionPipeline  # deferred: diffusers takes seconds to import

    cls = pipeline_class or StableDiffusionPipeline
    if "safety_checker" in inspect.signature(cls.__init__).parameters:
        parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return cls(**parts)


def _read_model_index(folder: str) -> dict[str, Any]:
    return json.loads((Path(folder) / "model_index.json").read_text())


def default_resolution(pipe) -> int:
    """The pipeline's native image size: UNet sample size times the VAE's downscale factor."""
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def load_vae(name_or_path: str, *, torch_dtype: torch.dtype | None = None,
             flag: str = "--pretrained_vae_model_name_or_path"):
    """A VAE to use instead of the pipeline's (e.g. ``madebyollin/sdxl-vae-fp16-fix``): a hub id, a local VAE
    folder (``config.json`` + weights) or a pipeline folder (its ``vae/``)."""
    from diffusers import AutoencoderKL  # deferred: diffusers takes seconds to import

    path = Path(name_or_path).expanduser()
    kwargs: dict[str, Any] = dtype_kwargs(torch_dtype)
    if path.is_dir():
        if (path / "model_index.json").is_file():
            kwargs["subfolder"] = "vae"
        elif not (path / "config.json").is_file():
            raise StyleBoostError(f"{flag} {path}: not a VAE folder (no config.json) or pipeline folder")
    elif path.exists() or not _HUB_ID.match(name_or_path):
        raise StyleBoostError(f"{flag} {name_or_path}: expected a VAE folder, a pipeline folder or a hub id")
    try:
        return AutoencoderKL.from_pretrained(str(path) if path.is_dir() else name_or_path, **kwargs)
    except (OSError, ValueError) as err:
        raise StyleBoostError(f"{flag}: could not load VAE {name_or_path}: {first_line(err)}") from None
