"""Prompts as the text encoder reads them: prompt files (plain UTF-8 text, one prompt a line, ``[V]`` for the bound
token, ``#`` for comments) and fitting a prompt or caption into the tokenizer's window (77 tokens for CLIP)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice
from styleboost.core.text import read_text
from styleboost.sd.tokens import tokens_in

if TYPE_CHECKING:  # typing only: transformers takes seconds to import
    from transformers import PreTrainedTokenizerBase

SHOWN_WORDS = 6  # words of a prompt quoted in a notice or an error
SHOWN_CHARS = 60  # and at most this many characters


def prompt_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """(line number, prompt) of each prompt of a text file; blank lines and ``#`` comment lines are ignored."""
    text = read_text(path, what="prompt file")
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    prompts = [(number, line) for number, line in lines if line and not line.startswith("#")]
    if not prompts:
        raise StyleBoostError(f"prompt file {path} has no prompts (only blank or # comment lines)")
    return prompts


def read_prompt_file(path: str | os.PathLike) -> list[str]:
    """Prompts of a text file: one a line; blank lines and ``#`` comment lines are ignored."""
    return [prompt for _, prompt in prompt_lines(path)]


def fit_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str, tokens: list[str], *, source: str,
               expand: Callable[[str], str] | None = None, main_process: bool = True) -> str:
    """``prompt`` as the text encoder reads it through ``tokenizer``: unchanged when it fits the window
    (``tokenizer.model_max_length``, start and end tokens included), else cut after its last whole word that fits,
    with a notice naming ``source`` (e.g. "people.txt line 3"). A cut that would drop one of the bound ``tokens``
    found in the prompt is refused in one line. ``expand`` is what the pipeline makes of a prompt before tokenizing
    it (diffusers' ``maybe_convert_prompt``, which spells a multi-vector embedding token as several)."""
    def count(text: str) -> int:  # verbose=False: no transformers warning of its own for a long text
        return len(tokenizer(expand(text) if expand else text, verbose=False).input_ids)

    limit = tokenizer.model_max_length
    total = count(prompt)
    if total <= limit:
        return prompt
    drawn = _longest_fitting_prefix(prompt, count, limit) or tokenizer.decode(
        tokenizer(prompt, truncation=True).input_ids, skip_special_tokens=True)
    size = f"{total} tokens (start and end included), over the {limit}"
    cut = [token for token in tokens_in(prompt, tokens) if token not in tokens_in(drawn, tokens)]
    if cut:
        raise StyleBoostError(
            f"{source}: {_shown(prompt)!r} has {size} the text encoder reads, so its token {cut[0]!r} would be cut "
            "off; shorten it or move the token earlier")
    notice(f"{source}: {_shown(prompt)!r} has {size} the text encoder reads; it is cut after "
           f"{_shown(drawn, last=True)!r}", main_process=main_process)
    return drawn


def _longest_fitting_prefix(text: str, count: Callable[[str], int], limit: int) -> str:
    """The longest run of whole words at the start of ``text`` whose token count is at most ``limit`` ('' if none);
    a binary search, as a prefix never has more tokens than a longer one."""
    ends = [match.end() for match in re.finditer(r"\S+", text)]
    low, high = 0, len(ends)  # ends[:low] fit; ends[high:] do not
    while low < high:
        middle = (low + high + 1) // 2
        if count(text[: ends[middle - 1]]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[: ends[low - 1]] if low else ""


def _shown(text: str, *, last: bool = False) -> str:
    """The first (or last) few words of ``text``, with '...' where words are left out."""
    words = text.split()
    if len(words) > SHOWN_WORDS:
        text = "... " + " ".join(words[-SHOWN_WORDS:]) if last else " ".join(words[:SHOWN_WORDS]) + " ..."
    if len(text) > SHOWN_CHARS:
        text = "..." + text[-SHOWN_CHARS:] if last else text[:SHOWN_CHARS] + "..."
    return text
