"""Binding tokens to a style: placeholders in prompts, new tokens and their embeddings.

Prompts and captions write the token as ``[V]`` (the first bound token) or ``[V1]``, ``[V2]``...
(Multi-StyleForge: one token per part of a style). The literal token string works too.
"""

from __future__ import annotations

import re

import torch

from styleboost.core.errors import StyleBoostError

PLACEHOLDER = re.compile(r"\[V(\d*)\]")


def fill_placeholders(text: str, tokens: list[str], *, source: str = "prompt", plain: int = 1) -> str:
    """Replace ``[Vn]`` with the n-th bound token string and ``[V]`` with token ``plain`` (the first by default)."""

    def substitute(match: re.Match) -> str:
        index = int(match.group(1) or plain)
        if not 1 <= index <= len(tokens):
            raise StyleBoostError(
                f"{source}: {match.group(0)} names token {index}, but only {len(tokens)} token(s) are bound"
            )
        return tokens[index - 1]

    return PLACEHOLDER.sub(substitute, text)


def tokens_in(text: str, tokens: list[str]) -> list[str]:
    """The bound tokens that appear as words in ``text``."""
    return [t for t in tokens if re.search(rf"(?<![\w<]){re.escape(t)}(?![\w>])", text)]


def require_token(text: str, tokens: list[str], *, source: str) -> None:
    """Raise a one-line error when a caption or prompt trains none of the bound tokens."""
    if not tokens_in(text, tokens):
        raise StyleBoostError(f"{source}: caption {text!r} contains none of the tokens {', '.join(tokens)} (write [V])")


def add_new_tokens(tokenizer, text_encoder, new_tokens: list[str], initializer_token: str) -> list[int]:
    """Add ``new_tokens`` to the tokenizer, grow the embedding matrix, copy the initializer's row."""
    init_ids = tokenizer.encode(initializer_token, add_special_tokens=False)
    if len(init_ids) != 1:
        raise StyleBoostError(
            f"--initializer_token {initializer_token!r} is {len(init_ids)} tokens; use a single-token word"
        )
    for token in new_tokens:
        if token in tokenizer.get_vocab():
            raise StyleBoostError(f"--new_token {token!r} is already in the tokenizer; use --token for existing tokens")
    tokenizer.add_tokens(new_tokens)
    ids = tokenizer.convert_tokens_to_ids(new_tokens)
    text_encoder.resize_token_embeddings(len(tokenizer))
    weight = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        for token_id in ids:
            weight[token_id] = weight[init_ids[0]].clone()
    return list(ids)


def existing_token_ids(tokenizer, tokens: list[str]) -> list[int]:
    """Ids of existing bound tokens; each must be one piece of the vocabulary to be bindable."""
    ids = []
    for token in tokens:
        pieces = tokenizer.encode(token, add_special_tokens=False)
        if len(pieces) != 1:
            raise StyleBoostError(
                f"--token {token!r} is split into {len(pieces)} pieces by the tokenizer; pick a single-piece rare "
                "token such as 'sks', or use --new_token"
            )
        ids.append(pieces[0])
    return ids
