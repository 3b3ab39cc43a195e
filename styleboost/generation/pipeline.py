"""The pipeline ``styleboost generate`` draws with: the base model on its device and dtype, the LoRA (or a Custom
Diffusion run's attention processors) and learned embeddings loaded on top, and the sampler (``--scheduler``)
swapped in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.core.notice import notice
from styleboost.sd.loading import load_pipeline
from styleboost.sd.weights import CUSTOM_DIFFUSION_FILE, find_lora_weights, load_embeddings

if TYPE_CHECKING:  # typing only: generate imports this module (its config checks names against SCHEDULERS)
    from styleboost.generation.generate import GenerateConfig

# --scheduler name -> (diffusers class name, extra config for from_config). The DPM-Solver entries name their
# algorithm and sigmas: from_config keeps those of the model's own scheduler (an SDE one, say) otherwise.
_DPM = {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", _DPM),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {**_DPM, "use_karras_sigmas": True}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {**_DPM, "algorithm_type": "sde-dpmsolver++"}),
    "unipc": ("UniPCMultistepScheduler", {}),
}


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
        import diffusers  # deferred: diffusers takes seconds to import

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
    """Load LoRA weights (UNet and, when trained, text encoder) into the pipeline; a Custom Diffusion file as
    its attention processors (diffusers 0.42 installs them only when given the pipeline, ``_pipeline``)."""
    weights = find_lora_weights(path)
    try:
        if weights.name == CUSTOM_DIFFUSION_FILE:
            pipe.unet.load_attn_procs(str(weights.parent), weight_name=weights.name, _pipeline=pipe)
            return
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
