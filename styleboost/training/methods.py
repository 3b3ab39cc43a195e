"""Training methods as small strategy objects chosen once at start-up.

A method is a list of parts, each making one set of weights trainable: LoRA on the UNet or a
text encoder (peft), the full UNet or text encoder, the UNet's cross-attention key/value projections
(Custom Diffusion), or the bound token embeddings (textual inversion). ``lora_ti`` (pivotal tuning) is
simply LoRA + token embeddings, ``custom_diffusion`` cross-attention K/V + token embeddings. A
text-encoder part is made once per text encoder of the family (SDXL has two).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from styleboost.sd.loading import assemble_pipeline
from styleboost.training.adapters import lora_config_kwargs, lora_variant

if TYPE_CHECKING:  # typing only: the config builds its method to check its settings
    from styleboost.training.config import TrainConfig

UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ADAPTER_NAME = "default"


@dataclass
class Models:
    """The loaded pipeline parts and the token binding a run trains. ``token_ids`` maps each text encoder's
    name to the bound tokens' ids in its tokenizer; SDXL's second encoder and tokenizer are ``*_2``."""

    unet: Any
    text_encoder: Any
    vae: Any
    tokenizer: Any
    noise_scheduler: Any
    inference_scheduler: Any
    family: Any
    pipeline_class: Any
    tokens: list[str]
    token_ids: dict[str, list[int]]
    new_tokens: bool
    text_encoder_2: Any = None
    tokenizer_2: Any = None

    def module(self, target: str):
        return getattr(self, target)

    @property
    def text_encoder_names(self) -> tuple[str, ...]:
        return self.family.text_encoder_names

    def text_encoders(self) -> list[Any]:
        return [self.module(name) for name in self.text_encoder_names]

    def pipeline(self, **replacements: Any):
        """An inference pipeline over these parts (sharing their memory), without a safety checker;
        ``replacements`` (``unet=``, ``text_encoder=``...) replace stored parts (e.g. by the unwrapped
        training modules)."""
        names = ("vae", "unet", *self.text_encoder_names, *self.family.tokenizer_names)
        parts = {name: replacements.get(name, self.module(name)) for name in names}
        return assemble_pipeline(self.pipeline_class, scheduler=self.inference_scheduler, **parts)


@dataclass
class LoRAPart:
    """A peft LoRA adapter on one model's attention projections, or a variant of it (``training.adapters``)."""

    target: str  # "unet" or "text_encoder"
    rank: int
    alpha: float
    dropout: float
    dora: bool = False
    conv_rank: int | None = None  # also LoRA on the UNet's convolutions (LoCon), kxk kernels at this rank
    conv_alpha: float | None = None
    blocks: tuple[str, ...] = ()  # only under these UNet blocks (empty: everywhere)

    def apply(self, models: Models) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        modules = UNET_LORA_TARGETS if self.target == "unet" else TEXT_ENCODER_LORA_TARGETS
        config = LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            init_lora_weights="gaussian",
            **lora_config_kwargs(self, models.module(self.target), modules),
        )
        # peft's own injection, as diffusers' loaders use it, instead of the model's ``add_adapter``:
        # transformers' ``add_adapter`` gates on its own minimum peft version, which has run ahead of the
        # newest peft release (transformers 5.24 demands peft >= 0.22). It also sets ``model.peft_config``.
        inject_adapter_in_model(config, models.module(self.target), adapter_name=ADAPTER_NAME)

    def parameters(self, models: Models) -> list[torch.nn.Parameter]:
        return [p for n, p in models.module(self.target).named_parameters() if "lora_" in n]

    def after_step(self, models: Models) -> None:
        pass


@dataclass
class FullPart:
    """Every weight of one model."""

    target: str

    def apply(self, models: Models) -> None:
        models.module(self.target).requires_grad_(True)

    def parameters(self, models: Models) -> list[torch.nn.Parameter]:
        return list(models.module(self.target).parameters())

    def after_step(self, models: Models) -> None:
        pass


def cross_attention_layers(unet) -> dict[str, Any]:
    """Each cross-attention (``attn2``) layer of the UNet's transformer blocks by its attention processor's name
    (``...attn2.processor``, the names diffusers' Custom Diffusion files use)."""
    return {f"{name}.processor": module for name, module in unet.named_modules()
            if name.endswith(".attn2") and hasattr(module, "to_k")}


@dataclass
class CrossAttentionKVPart:
    """Custom Diffusion (Kumari et al. 2023, diffusers' train_custom_diffusion.py with its default
    ``--freeze_model crossattn_kv``): the key and value projections of every cross-attention layer, which
    read the text conditioning; the rest of the UNet stays frozen."""

    target: str = "unet"

    def apply(self, models: Models) -> None:
        for parameter in self.parameters(models):
            parameter.requires_grad_(True)

    def parameters(self, models: Models) -> list[torch.nn.Parameter]:
        return [p for attn in cross_attention_layers(models.unet).values()
                for p in (*attn.to_k.parameters(), *attn.to_v.parameters())]

    def after_step(self, models: Models) -> None:
        pass


@dataclass
class TokenEmbeddingPart:
    """Textual inversion: only the rows of the bound tokens in the input embedding matrix change.

    The whole matrix takes gradients (it is one tensor); after every optimizer step the rows of
    all other tokens are put back, as diffusers' textual-inversion example does.
    """

    target: str = "text_encoder"
    original: torch.Tensor | None = field(default=None, repr=False)
    keep: torch.Tensor | None = field(default=None, repr=False)

    def _weight(self, models: Models) -> torch.nn.Parameter:
        return models.module(self.target).get_input_embeddings().weight

    def apply(self, models: Models) -> None:
        weight = self._weight(models)
        weight.requires_grad_(True)
        self.original = weight.detach().clone()
        self.keep = torch.ones(weight.shape[0], dtype=torch.bool)
        self.keep[models.token_ids[self.target]] = False

    def parameters(self, models: Models) -> list[torch.nn.Parameter]:
        return [self._weight(models)]

    @torch.no_grad()
    def after_step(self, models: Models) -> None:
        weight = self._weight(models)
        keep = self.keep.to(weight.device)
        weight[keep] = self.original.to(weight.device, weight.dtype)[keep]


@dataclass
class Method:
    """The parts a run trains, and the questions the loop asks about them."""

    name: str
    parts: list[Any]

    @property
    def targets(self) -> list[str]:
        """The models this method trains ("text_encoder", "unet"), each once, in a fixed order."""
        return sorted({p.target for p in self.parts})

    @property
    def trains_text_encoder(self) -> bool:
        return any(p.target.startswith("text_encoder") for p in self.parts)

    def trains(self, target: str) -> bool:
        return any(p.target == target for p in self.parts)

    @property
    def trains_full_unet(self) -> bool:
        return any(isinstance(p, FullPart) and p.target == "unet" for p in self.parts)

    def lora_parts(self) -> list[LoRAPart]:
        return [p for p in self.parts if isinstance(p, LoRAPart)]

    def apply(self, models: Models) -> None:
        for module in (models.unet, models.vae, *models.text_encoders()):
            module.requires_grad_(False)
        for part in self.parts:
            part.apply(models)

    def param_groups(self, models: Models, cfg: TrainConfig, lr: float) -> list[dict]:
        """Optimizer groups: token embeddings (``embedding_lr``) and other text-encoder parts
        (``text_encoder_lr``) may have their own LR, given as is; token rows never decay."""
        groups = []
        for part in self.parts:
            group: dict[str, Any] = {"params": part.parameters(models), "lr": lr}
            if isinstance(part, TokenEmbeddingPart):
                group.update(lr=lr if cfg.embedding_lr is None else cfg.embedding_lr, weight_decay=0.0)
            elif part.target.startswith("text_encoder") and cfg.text_encoder_lr is not None:
                group["lr"] = cfg.text_encoder_lr
            groups.append(group)
        return groups

    def after_step(self, models: Models) -> None:
        for part in self.parts:
            part.after_step(models)


def build_method(cfg: TrainConfig, text_encoders: tuple[str, ...] = ("text_encoder",)) -> Method:
    """The method named by ``cfg.method``, with the text encoder parts ``--train_text_encoder`` asks for;
    token embeddings and text-encoder parts are made for each of ``text_encoders`` (the family's)."""
    alpha = cfg.lora_alpha if cfg.lora_alpha is not None else float(cfg.rank)

    def lora(target: str) -> LoRAPart:
        return LoRAPart(target, cfg.rank, alpha, cfg.lora_dropout, **lora_variant(cfg, target))

    embeddings = [TokenEmbeddingPart(name) for name in text_encoders]
    text_encoder_part = {"lora": lora, "lora_ti": lora, "full": FullPart}.get(cfg.method)
    parts: list[Any] = {
        "lora": lambda: [lora("unet")],
        "full": lambda: [FullPart("unet")],
        "textual_inversion": lambda: embeddings,
        "lora_ti": lambda: [lora("unet"), *embeddings],
        "custom_diffusion": lambda: [CrossAttentionKVPart(), *embeddings],
    }[cfg.method]()
    if cfg.train_text_encoder and text_encoder_part is not None:
        parts += [text_encoder_part(name) for name in text_encoders]
    return Method(cfg.method, parts)
