"""The weight files a run writes and a user loads: their names, finding them in a run folder, and reading
learned token embeddings.

``pytorch_lora_weights.safetensors`` is what diffusers' ``load_lora_weights`` reads; the kohya file is
the same LoRA in webui key names; ``pytorch_custom_diffusion_weights.safetensors`` holds the cross-attention
K/V weights of a Custom Diffusion run, which ``pipe.unet.load_attn_procs`` reads;
``learned_embeds.safetensors`` holds {token: vector} and ``embeddings/<token>.safetensors`` one webui file
per token. SDXL embeddings hold one row per token for each text encoder, under webui's keys ``clip_l`` and
``clip_g``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.sd.loading import PICKLE_SUFFIXES

LORA_FILE = "pytorch_lora_weights.safetensors"
KOHYA_FILE = "pytorch_lora_weights_kohya.safetensors"
CUSTOM_DIFFUSION_FILE = "pytorch_custom_diffusion_weights.safetensors"  # diffusers' CUSTOM_DIFFUSION_WEIGHT_NAME_SAFE
EMBEDDINGS_FILE = "learned_embeds.safetensors"
EMBEDDINGS_DIR = "embeddings"  # one webui-format file per learned token
SDXL_EMBEDDING_KEYS = {"clip_l": "text_encoder", "clip_g": "text_encoder_2"}  # webui's key -> pipeline part
Embeddings = dict[str, "torch.Tensor | dict[str, torch.Tensor]"]  # token -> row(s); SDXL: {clip_l: .., clip_g: ..}


def find_lora_weights(path: str) -> Path:
    """The LoRA weights file of a training output folder (or the file itself); in a Custom Diffusion run's folder,
    its attention-processor weights."""
    lora = Path(path).expanduser()
    if lora.is_file() and lora.suffix == ".safetensors":
        return lora
    if lora.is_file():
        raise StyleBoostError(f"--lora {lora}: expected a folder with {LORA_FILE} or a .safetensors file")
    if not lora.is_dir():
        raise StyleBoostError(f"--lora folder not found: {lora}")
    weights = lora / LORA_FILE
    if not weights.is_file() and (lora / CUSTOM_DIFFUSION_FILE).is_file():
        return lora / CUSTOM_DIFFUSION_FILE
    if not weights.is_file():
        raise StyleBoostError(f"--lora folder {lora} has no {LORA_FILE} or {CUSTOM_DIFFUSION_FILE}")
    return weights


def embedding_file_names(tokens: list[str]) -> dict[str, str]:
    """Token -> its webui file under ``embeddings/``: the token without <>, other unsafe characters as _ (webui's
    prompt word is the file name), made unique."""
    names: dict[str, str] = {}
    for token in tokens:
        stem = re.sub(r"[^\w.-]", "_", token.strip("<>")) or "token"
        name, n = stem, 1
        while f"{name}.safetensors" in names.values():
            n += 1
            name = f"{stem}_{n}"
        names[token] = f"{name}.safetensors"
    return names


def find_embeddings(path: str) -> Path:
    """The learned-embeddings file: the path itself or ``learned_embeds.safetensors`` in a folder."""
    emb = Path(path).expanduser()
    if emb.is_dir():
        emb = emb / EMBEDDINGS_FILE
    if emb.suffix in PICKLE_SUFFIXES:
        raise StyleBoostError(
            f"--embeddings {emb} is a pickle file, which can run code when loaded; convert it to .safetensors"
        )
    if not emb.is_file():
        raise StyleBoostError(f"--embeddings file not found: {emb}")
    if emb.suffix != ".safetensors":
        raise StyleBoostError(f"--embeddings {emb}: expected a .safetensors file")
    return emb


def read_embeddings(path: str | os.PathLike) -> Embeddings:
    """Token string -> embedding (1-D, or 2-D for a multi-vector token) from a safetensors file; for an SDXL
    file (``clip_l``/``clip_g``), token -> {key: its rows}. A webui file of one token (``emb_params``, or SDXL
    keys without a token list in the metadata) names its token by the file name, as webui does."""
    from safetensors import safe_open

    try:
        embeddings = load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise StyleBoostError(f"could not read embeddings {path}: {first_line(err)}") from None
    if not embeddings:
        raise StyleBoostError(f"embeddings file {path} holds no tokens")
    if set(embeddings) == set(SDXL_EMBEDDING_KEYS):
        return sdxl_embeddings(embeddings, metadata.get("tokens"), Path(path))
    if set(embeddings) == {"emb_params"}:
        return {Path(path).stem: embeddings["emb_params"]}
    return embeddings


def sdxl_embeddings(rows: dict[str, torch.Tensor], tokens_json: str | None, path: Path) -> Embeddings:
    """Split an SDXL file's rows by the tokens its metadata names (one row each), or give them all to the
    token named by the file (a multi-vector token)."""
    import json

    if tokens_json is None:
        return {path.stem: rows}
    tokens = json.loads(tokens_json)
    if any(len(r) != len(tokens) for r in rows.values()):
        raise StyleBoostError(f"embeddings file {path} names {len(tokens)} tokens but holds "
                              f"{', '.join(f'{len(r)} {k} rows' for k, r in rows.items())}")
    return {token: {key: r[k : k + 1] for key, r in rows.items()} for k, token in enumerate(tokens)}


def load_embeddings(pipe, embeddings: Embeddings) -> None:
    """Add each learned token and its embedding to the pipeline's tokenizer(s) and text encoder(s)."""
    tokens = list(embeddings)
    sdxl = all(isinstance(e, dict) for e in embeddings.values())
    if sdxl != hasattr(pipe, "text_encoder_2"):
        kind = "SDXL (clip_l/clip_g)" if sdxl else "single-encoder (SD 1.x/2.x)"
        raise StyleBoostError(f"could not load the learned embeddings: they are {kind} embeddings, the model is not")
    try:
        if not sdxl:
            pipe.load_textual_inversion([embeddings[t] for t in tokens], token=tokens)
            return
        for key, part in SDXL_EMBEDDING_KEYS.items():  # diffusers' documented way to load SDXL embeddings
            tokenizer = getattr(pipe, part.replace("text_encoder", "tokenizer"))
            pipe.load_textual_inversion([embeddings[t][key] for t in tokens], token=tokens,
                                        text_encoder=getattr(pipe, part), tokenizer=tokenizer)
    except ValueError as err:
        raise StyleBoostError(f"could not load the learned embeddings: {first_line(err)}") from None
