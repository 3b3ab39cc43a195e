"""The README model card written beside a run's weights, through diffusers' model-card helpers."""

from __future__ import annotations

from pathlib import Path

from styleboost.sd.loading import source_name
from styleboost.sd.weights import (
    CUSTOM_DIFFUSION_FILE,
    EMBEDDINGS_DIR,
    EMBEDDINGS_FILE,
    LORA_FILE,
    SDXL_EMBEDDING_KEYS,
    embedding_file_names,
)
from styleboost.training.validation_metrics import curve_markdown


def base_model_line(cfg, pipeline: str) -> str:
    """The plain diffusers line that loads the base model the way it was given."""
    base = source_name(cfg.pretrained_model_name_or_path)
    if Path(base).is_file():
        config = f', config="{source_name(cfg.single_file_config)}"' if cfg.single_file_config else ""
        return f'pipe = {pipeline}.from_single_file("{base}"{config})'
    return f'pipe = {pipeline}.from_pretrained("{base}")'


def embedding_lines(run, out: str) -> list[str]:
    """Loading each token's webui-format file: SDXL's holds a row for each text encoder (``clip_l``, ``clip_g``),
    loaded as diffusers documents it."""
    sdxl = run.models.text_encoder_2 is not None
    lines = ["from safetensors.torch import load_file", ""] if sdxl else []
    for token, name in embedding_file_names(run.models.tokens).items():
        file = f"{out}/{EMBEDDINGS_DIR}/{name}"
        if not sdxl:
            lines.append(f'pipe.load_textual_inversion("{file}", token="{token}")')
            continue
        lines.append(f'state = load_file("{file}")')
        for key, part in SDXL_EMBEDDING_KEYS.items():
            tokenizer = part.replace("text_encoder", "tokenizer")
            lines.append(f'pipe.load_textual_inversion(state["{key}"], token="{token}", text_encoder=pipe.{part}, '
                         f"tokenizer=pipe.{tokenizer})")
    return lines


def usage_snippet(run, written: list[Path]) -> str:
    """The lines a user types to draw with the run's outputs in plain diffusers (tests run them as printed)."""
    names = {p.name for p in written}
    out = source_name(run.output_dir)
    pipeline = run.models.pipeline_class.__name__
    lines = ["```python", f"from diffusers import {pipeline}", ""]
    if "model_index.json" in names:
        lines.append(f'pipe = {pipeline}.from_pretrained("{out}")')
    else:
        lines.append(base_model_line(run.cfg, pipeline))
    if LORA_FILE in names:
        lines.append(f'pipe.load_lora_weights("{out}")')
    if CUSTOM_DIFFUSION_FILE in names:  # diffusers 0.42 installs the processors only when given the pipeline
        lines.append(f'pipe.unet.load_attn_procs("{out}", weight_name="{CUSTOM_DIFFUSION_FILE}", _pipeline=pipe)')
    if EMBEDDINGS_FILE in names and "model_index.json" not in names:  # one webui-format file per token
        lines += embedding_lines(run, out)
    lines += [f'image = pipe("a portrait of a woman in {run.models.tokens[0]} style").images[0]', "```"]
    return "\n".join(lines)


def write_model_card(run, grid: Path | None, written: list[Path]) -> Path:
    """README.md with what was trained, on what, how to load it, and the sample grid."""
    from diffusers.utils.hub_utils import MODEL_CARD_TEMPLATE_PATH, populate_model_card
    from huggingface_hub import ModelCard, ModelCardData

    cfg = run.cfg
    description = "\n".join(
        [
            f"# StyleBoost {run.method.name} - {', '.join(run.models.tokens)}",
            "",
            f"Style bound to `{'`, `'.join(run.models.tokens)}` on `{cfg.pretrained_model_name_or_path}` "
            f"with {len(run.styleref)} StyleRef images and {len(run.aux)} Aux images "
            f"(aux mode `{cfg.aux_mode}`, prior loss weight {cfg.prior_loss_weight}), "
            f"{cfg.max_train_steps} steps at {run.resolution} px.",
            "",
            "![samples](samples.png)" if grid else "",
            "",
            "## Use",
            "",
            usage_snippet(run, written),
            "",
            "The exact configuration, package versions and input hashes are in `run.json`.",
            "",
            *curve_markdown(run.output_dir),
        ]
    )
    # diffusers' load_or_create_model_card asks the hub for an existing card first; offline runs must
    # not, so build the card from the same template it uses for training scripts.
    data = ModelCardData(
        library_name="diffusers",
        inference=True,
        base_model=cfg.pretrained_model_name_or_path,
        instance_prompt=f"{run.models.tokens[0]} style",
    )
    card = ModelCard.from_template(data, template_path=MODEL_CARD_TEMPLATE_PATH, model_description=description)
    family = "stable-diffusion-xl" if run.models.text_encoder_2 is not None else "stable-diffusion"
    card = populate_model_card(card, tags=["text-to-image", family, "diffusers", "styleboost", run.method.name])
    path = run.output_dir / "README.md"
    card.save(str(path))
    return path
