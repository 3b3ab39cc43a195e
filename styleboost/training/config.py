"""Training configuration as data: ``TrainConfig``, every setting of a run, and its checks.

The saved config (in ``run.json``) is the exact record of a run. Flags and YAML keys come from the
fields through ``core.settings``, so a YAML key and a flag always mean the same thing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from styleboost.core.errors import StyleBoostError
from styleboost.core.images import RGB, parse_background
from styleboost.core.notice import notice
from styleboost.core.settings import build_parser, comma_list, option, settings_from_namespace
from styleboost.training.methods import TokenEmbeddingPart, build_method
from styleboost.training.validation_metrics import METRICS as VALIDATION_METRICS

METHODS = ("lora", "full", "textual_inversion", "lora_ti", "custom_diffusion")
AUX_MODES = ("curated", "generated", "none")


@dataclass
class TrainConfig:
    """Every setting of a StyleBoost training run."""

    # model
    pretrained_model_name_or_path: str | None = option(
        None, "Hub id, local diffusers folder or one .safetensors checkpoint (default: the pre-trained toy world "
        "shipped in styleboost/toyworld/pretrained)."
    )
    allow_pickle: bool = option(False, "Allow loading pickle (.ckpt/.bin) checkpoints; they can run code.")
    single_file_config: str | None = option(
        None, "For a single-file checkpoint: a local diffusers pipeline folder (or hub id) whose component configs "
        "describe its architecture; needed offline (default: diffusers fetches a matching one from the hub)."
    )
    pretrained_vae_model_name_or_path: str | None = option(
        None, "A VAE to train and sample with instead of the model's (hub id, VAE folder or pipeline folder), e.g. "
        "madebyollin/sdxl-vae-fp16-fix. The VAE always runs in fp32 during training (SDXL's gives NaN in fp16)."
    )
    # data
    styleref_dir: str | None = option(
        None, "Folder of StyleRef images; a same-name .txt is an image's caption (default: the embedded default's "
        "held-out toy-world style, with its curated Aux set)."
    )
    styleref_prompt: str = option("[V] style", "Prompt for StyleRef images without a caption; [V] is the token.")
    aux_dir: str | None = option(None, "Folder of curated Aux images (people in helpful styles).")
    aux_prompt: str = option("a photo of a person", "Prompt for Aux images without a caption.")
    aux_mode: str = option(
        "curated", "curated: train --aux_dir through the prior term; generated: classic DreamBooth class images "
        "from the frozen model; none: no prior term.", choices=AUX_MODES
    )
    num_aux_images: int = option(20, "How many class images aux_mode=generated makes.")
    aux_inference_steps: int = option(30, "Denoising steps for generated class images.")
    prior_loss_weight: float = option(1.0, "Weight w in loss = MSE(instance) + w * MSE(aux).")
    styleref_repeats: int = option(
        1, "Draws of each StyleRef image per epoch, as kohya's N_folder repeats. An epoch pairs max(StyleRef images x "
        "N, Aux images x --aux_repeats) StyleRef draws with as many Aux draws: the set that fills it shows each image "
        "exactly its repeats, the other is cycled in order to keep up, so equal products (20 StyleRef x 2 = 40 Aux x 1) "
        "draw every image exactly its repeats (default 1: an epoch as long as the larger set)."
    )
    aux_repeats: int = option(1, "Draws of each Aux image per epoch (see --styleref_repeats).")
    # token binding
    token: list[str] = option(["sks"], "Existing rare token(s) bound to the style; [V1], [V2]... pick one by index.")
    new_token: list[str] = option([], "New token(s) added to the tokenizer (overrides --token), e.g. '<v1-style>'.")
    initializer_token: str = option("painting", "Existing word whose embedding initialises each new token.")
    # method
    method: str = option(
        "lora", "What is trained. custom_diffusion: the UNet's cross-attention key/value projections and the "
        "--new_token embeddings (Kumari et al.; its paper and diffusers' script use about 1e-5 with --scale_lr).",
        choices=METHODS
    )
    rank: int = option(4, "LoRA rank.")
    lora_alpha: float | None = option(None, "LoRA alpha (default: the rank, i.e. scale 1).")
    lora_dropout: float = option(0.0, "LoRA dropout.")
    train_text_encoder: bool = option(False, "Also train the text encoder (LoRA for lora methods, full for full).")
    use_dora: bool = option(
        False, "DoRA (peft's weight-decomposed LoRA: a trained magnitude per output channel) on every LoRA part. "
        "Not with --export_kohya: diffusers' kohya loader drops DoRA's dora_scale keys."
    )
    lora_conv: bool = option(
        False, "Also LoRA on the UNet's convolutions (LoCon, as kohya's conv_dim): conv1, conv2 and conv_shortcut of "
        "every ResNet block and the down/upsamplers' conv; not conv_in/conv_out."
    )
    conv_rank: int | None = option(None, "Rank of the 3x3 convolutions with --lora_conv (default: --rank; 1x1 "
                                   "shortcuts keep --rank, as in kohya).")
    conv_alpha: float | None = option(
        None, "Alpha of the 3x3 convolutions with --lora_conv (default: the scale of --lora_alpha / --rank, i.e. "
        "--lora_alpha when --conv_rank is the rank)."
    )
    lora_blocks: list[str] = option(
        [], "Only UNet modules under these blocks get LoRA, e.g. up_blocks.1.attentions.0 mid_block; b-lora: SDXL's "
        "B-LoRA style block up_blocks.0.attentions.1 (default: the whole UNet; a text-encoder LoRA is not restricted)."
    )
    # optimisation
    learning_rate: float = option(1e-4, "Learning rate.")
    text_encoder_lr: float | None = option(None, "Learning rate of text-encoder parameters (default: --learning_rate).")
    embedding_lr: float | None = option(
        None, "Learning rate of the new token embeddings of textual_inversion and lora_ti (default: --learning_rate)."
    )
    scale_lr: bool = option(False, "Multiply the LR by batch size x accumulation x processes.")
    lr_scheduler: str = option("constant", "diffusers LR schedule: constant, linear, cosine, constant_with_warmup...")
    lr_warmup_steps: int = option(0, "Warm-up steps of the LR schedule.")
    adam_beta1: float = option(0.9, "Adam beta1.")
    adam_beta2: float = option(0.999, "Adam beta2.")
    adam_weight_decay: float = option(1e-2, "AdamW weight decay (textual-inversion rows never decay).")
    adam_epsilon: float = option(1e-8, "Adam epsilon.")
    max_grad_norm: float = option(1.0, "Gradient clipping norm.")
    use_8bit_adam: bool = option(False, "8-bit AdamW from bitsandbytes (falls back to AdamW if not installed).")
    max_train_steps: int = option(400, "Optimizer steps to train.")
    train_batch_size: int = option(1, "StyleRef images per step (Aux adds as many again).")
    gradient_accumulation_steps: int = option(1, "Micro-batches per optimizer step.")
    gradient_checkpointing: bool = option(False, "Trade compute for memory in the UNet (and trained text encoder).")
    mixed_precision: str | None = option(
        None, "no, fp16 or bf16 (default: accelerate's config).", choices=("no", "fp16", "bf16")
    )
    enable_xformers_memory_efficient_attention: bool = option(
        False, "Use xformers attention when installed (default attention is PyTorch SDPA)."
    )
    snr_gamma: float | None = option(None, "Min-SNR loss weighting gamma (5.0 is typical).")
    noise_offset: float = option(0.0, "Noise offset (0.05-0.1 helps very dark or bright styles).")
    seed: int = option(0, "Seed for data order, augmentation, noise and validation.")
    # images
    resolution: int | None = option(None, "Training resolution, a multiple of 8 (default: the model's native size).")
    center_crop: bool = option(False, "Center crop instead of a random crop.")
    random_flip: bool = option(False, "Random horizontal flips.")
    image_background: str = option(
        "white", "Colour transparent pixels (RGBA, LA, palette transparency) are composited on: a colour name or "
        "#rrggbb."
    )
    caption_dropout: float = option(
        0.0, "Probability of training an image (StyleRef or Aux) with an empty caption, as kohya's "
        "caption_dropout_rate: keeps the unconditional prediction, which classifier-free guidance uses, in training."
    )
    cache_latents: bool = option(False, "Encode every image once with the VAE before training.")
    dataloader_num_workers: int = option(0, "DataLoader worker processes.")
    # outputs
    output_dir: str | None = option(None, "Output folder (default: runs/styleboost-<time>).")
    overwrite: bool = option(False, "Replace a run already in --output_dir.")
    checkpointing_steps: int = option(500, "Save resumable state every N steps.")
    checkpoints_total_limit: int | None = option(None, "Keep at most N checkpoints.")
    resume_from_checkpoint: str | None = option(None, "'latest' or a checkpoint folder to resume from.")
    validation_prompts: str | None = option(None, "Prompt file ([V] = token) for validation images.")
    validation_steps: int | None = option(None, "Validate every N steps (and at the end unless --skip_final_samples).")
    num_validation_images: int | None = option(None, "Images per validation prompt (default: 2; 1 when training on a CPU).")
    validation_inference_steps: int | None = option(
        None, "Denoising steps of validation images (default: 25; 10 when training on a CPU)."
    )
    skip_final_samples: bool = option(False, "Draw no validation images at the end: no samples.png, none in the model card.")
    validation_metrics: list[str] = option(
        [], "Comma-separated scores of the validation images (style, clip_t): logged per validation, with the base "
        "model's at step 0, and best/ keeps the step of the highest style score whose CLIP-T stays within "
        "--max_clip_t_drop of the base's.", type=comma_list, nargs=None)
    validation_encoder: str | None = option(
        None, "Style encoder of --validation_metrics style: a trained encoder folder or a shipped name (default: "
        "evaluate's default; the toy world's when training the toy world).")
    validation_clip: str | None = option(
        None, "open_clip model of --validation_metrics clip_t, as evaluate's --clip (default: evaluate's default; "
        "the toy world's when training the toy world).")
    max_clip_t_drop: float = option(
        2.0, "CLIP-T points (0-100 scale) best/ may lose against the base model's validation images.")
    guidance_scale: float = option(7.5, "Classifier-free guidance for validation and class images.")
    report_to: str = option("tensorboard", "Tracker: tensorboard, wandb or none.", choices=("tensorboard", "wandb", "none"))
    logging_steps: int = option(10, "Log losses every N steps.")
    export_kohya: bool = option(False, "Also write the LoRA in kohya/webui key format.")

    def validate(self) -> None:
        """Reject settings that cannot work, with one line naming the flag; a notice for one that is
        overridden or unused."""
        if self.resolution is not None and (self.resolution <= 0 or self.resolution % 8):
            raise StyleBoostError(f"--resolution {self.resolution} is not a positive multiple of 8")
        parse_background(self.image_background, "--image_background")  # refused before any model loads
        if self.max_train_steps < 1:
            raise StyleBoostError("--max_train_steps must be at least 1")
        if self.train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise StyleBoostError("--train_batch_size and --gradient_accumulation_steps must be at least 1")
        if self.method in ("textual_inversion", "lora_ti", "custom_diffusion") and not self.new_token:
            raise StyleBoostError(f"--method {self.method} trains new token embeddings: give --new_token")
        if self.aux_mode == "curated" and self.styleref_dir is not None and self.aux_dir is None:
            raise StyleBoostError("--aux_mode curated needs --aux_dir (or use --aux_mode generated|none)")
        if not 0 <= self.caption_dropout < 1:
            raise StyleBoostError(f"--caption_dropout {self.caption_dropout} is not a probability in [0, 1)")
        if self.prior_loss_weight < 0:
            raise StyleBoostError("--prior_loss_weight must not be negative")
        if self.styleref_repeats < 1 or self.aux_repeats < 1:
            raise StyleBoostError("--styleref_repeats and --aux_repeats must be at least 1")
        if self.aux_mode == "none" and self.aux_repeats != 1:
            notice("--aux_repeats is unused: --aux_mode none draws no Aux images")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise StyleBoostError(
                f"--checkpoints_total_limit {self.checkpoints_total_limit} would keep no checkpoint: give at least 1, "
                "or leave it unset to keep every checkpoint"
            )
        self._check_method_settings()
        if self.cache_latents and not self.center_crop:
            flips = "; random flips are kept" if self.random_flip else ""
            notice("--cache_latents encodes each image once from a center crop, so there are no random crops "
                   f"(pass --center_crop to make that explicit){flips}")
        self._check_validation_settings()

    def _check_validation_settings(self) -> None:
        """Validation image counts and steps: at least 1; a notice where none would be drawn."""
        if self.num_validation_images is not None and self.num_validation_images < 1:
            raise StyleBoostError("--num_validation_images must be at least 1 (--skip_final_samples draws none at the end)")
        if self.validation_inference_steps is not None and self.validation_inference_steps < 1:
            raise StyleBoostError("--validation_inference_steps must be at least 1")
        self._check_validation_metrics()
        if self.skip_final_samples and not self.validation_steps:
            unused = [f"--{n}" for n in ("num_validation_images", "validation_inference_steps", "validation_prompts")
                      if getattr(self, n) is not None]
            if unused:
                notice(f"{', '.join(unused)} appl{'y' if len(unused) > 1 else 'ies'} to nothing: "
                       "--skip_final_samples and no --validation_steps")

    def _check_validation_metrics(self) -> None:
        unknown = sorted(set(self.validation_metrics) - set(VALIDATION_METRICS))
        if unknown:
            raise StyleBoostError(f"--validation_metrics {','.join(unknown)}: unknown; choose from "
                                  f"{', '.join(VALIDATION_METRICS)}")
        if self.max_clip_t_drop < 0:
            raise StyleBoostError(f"--max_clip_t_drop {self.max_clip_t_drop} must not be negative")
        unused = [f"--{name}" for name, metric in (("validation_encoder", "style"), ("validation_clip", "clip_t"))
                  if getattr(self, name) is not None and metric not in self.validation_metrics]
        if unused:
            notice(f"{', '.join(unused)} unused: --validation_metrics does not ask for the score it serves")
        if self.validation_metrics and self.skip_final_samples:
            notice("--validation_metrics: --skip_final_samples leaves the final step unscored (best/ can only be an "
                   "earlier validation step)")

    def _check_method_settings(self) -> None:
        """Settings only some methods use: an error where one cannot apply, a notice where one goes unused."""
        method = build_method(self)
        embeddings = any(isinstance(p, TokenEmbeddingPart) for p in method.parts)
        text_encoder_weights = any(p.target == "text_encoder" and not isinstance(p, TokenEmbeddingPart)
                                   for p in method.parts)
        if self.train_text_encoder and not text_encoder_weights:
            raise StyleBoostError(
                f"--train_text_encoder does not apply to --method {self.method}, which trains only the new token "
                "embeddings of the text encoder; drop it, or use --method lora_ti to add text-encoder LoRA"
            )
        if self.export_kohya and not method.lora_parts():
            raise StyleBoostError(
                f"--export_kohya writes a LoRA, but --method {self.method} trains none; drop --export_kohya"
            )
        if self.text_encoder_lr is not None and not text_encoder_weights:
            hint = "; token embeddings use --embedding_lr" if embeddings else ""
            notice(f"--text_encoder_lr is unused: no text-encoder weights are trained (no --train_text_encoder){hint}")
        if self.embedding_lr is not None and not embeddings:
            notice(f"--embedding_lr is unused: --method {self.method} trains no token embeddings")
        self._check_adapter_settings(bool(method.lora_parts()))

    def _check_adapter_settings(self, trains_lora: bool) -> None:
        """The LoRA variants (``training.adapters``): an error where one cannot apply, a notice where one goes unused."""
        given = [f"--{n}" for n in ("use_dora", "lora_conv", "lora_blocks") if getattr(self, n)]
        if given and not trains_lora:
            raise StyleBoostError(f"{given[0]} changes a LoRA, but --method {self.method} trains none; drop it, or "
                                  "use --method lora or lora_ti")
        if self.use_dora and self.export_kohya:
            raise StyleBoostError("--use_dora cannot go with --export_kohya: diffusers' kohya loader drops DoRA's "
                                  "dora_scale keys, so the file would not reload as trained; drop one of them")
        if self.lora_conv and self.conv_rank is not None and self.conv_rank < 1:
            raise StyleBoostError("--conv_rank must be at least 1")
        unused = [f"--{n}" for n in ("conv_rank", "conv_alpha") if getattr(self, n) is not None]
        if unused and not self.lora_conv:
            notice(f"{' and '.join(unused)} {'are' if len(unused) > 1 else 'is'} unused without --lora_conv")

    @property
    def background_rgb(self) -> RGB:
        """--image_background as an (r, g, b) colour."""
        return parse_background(self.image_background, "--image_background")

    @property
    def bound_tokens(self) -> list[str]:
        """The token strings the style is bound to, in [V1], [V2]... order."""
        return list(self.new_token or self.token)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_args(argv: list[str] | None = None, prog: str | None = None,
                    base: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then ``base`` (the settings of a run that names no data: only when neither --config nor
    --styleref_dir is given), then the YAML file of --config, then the flags given on the command line."""
    args = build_parser(TrainConfig, prog, "Train StyleBoost (DreamBooth / LoRA / TI).").parse_args(argv)
    names_data = getattr(args, "config", None) or hasattr(args, "styleref_dir")
    cfg = settings_from_namespace(TrainConfig, args, base=None if names_data else base)
    if cfg.styleref_dir is not None:
        cfg.validate()
    return cfg
