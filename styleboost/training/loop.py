"""The StyleBoost training loop: StyleRef + Aux data, one method, checkpoints, validation, export.

``build_run`` sets everything up once (models, method, data, optimizer, accelerate);
``train_loop`` is the loop itself and reads top to bottom, like nanoGPT's. ``train`` does both
and writes the outputs. Variants (LoRA, full, textual inversion; model families) are chosen in
``build_run`` and never branched on inside the loop.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.core.manifest import data_hashes, package_versions, read_manifest, update_manifest
from styleboost.core.notice import notice
from styleboost.sd.families import concat_conditioning, family_for
from styleboost.sd.loading import default_resolution, load_pipeline, load_vae, source_name
from styleboost.sd.prompts import fit_prompt
from styleboost.sd.tokens import add_new_tokens, existing_token_ids
from styleboost.sd.weights import EMBEDDINGS_FILE, LORA_FILE
from styleboost.training import checkpoint as ckpt
from styleboost.training import resume as resuming
from styleboost.training import validation_metrics
from styleboost.training.accelerator import lr_schedule, make_accelerator
from styleboost.training.aux import generate_class_images
from styleboost.training.config import TrainConfig
from styleboost.training.data import (
    DrawSampler,
    Example,
    ImageTransform,
    LatentCache,
    StyleBoostDataset,
    collate,
    load_examples,
)
from styleboost.training.export import export_weights, training_info
from styleboost.training.methods import Method, Models, build_method
from styleboost.training.model_card import write_model_card
from styleboost.training.run_dir import RunFolder, holds_run
from styleboost.training.step import (
    add_noise,
    image_latents,
    prediction_target,
    prior_preservation_loss,
    sample_generators,
    sample_weights,
)
from styleboost.training.stopping import RunStopped, StopRequest
from styleboost.training.validation import run_validation, validation_prompts
from styleboost.training.validation_metrics import Scorer

WEIGHT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
CAPTION_BATCH = 16  # captions encoded per text-encoder call when the conditioning is precomputed


class Diverged(Exception):
    """The loss (or, at a checkpoint, the weights) became NaN or infinite at optimizer step ``step``."""

    def __init__(self, step: int, what: str = "loss"):
        super().__init__(step)
        self.step, self.what = step, what


class StopAsked(Exception):
    """A signal asked the run to stop; ``step`` is the last step taken."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


@dataclass
class Run:
    """Everything a training run holds between set-up and the end of the loop."""

    cfg: TrainConfig
    output_dir: Path
    accelerator: Any
    models: Models
    method: Method
    styleref: list[Example]
    aux: list[Example]
    nets: dict[str, Any]
    optimizer: Any
    lr_scheduler: Any
    dataloader: Any
    conditioning: Callable[[list[str]], dict[str, torch.Tensor]]
    resolution: int
    weight_dtype: torch.dtype
    folder: RunFolder
    start_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stop: StopRequest = field(default_factory=StopRequest)
    scorer: Scorer | None = None  # scores validation images (--validation_metrics)

    @property
    def trained_modules(self) -> list[Any]:
        return [self.nets[t] for t in self.method.targets]


# ----------------------------------------------------------------------------- set-up


def finished_run(output_dir: Path) -> bool:
    """Whether ``output_dir`` holds a run that exported its weights."""
    exported = (LORA_FILE, EMBEDDINGS_FILE, "model_index.json")
    return read_manifest(output_dir).get("status") == "finished" or any((output_dir / f).exists() for f in exported)


def claim_output_dir(cfg: TrainConfig, accelerator) -> RunFolder:
    """Lock the output folder (main process) and check it may take this run: a folder holding a run needs
    --overwrite (the old run is replaced once the new one starts) or --resume_from_checkpoint. A run with no
    checkpoint to resume is started over only if it never finished. The other processes share the outcome."""
    output_dir = Path(cfg.output_dir)
    folder = RunFolder(output_dir, main_process=accelerator.is_main_process)

    def claim() -> None:
        folder.claim(cfg.overwrite, cfg.resume_from_checkpoint)
        if cfg.resume_from_checkpoint != "latest" or ckpt.completed_checkpoints(output_dir) or not holds_run(output_dir):
            return
        if finished_run(output_dir):
            folder.abandon()
            raise StyleBoostError(
                f"--resume_from_checkpoint latest: {output_dir} holds a finished run and no checkpoint to continue "
                "from; pass --overwrite to train it again"
            )
        folder.set_aside_old_run()  # an unfinished run with no checkpoint: nothing to continue, start over

    on_main_process(accelerator, claim)
    return folder


def on_main_process(accelerator, action: Callable[[], None]) -> None:
    """Run ``action`` on the main process; the others wait and stop with its one-line error, if any."""
    from accelerate.utils import broadcast_object_list

    error = None
    if accelerator.is_main_process:
        try:
            action()
        except StyleBoostError as err:
            error = str(err)
    if accelerator.num_processes > 1:
        error = broadcast_object_list([error])[0]
    if error:
        raise StyleBoostError(error)


def resume_point(cfg: TrainConfig, accelerator) -> tuple[int, Path] | None:
    """The whole checkpoint to resume from (a damaged one is skipped with a notice), checked against the
    settings it was trained with; None when starting from step 0."""
    if not cfg.resume_from_checkpoint:
        return None
    main = accelerator.is_main_process
    found = ckpt.resume_candidates(cfg.output_dir, cfg.resume_from_checkpoint, main_process=main)
    if not found:
        notice("no checkpoint to resume from; starting a new run", main_process=main)
        return None
    step, path = found[0]
    recorded = ckpt.read_marker(path).get("config") or read_manifest(cfg.output_dir).get("config", {})
    resuming.announce_changes(resuming.changed_settings(recorded, cfg.to_dict(), path), step, main_process=main)
    return step, path


def load_checkpoint(run: Run, checkpoint: Path) -> None:
    """accelerate's load_state, then this run's optimizer settings again (see ``training.resume``)."""
    settings = resuming.optimizer_settings(run.optimizer)
    try:
        run.accelerator.load_state(str(checkpoint))
    except StyleBoostError:
        raise
    except Exception as err:  # a damaged file the size check could not see: name it, no traceback
        raise StyleBoostError(f"{checkpoint} does not load ({first_line(err)}); resume from an earlier "
                              "checkpoint with --resume_from_checkpoint <folder>") from None
    resuming.restore_optimizer_settings(run.optimizer, run.lr_scheduler, settings)
    notice(f"resumed from {checkpoint} at step {run.start_step}", main_process=run.accelerator.is_main_process)


def load_models(cfg: TrainConfig):
    """The base pipeline's parts, with the style tokens bound (new tokens added and initialised)."""
    from diffusers import DDPMScheduler

    # fp32 master weights whatever the checkpoint's dtype (an fp16 checkpoint would otherwise load half in
    # transformers); place_models casts the frozen parts to the mixed-precision dtype afterwards
    pipe = load_pipeline(cfg.pretrained_model_name_or_path, torch_dtype=torch.float32, allow_pickle=cfg.allow_pickle,
                         single_file_config=cfg.single_file_config)
    family = family_for(pipe)
    if cfg.pretrained_vae_model_name_or_path:
        pipe.vae = load_vae(cfg.pretrained_vae_model_name_or_path, torch_dtype=torch.float32)
    tokens = cfg.bound_tokens
    token_ids = {}
    for encoder_name, tokenizer_name in zip(family.text_encoder_names, family.tokenizer_names):
        tokenizer, encoder = getattr(pipe, tokenizer_name), getattr(pipe, encoder_name)
        if cfg.new_token:
            token_ids[encoder_name] = add_new_tokens(tokenizer, encoder, tokens, cfg.initializer_token)
        else:
            token_ids[encoder_name] = existing_token_ids(tokenizer, tokens)
    models = Models(
        unet=pipe.unet,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        tokenizer=pipe.tokenizer,
        noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config),
        inference_scheduler=pipe.scheduler,
        family=family,
        pipeline_class=type(pipe),
        tokens=tokens,
        token_ids=token_ids,
        new_tokens=bool(cfg.new_token),
        text_encoder_2=getattr(pipe, "text_encoder_2", None),
        tokenizer_2=getattr(pipe, "tokenizer_2", None),
    )
    return models, pipe


def load_training_sets(cfg: TrainConfig, pipe, output_dir: Path, resolution: int, accelerator):
    """StyleRef examples (each must train a token) and the Aux examples the aux mode asks for, each caption
    as the text encoder reads it (a caption over its window is cut with a notice, never its token)."""
    tokens, main = cfg.bound_tokens, accelerator.is_main_process
    images = dict(resolution=resolution, background=cfg.background_rgb, main_process=main)
    styleref = load_examples(cfg.styleref_dir, cfg.styleref_prompt, tokens, flag="--styleref_dir", needs_token=True,
                             **images)
    styleref = fit_captions(styleref, pipe.tokenizer, tokens, main)
    if cfg.aux_mode == "none":
        if cfg.aux_dir:
            notice(f"--aux_dir {cfg.aux_dir} is not used with --aux_mode none (no prior-preservation term)",
                   main_process=main)
        return styleref, []
    folder = Path(cfg.aux_dir) if cfg.aux_dir else output_dir / "aux_generated"
    if cfg.aux_mode == "generated":
        draw_class_images(cfg, pipe, folder, resolution, accelerator)
    aux = load_examples(folder, cfg.aux_prompt, tokens, flag="--aux_dir", needs_token=False, **images)
    return styleref, fit_captions(aux, pipe.tokenizer, tokens, main)


def fit_captions(examples: list[Example], tokenizer, tokens: list[str], main: bool) -> list[Example]:
    """Each example's caption as the text encoder reads it (``fit_prompt``), named by its source in notices."""
    return [dataclasses.replace(e, caption=fit_prompt(tokenizer, e.caption, tokens, source=e.source, main_process=main))
            for e in examples]


def draw_class_images(cfg: TrainConfig, pipe, folder: Path, resolution: int, accelerator) -> None:
    """DreamBooth's class images, drawn once by the main process on the accelerator device (the frozen
    model under the run's mixed precision) while the other processes wait."""
    if accelerator.is_main_process:
        pipe.to(accelerator.device)
        pipe.set_progress_bar_config(disable=True)
        with accelerator.autocast():
            generate_class_images(
                pipe, folder, cfg.aux_prompt, cfg.num_aux_images, resolution=resolution,
                steps=cfg.aux_inference_steps, guidance_scale=cfg.guidance_scale, seed=cfg.seed,
                model=source_name(cfg.pretrained_model_name_or_path),
            )
    accelerator.wait_for_everyone()


def place_models(models: Models, method: Method, accelerator, weight_dtype: torch.dtype) -> None:
    """Frozen weights in the mixed-precision dtype on the device; trained weights stay float32."""
    from diffusers.training_utils import cast_training_params

    def move(module, dtype: torch.dtype) -> None:
        module.to(accelerator.device)
        if module.dtype != dtype:
            module.to(dtype=dtype)

    move(models.vae, torch.float32)  # the VAE is unstable in fp16 (SD 1.x); SDXL's gives NaN (black images)
    move(models.unet, torch.float32 if method.trains_full_unet else weight_dtype)
    for name in models.text_encoder_names:
        move(models.module(name), torch.float32 if method.trains(name) else weight_dtype)
    for part in method.parts:
        cast_training_params(models.module(part.target), dtype=torch.float32)


def enable_memory_features(cfg: TrainConfig, models: Models, method: Method) -> None:
    if cfg.gradient_checkpointing:
        models.unet.enable_gradient_checkpointing()
        for name in models.text_encoder_names:
            if method.trains(name):
                models.module(name).gradient_checkpointing_enable()
    if cfg.enable_xformers_memory_efficient_attention:
        try:
            models.unet.enable_xformers_memory_efficient_attention()
        except (ImportError, ModuleNotFoundError, ValueError, NotImplementedError) as err:
            notice(f"xformers unavailable ({str(err).splitlines()[0][:80]}); using PyTorch SDPA attention")


def make_optimizer(cfg: TrainConfig, groups: list[dict]):
    settings = dict(betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.adam_weight_decay, eps=cfg.adam_epsilon)
    if cfg.use_8bit_adam:
        try:
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(groups, **settings)
        except ImportError:
            notice("bitsandbytes is not installed; using torch AdamW instead of 8-bit Adam")
    # One fused kernel for all (many, small) LoRA tensors instead of a Python loop over them.
    try:
        return torch.optim.AdamW(groups, fused=True, **settings)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, foreach=True, **settings)


def make_conditioning(models: Models, method: Method, text_encoders: list, captions: list[str], dtype: torch.dtype,
                      device: torch.device):
    """A captions -> text-conditioning function; precomputed once when every text encoder is frozen.

    ``text_encoders`` are the modules as ``accelerator.prepare`` returned them when trained (their DDP
    wrappers on several processes), so that their gradients are synchronised."""
    family = models.family

    def encode(batch_captions: list[str]) -> dict[str, torch.Tensor]:
        return family.encode(family.tokenize(batch_captions), text_encoders, device)

    if method.trains_text_encoder:
        return encode
    distinct, cache = sorted(set(captions)), {}
    with torch.no_grad():
        for start in range(0, len(distinct), CAPTION_BATCH):  # batched: one caption a call cost seconds on SD 2.1
            chunk = distinct[start : start + CAPTION_BATCH]
            encoded = encode(chunk)
            for row, caption in enumerate(chunk):
                cache[caption] = {k: v[row : row + 1].to(dtype) for k, v in encoded.items()}
    return lambda batch_captions: concat_conditioning([cache[c] for c in batch_captions])


def allow_unused_parameters(accelerator, models: Models, method: Method) -> None:
    """Tell DDP that some trained parameters get no gradient when a trained text encoder's last layers do not
    reach the UNet (SDXL's first encoder: its penultimate layer conditions the UNet), as diffusers'
    train_dreambooth_lora_sdxl.py does; DDP otherwise stops at the second step. The family is known only once
    the model has loaded, after the accelerator was made, so its DDP settings are set here, before ``prepare``
    (the attribute accelerate's ``kwargs_handlers`` fill)."""
    from accelerate.utils import DistributedDataParallelKwargs

    if any(method.trains(name) for name in models.family.partly_used_encoders):
        accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)


def draws_per_step(cfg: TrainConfig, accelerator) -> int:
    return cfg.train_batch_size * cfg.gradient_accumulation_steps * accelerator.num_processes


def build_run(cfg: TrainConfig) -> Run:
    """Set up a run: accelerator, output folder (locked), models, data, optimizer; resume if asked.
    A failure here leaves the output folder as it was."""
    output_dir = Path(cfg.output_dir or time.strftime("runs/styleboost-%Y%m%d-%H%M%S"))
    cfg = dataclasses.replace(cfg, output_dir=str(output_dir))
    accelerator = make_accelerator(output_dir, cfg.mixed_precision, cfg.report_to, cfg.gradient_accumulation_steps)
    folder = claim_output_dir(cfg, accelerator)
    try:
        return assemble_run(cfg, accelerator, folder)
    except BaseException:
        folder.abandon()
        raise


def assemble_run(cfg: TrainConfig, accelerator, folder: RunFolder) -> Run:
    from accelerate.utils import set_seed

    output_dir = folder.path
    resume = resume_point(cfg, accelerator)
    set_seed(cfg.seed)
    models, pipe = load_models(cfg)
    resolution = cfg.resolution or default_resolution(pipe)
    styleref, aux = load_training_sets(cfg, pipe, output_dir, resolution, accelerator)
    if cfg.validation_steps or not cfg.skip_final_samples:  # a prompt that cannot fit is refused before training
        validation_prompts(cfg, models.tokens, models.tokenizer)
    del pipe
    method = build_method(cfg, models.text_encoder_names)
    method.apply(models)
    weight_dtype = WEIGHT_DTYPES.get(accelerator.mixed_precision, torch.float32)
    place_models(models, method, accelerator, weight_dtype)
    enable_memory_features(cfg, models, method)

    transform = ImageTransform(resolution, center_crop=cfg.center_crop, random_flip=cfg.random_flip,
                               background=cfg.background_rgb)
    cache = None
    if cfg.cache_latents:
        cache = LatentCache(transform)
        cache.fill(styleref + aux, models.vae, device=accelerator.device, dtype=torch.float32)
    dataset = StyleBoostDataset(styleref, aux, transform, seed=cfg.seed, latent_cache=cache,
                                caption_dropout=cfg.caption_dropout, styleref_repeats=cfg.styleref_repeats,
                                aux_repeats=cfg.aux_repeats)

    per_step = draws_per_step(cfg, accelerator)
    lr = cfg.learning_rate * (per_step if cfg.scale_lr else 1)
    optimizer = make_optimizer(cfg, method.param_groups(models, cfg, lr))
    lr_scheduler = lr_schedule(cfg.lr_scheduler, optimizer, warmup_steps=cfg.lr_warmup_steps,
                               total_steps=cfg.max_train_steps, num_processes=accelerator.num_processes)
    ckpt.register_trainable_hooks(accelerator)
    allow_unused_parameters(accelerator, models, method)
    start_step = resume[0] if resume else 0
    sampler = DrawSampler(
        len(dataset), seed=cfg.seed, total=cfg.max_train_steps * per_step, start=min(start_step, cfg.max_train_steps) * per_step
    )
    dataloader = DataLoader(
        dataset, batch_size=cfg.train_batch_size, sampler=sampler, collate_fn=collate, num_workers=cfg.dataloader_num_workers
    )
    targets = method.targets
    prepared = accelerator.prepare(*[models.module(t) for t in targets], optimizer, dataloader, lr_scheduler)
    nets = {"unet": models.unet, **{n: models.module(n) for n in models.text_encoder_names},
            **dict(zip(targets, prepared))}
    optimizer, dataloader, lr_scheduler = prepared[len(targets) :]
    conditioning = make_conditioning(models, method, [nets[n] for n in models.text_encoder_names],
                                     [e.caption for e in styleref + aux] + [""] * (cfg.caption_dropout > 0),
                                     weight_dtype, accelerator.device)
    run = Run(
        cfg, output_dir, accelerator, models, method, styleref, aux, nets, optimizer, lr_scheduler, dataloader,
        conditioning, resolution, weight_dtype, folder, start_step,
    )
    if resume:
        load_checkpoint(run, resume[1])
    return run


# ----------------------------------------------------------------------------- the step and the loop


def compute_loss(run: Run, batch: dict) -> dict[str, torch.Tensor]:
    """Encode images, add noise, predict, and return the prior-preservation loss terms.

    Every sample's randomness comes from its own generator (``sample_generators``), keyed by its draw."""
    models, cfg = run.models, run.cfg
    parts = [batch["instance"]] + ([batch["prior"]] if "prior" in batch else [])
    generators = [sample_generators(cfg.seed, batch["draws"], index) for index in range(len(parts))]
    device = run.accelerator.device
    latents = torch.cat([image_latents(p, models.vae, g, device) for p, g in zip(parts, generators)])
    captions = [c for p in parts for c in p["captions"]]
    noise, timesteps, noisy = add_noise(latents, models.noise_scheduler, sum(generators, []), cfg.noise_offset)
    size_ids = torch.cat([p["size_ids"] for p in parts]) if "size_ids" in parts[0] else None
    with run.accelerator.autocast():
        inputs = models.family.unet_inputs(run.conditioning(captions), size_ids)
        pred = run.nets["unet"](noisy, timesteps, **inputs, return_dict=False)[0]
    target = prediction_target(models.noise_scheduler, latents, noise, timesteps)
    weights = sample_weights(models.noise_scheduler, timesteps, cfg.snr_gamma)
    return prior_preservation_loss(pred, target, weights, len(parts[0]["captions"]), cfg.prior_loss_weight)


def on_every_process(accelerator, flag: bool) -> bool:
    """Whether ``flag`` holds on any process (so that all of them take the same branch)."""
    if accelerator.num_processes == 1:
        return flag
    return bool(accelerator.gather(torch.tensor([float(flag)], device=accelerator.device)).max().item())


def micro_step(run: Run, batch: dict, step: int, params: list) -> dict[str, torch.Tensor]:
    """Forward, backward and (at the end of an accumulation cycle) the optimizer step."""
    accelerator = run.accelerator
    with accelerator.accumulate(*run.trained_modules):
        terms = compute_loss(run, batch)
        if on_every_process(accelerator, not torch.isfinite(terms["loss"]).item()):
            raise Diverged(step + 1)
        accelerator.backward(terms["loss"])
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(params, run.cfg.max_grad_norm)
        run.optimizer.step()
        run.lr_scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    return terms


def end_of_step(run: Run, step: int, terms: dict[str, torch.Tensor], progress) -> None:
    """Bookkeeping after optimizer step ``step``: logs, checkpoint and validation on their schedules."""
    cfg = run.cfg
    run.method.after_step(run.models)
    logs = {k: v.detach().item() for k, v in terms.items()} | {"lr": run.lr_scheduler.get_last_lr()[0]}
    run.history.append({"step": step, **logs})
    progress.update(1)
    progress.set_postfix(loss=f"{logs['loss']:.4f}")
    if step % cfg.logging_steps == 0 or step == cfg.max_train_steps:
        run.accelerator.log(logs, step=step)
    if step % cfg.checkpointing_steps == 0 and step < cfg.max_train_steps:
        save_checkpoint(run, step)
    if cfg.validation_steps and step % cfg.validation_steps == 0 and step < cfg.max_train_steps:
        run_validation(run, step)
    if step < cfg.max_train_steps and on_every_process(run.accelerator, run.stop.signal_name is not None):
        raise StopAsked(step)


def save_checkpoint(run: Run, step: int) -> None:
    """checkpoint-<step>, if the trained weights are finite (a diverged run keeps no checkpoint of it)."""
    if not ckpt.finite(run.trained_modules):
        raise Diverged(step, "weights")
    ckpt.save_checkpoint(run.accelerator, run.output_dir, step, run.cfg.checkpoints_total_limit,
                         record={"config": run.cfg.to_dict()})


def score_base_model(run: Run) -> None:
    """With --validation_metrics: the base model's validation scores (step 0), which best/ is judged against.
    A resumed run keeps the records up to its checkpoint and redoes the later ones."""
    if run.scorer is None or not run.accelerator.is_main_process:
        return
    validation_metrics.keep_records_up_to(run.output_dir, run.start_step)
    if any(r["step"] == 0 for r in validation_metrics.read_records(run.output_dir)):
        return
    if run.start_step == 0:
        run_validation(run, 0)
    else:
        notice(f"--validation_metrics: the run resumes at step {run.start_step} with no base-model scores on record; "
               "best/ is chosen by the style score alone")


def train_loop(run: Run) -> None:
    """Optimise from ``start_step`` to ``max_train_steps``."""
    step = run.start_step
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    main = run.accelerator.is_local_main_process
    with tqdm(total=run.cfg.max_train_steps, initial=step, desc="steps", disable=not main) as progress:
        for batch in run.dataloader:
            terms = micro_step(run, batch, step, params)
            if run.accelerator.sync_gradients:
                step += 1
                end_of_step(run, step, terms, progress)


def finish(run: Run) -> list[Path]:
    """Final samples, weights, model card and manifest (main process only)."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    grid = run_validation(run, run.cfg.max_train_steps, final=True)
    written: list[Path] = []
    if accelerator.is_main_process:
        written = export_weights(run.models, run.method, run.output_dir, kohya=run.cfg.export_kohya,
                                 info=training_info(run))
        if run.scorer is not None:
            validation_metrics.report_no_best(run.output_dir, run.cfg.max_clip_t_drop)
        write_model_card(run, grid, written)
        last = run.history[-1] if run.history else {}
        update_manifest(run.output_dir, status="finished", final_step=run.cfg.max_train_steps,
                        final_loss=last.get("loss"), outputs=[str(p.relative_to(run.output_dir)) for p in written])
    return written


def write_start_manifest(run: Run) -> None:
    if run.accelerator.is_main_process:
        update_manifest(
            run.output_dir,
            status="running",
            config=run.cfg.to_dict(),
            tokens=run.models.tokens,
            resolution=run.resolution,
            method=run.method.name,
            vae={"source": source_name(run.cfg.pretrained_vae_model_name_or_path) or "the model's own",
                 "dtype": str(run.models.vae.dtype).removeprefix("torch.")},
            versions=package_versions(),
            data={
                "styleref": data_hashes(e.path for e in run.styleref),
                "aux": data_hashes(e.path for e in run.aux),
                "captions": {str(e.path): e.caption for e in run.styleref + run.aux},
            },
        )


def init_trackers(run: Run) -> None:
    flat = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in run.cfg.to_dict().items()}
    run.accelerator.init_trackers("styleboost", config=flat)


def diverged(run: Run, err: Diverged) -> StyleBoostError:
    """Drop the checkpoints holding the weights that diverged (those of the step before a NaN loss, and
    later); record the failure; the error names the last good checkpoint."""
    if run.accelerator.is_main_process:
        first_bad = err.step - 1 if err.what == "loss" else err.step
        for path in ckpt.remove_checkpoints_from(run.output_dir, first_bad):
            notice(f"removed {path}: its weights gave the non-finite {err.what} at step {err.step}")
        update_manifest(run.output_dir, status="failed", error=f"non-finite {err.what} at step {err.step}")
    run.accelerator.wait_for_everyone()
    found = ckpt.completed_checkpoints(run.output_dir)
    kept = f"last good checkpoint: {found[-1][1]}" if found else "no good checkpoint was written"
    return StyleBoostError(f"{err.what} became NaN/inf at step {err.step}; training stopped ({kept}); "
                           "a lower --learning_rate may help")


def stopped(run: Run, err: StopAsked) -> RunStopped:
    """Checkpoint the last step taken (unless it has one), record the stop; the error says how to go on."""
    checkpoint = ckpt.checkpoint_dir(run.output_dir, err.step)
    if not checkpoint.is_dir():  # end_of_step wrote none at this step
        save_checkpoint(run, err.step)
    name = run.stop.signal_name or "SIGTERM"  # another process got the signal
    if run.accelerator.is_main_process:
        update_manifest(run.output_dir, status="stopped", error=f"{name} after step {err.step}")
    return RunStopped(f"{name}: stopped after step {err.step} of {run.cfg.max_train_steps}; {checkpoint.name} "
                      "holds it: continue with --resume_from_checkpoint latest", name)


def train(cfg: TrainConfig, scorer: Scorer | None = None) -> Run:
    """Run a whole training job and write its outputs; returns the finished run. Ctrl-C or SIGTERM stops it
    after the current step with a checkpoint; the output folder is locked while it runs. ``scorer`` scores the
    validation images when ``--validation_metrics`` asks (``styleboost.evaluation.validation_scorer``)."""
    if cfg.validation_metrics and scorer is None:
        raise StyleBoostError(f"--validation_metrics {','.join(cfg.validation_metrics)} needs the metric networks: "
                              "run train_scripts/train_styleboost.py, or pass train(cfg, scorer=validation_scorer(cfg))")
    stop = StopRequest().install()
    started = time.perf_counter()
    try:
        run = build_run(cfg)
        run.stop = stop
        run.scorer = scorer if cfg.validation_metrics else None
        stop.main_process = run.accelerator.is_main_process
        with run.folder:
            run.folder.start()
            write_start_manifest(run)
            init_trackers(run)
            stop.deferring = True
            try:
                score_base_model(run)
                train_loop(run)
                stop.deferring = False  # the final samples and the export: a signal now stops at once
                finish(run)
                if run.accelerator.is_main_process:  # set-up, steps, final samples and export of this process
                    update_manifest(run.output_dir, train_seconds=round(time.perf_counter() - started, 1))
            except Diverged as err:
                raise diverged(run, err) from None
            except StopAsked as err:
                raise stopped(run, err) from None
            finally:
                stop.deferring = False
                run.accelerator.end_training()
    finally:
        stop.restore()
    return run

