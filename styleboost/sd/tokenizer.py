"""The real CLIP tokenizer of Stable Diffusion, built offline from the BPE vocabulary that open_clip ships."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path


def write_clip_tokenizer_files(folder: str | os.PathLike) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` of the CLIP tokenizer from open_clip's BPE file.

    open_clip's ``SimpleTokenizer`` and the OpenAI CLIP tokenizer on the hub share one
    vocabulary: bytes, bytes + ``</w>``, the first 48,894 merges, then the two special tokens.
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    lines = gzip.open(default_bpe(), "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def build_clip_tokenizer(folder: str | os.PathLike):
    """A real ``CLIPTokenizer`` (vocabulary size 49,408), built offline into ``folder``."""
    from transformers import CLIPTokenizer

    folder = write_clip_tokenizer_files(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
