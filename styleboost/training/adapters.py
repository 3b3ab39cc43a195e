"""LoRA variants a LoRA part can take: DoRA, LoRA on the UNet's convolutions (LoCon), LoRA kept to named UNet blocks.

Each turns into arguments of peft's ``LoraConfig``, so plain diffusers reloads the result from the adapter
metadata written beside the weights. The module names come from the loaded UNet (``named_modules``), so any
``UNet2DConditionModel`` works, SD 1.x/2.x and SDXL alike:

- DoRA: ``use_dora`` (a trained magnitude per output channel, ``lora_magnitude_vector``).
- Convolutions, as kohya's LoCon (``networks.lora`` with ``conv_dim``) chooses them: every ``Conv2d`` of a
  ``ResnetBlock2D`` (``conv1``, ``conv2``, ``conv_shortcut``) and of a ``Downsample2D``/``Upsample2D``
  (``conv``); not ``conv_in``/``conv_out``, which kohya and LyCORIS leave out too (they read and write the
  latents themselves). Kernels larger than 1x1 take the conv rank and alpha; 1x1 shortcuts take the linear
  rank and alpha, as in kohya. (kohya's LoCon also trains the ResNets' ``time_emb_proj``, a Linear; we keep
  to convolutions.)
- Blocks: only modules whose name is a block name or starts with it (``up_blocks.1.attentions.0``,
  ``mid_block``); ``b-lora`` is B-LoRA's style block of SDXL.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import torch

from styleboost.core.errors import StyleBoostError

if TYPE_CHECKING:  # typing only: the parts and the config import this module
    from styleboost.training.config import TrainConfig
    from styleboost.training.methods import LoRAPart

# B-LoRA (Frenkel et al., 2024): in SDXL's UNet the content of an image lives in up_blocks.0.attentions.0 and its
# style in up_blocks.0.attentions.1; a style LoRA trains the style block only.
BLOCK_PRESETS = {"b-lora": "up_blocks.0.attentions.1"}
CONV_PARENTS = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
BLOCK_NAME = re.compile(r"^((down|up)_blocks\.\d+|mid_block)(\.(attentions|resnets|downsamplers|upsamplers)\.\d+)?")
LISTED_BLOCKS = 6  # valid block names an error shows


def lora_variant(cfg: TrainConfig, target: str) -> dict[str, Any]:
    """The variant fields of the ``LoRAPart`` on ``target``: DoRA on every part; convolutions and blocks on the UNet."""
    if target != "unet":
        return {"dora": cfg.use_dora}
    conv_rank = conv_alpha = None
    if cfg.lora_conv:
        alpha = cfg.lora_alpha if cfg.lora_alpha is not None else float(cfg.rank)
        conv_rank = cfg.conv_rank or cfg.rank
        conv_alpha = cfg.conv_alpha if cfg.conv_alpha is not None else alpha * conv_rank / cfg.rank
    return {"dora": cfg.use_dora, "conv_rank": conv_rank, "conv_alpha": conv_alpha, "blocks": tuple(cfg.lora_blocks)}


def lora_config_kwargs(part: LoRAPart, model, targets: list[str]) -> dict[str, Any]:
    """``LoraConfig`` arguments for ``part`` on ``model``: the module names (the ``targets`` suffixes, the
    convolutions, only under the blocks), DoRA, and the conv rank/alpha of the convolutions wider than 1x1."""
    kwargs: dict[str, Any] = {"use_dora": part.dora, "target_modules": targets}
    conv = part.conv_rank is not None
    if not conv and not part.blocks:
        return kwargs
    names = target_names(model, targets, conv=conv, blocks=part.blocks)
    kwargs["target_modules"] = names
    if conv and (part.conv_rank, part.conv_alpha) != (part.rank, part.alpha):
        wide = [re.escape(n) for n in names if is_wide_conv(model.get_submodule(n))]  # peft reads keys as regexes
        kwargs["rank_pattern"] = dict.fromkeys(wide, part.conv_rank)
        kwargs["alpha_pattern"] = dict.fromkeys(wide, part.conv_alpha)
    return kwargs


def is_wide_conv(module) -> bool:
    return isinstance(module, torch.nn.Conv2d) and tuple(module.kernel_size) != (1, 1)


def attention_names(model, targets: list[str]) -> list[str]:
    """Modules named by ``targets`` as peft matches them: the whole name or its ending after a dot."""
    return [n for n, _ in model.named_modules() if any(n == t or n.endswith(f".{t}") for t in targets)]


def conv_names(model) -> list[str]:
    """Every ``Conv2d`` directly inside a ResNet block or a down/upsampler (kohya's LoCon convolutions)."""
    kinds = {name: type(module).__name__ for name, module in model.named_modules()}
    return [n for n, m in model.named_modules()
            if isinstance(m, torch.nn.Conv2d) and kinds.get(n.rpartition(".")[0]) in CONV_PARENTS]


def target_names(model, targets: list[str], *, conv: bool, blocks: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The names of the modules LoRA goes on, in the model's order; with ``blocks``, only those under one of them
    (presets expanded). A block that holds none is a one-line error naming ``--lora_blocks``."""
    names = attention_names(model, targets) + (conv_names(model) if conv else [])
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    names = sorted(set(names), key=order.__getitem__)
    if not blocks:
        return names
    chosen = []
    for given in blocks:
        block = BLOCK_PRESETS.get(given, given).rstrip(".")
        under = [n for n in names if n == block or n.startswith(f"{block}.")]
        if not under:
            raise block_error(given, block, names, conv)
        chosen += under
    return sorted(set(chosen), key=order.__getitem__)


def block_error(given: str, block: str, names: list[str], conv: bool) -> StyleBoostError:
    blocks = list(dict.fromkeys(m.group(0) for m in map(BLOCK_NAME.match, names) if m))
    shown = ", ".join(blocks[:LISTED_BLOCKS]) + (", ..." if len(blocks) > LISTED_BLOCKS else "")
    if given in BLOCK_PRESETS:
        return StyleBoostError(
            f"--lora_blocks {given} is an SDXL preset: B-LoRA's style block {block}, which this UNet does not have "
            f"(train on an SDXL base, or name this UNet's blocks: {shown})"
        )
    trained = "attention projection or convolution" if conv else "attention projection"
    return StyleBoostError(f"--lora_blocks {given}: no {trained} LoRA trains is under it in this UNet; "
                           f"blocks that have some: {shown}")


def kohya_adapter_metadata(parts: list[LoRAPart]) -> dict[str, str]:
    """The kohya file's ``ss_network_args`` for these LoRA parts: ``conv_dim``/``conv_alpha`` (strings, as kohya
    writes them) for LoCon, which kohya's ``networks.lora`` trains and loads; none for plain LoRA."""
    conv = next((p for p in parts if p.conv_rank is not None), None)
    if conv is None:
        return {}
    args = {"conv_dim": str(conv.conv_rank), "conv_alpha": f"{conv.conv_alpha:g}"}
    return {"ss_network_args": json.dumps(args)}
