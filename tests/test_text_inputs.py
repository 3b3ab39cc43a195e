"""The small text files a user writes (prompt files, YAML configs): UTF-8, BOMs dropped, anything else refused in
one line naming the file; and prompts longer than the CLIP tokenizer's window (styleboost.sd.prompts.fit_prompt)."""

from __future__ import annotations

import pytest

from styleboost import cli
from styleboost.core.errors import StyleBoostError
from styleboost.core.text import read_text
from styleboost.sd.prompts import fit_prompt, prompt_lines, read_prompt_file
from styleboost.sd.tokenizer import build_clip_tokenizer

BOM = "\ufeff".encode("utf-8")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The real CLIP tokenizer (77 tokens), with one added token as textual inversion adds them."""
    tok = build_clip_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    tok.add_tokens(["<s1>"])
    return tok


def _words(n: int) -> str:
    """``n`` one-token words."""
    return " ".join(["red"] * n)


# ----------------------------------------------------------------------------- reading text files


def test_a_file_that_is_not_utf8_is_one_line_naming_the_file_and_the_byte(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("a cat\nun caf\u00e9 in [V] style\n".encode("latin-1"))
    with pytest.raises(StyleBoostError) as err:
        read_text(path, what="prompt file")
    message = str(err.value)
    assert str(path) in message and "not UTF-8" in message and len(message.splitlines()) == 1
    assert "0xe9 at offset 12, line 2" in message


def test_utf16_is_named_as_such(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("a cat\n".encode("utf-16"))
    with pytest.raises(StyleBoostError, match="is not UTF-8 text \\(it is UTF-16\\)"):
        read_text(path, what="prompt file")


def test_bom_and_windows_line_ends_are_dropped(tmp_path):
    path = tmp_path / "caption.txt"
    path.write_bytes(BOM + "a caf\u00e9\r\nin [V] style\r\n".encode("utf-8"))
    assert read_text(path, what="caption") == "a caf\u00e9\nin [V] style\n"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(StyleBoostError, match="prompt file not found: .*nope.txt"):
        read_text(tmp_path / "nope.txt", what="prompt file")


def test_a_bom_does_not_turn_a_first_comment_line_into_a_prompt(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes(BOM + b"# my prompts\na cat in [V] style\n")
    assert read_prompt_file(path) == ["a cat in [V] style"]
    assert prompt_lines(path) == [(2, "a cat in [V] style")]


def test_a_yaml_config_that_is_not_utf8_is_one_line_through_the_cli(tmp_path, capsys):
    config = tmp_path / "gen.yaml"
    config.write_bytes("negative_prompt: flou, d\u00e9form\u00e9\n".encode("latin-1"))
    argv = ["generate", "--config", str(config), "--model", str(tmp_path / "m"), "--prompts", "p.txt", "--out", "o"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"config file {config} is not UTF-8 text (byte 0xe9 at offset 24, line 1)" in err


def test_a_yaml_config_with_a_bom_reads(tmp_path):
    from styleboost.core.settings import load_yaml_settings
    from styleboost.generation.generate import GenerateConfig

    config = tmp_path / "gen.yaml"
    config.write_bytes(BOM + "# generation\nsteps: 3\nnegative_prompt: d\u00e9form\u00e9\n".encode("utf-8"))
    assert load_yaml_settings(config, GenerateConfig) == {"steps": 3, "negative_prompt": "d\u00e9form\u00e9"}


# ----------------------------------------------------------------------------- the tokenizer's window


def test_a_prompt_that_fits_is_unchanged_and_silent(tokenizer, capsys):
    prompt = f"{_words(74)} sks"  # 75 + start and end = 77
    assert fit_prompt(tokenizer, prompt, ["sks"], source="p.txt line 1") == prompt
    assert capsys.readouterr().err == ""


def test_a_long_prompt_is_cut_after_a_whole_word_with_one_notice(tokenizer, capsys):
    prompt = f"<s1> style, a portrait of a woman, {_words(90)}"
    drawn = fit_prompt(tokenizer, prompt, ["<s1>"], source="people.txt line 3")
    assert prompt.startswith(drawn + " ") and len(tokenizer(drawn).input_ids) == 77
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("styleboost: people.txt line 3: '<s1> style, a portrait of a ...' has")
    assert "tokens (start and end included), over the 77 the text encoder reads; it is cut after '... red" in err[0]


def test_a_cut_that_would_drop_the_token_is_refused(tokenizer):
    with pytest.raises(StyleBoostError) as err:
        fit_prompt(tokenizer, f"a portrait of a woman, {_words(90)}, in sks style", ["sks"], source="people.txt line 4")
    message = str(err.value)
    assert message.startswith("people.txt line 4: 'a portrait of a woman, red ...' has 102 tokens")
    assert "over the 77" in message and "'sks' would be cut off" in message and len(message.splitlines()) == 1


def test_a_multi_piece_token_across_the_edge_of_the_window_is_refused(tokenizer):
    assert len(tokenizer.tokenize("zwx")) == 2
    with pytest.raises(StyleBoostError, match="'zwx' would be cut off"):  # piece one is the 75th token, piece two out
        fit_prompt(tokenizer, f"{_words(74)} zwx", ["zwx"], source="p.txt line 1")


def test_multi_vector_tokens_count_as_the_pipeline_spells_them(tokenizer):
    prompt = f"{_words(72)} <s1>"  # 73 tokens as written: fits
    assert fit_prompt(tokenizer, prompt, ["<s1>"], source="p.txt line 1") == prompt
    def four_vectors_more(text: str) -> str:  # as diffusers' maybe_convert_prompt spells a multi-vector token
        return text.replace("<s1>", "<s1> sks sks sks sks")

    with pytest.raises(StyleBoostError, match="'<s1>' would be cut off"):
        fit_prompt(tokenizer, prompt, ["<s1>"], source="p.txt line 1", expand=four_vectors_more)
