"""The weight files a run writes and a user loads: their names, finding them in a run folder, and reading
learned token embeddings.

``pytorch_lora_weights.safetensors`` is what diffusers' ``load_lora_weights`` reads; the kohya file is
the same LoRA in webui key names; ``learned_embeds.safetensors`` holds {token: vector} and
``embeddings/<token>.safetensors`` one webui file per token.
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
EMBEDDINGS_FILE = "learned_embeds.safetensors"
EMBEDDINGS_DIR = "embeddings"  # one webui-format file per learned token


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


def read_embeddings(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Token string -> embedding (1-D, or 2-D for a multi-vector token) from a safetensors file."""

    try:
        embeddings = load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise StyleBoostError(f"could not read embeddings {path}: {first_line(err)}") from None
    if not embeddings:
        raise StyleBoostError(f"embeddings file {path} holds no tokens")
    return embeddings


def load_embeddings(pipe, embeddings: dict[str, torch.Tensor]) -> None:
    """Add each learned token and its embedding to the pipeline's tokenizer and text encoder."""
    tokens = list(embeddings)
    try:
        pipe.load_textual_inversion([embeddings[t] for t in tokens], token=tokens)
    except ValueError as err:
        raise StyleBoostError(f"could not load the learned embeddings: {first_line(err)}") from None
