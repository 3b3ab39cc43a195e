"""The ``styleboost`` command: every sub-command is wired to its library function and reports bad input in one line."""

from __future__ import annotations

import pytest

from styleboost import cli

SUBCOMMANDS = ("generate", "make-style-set", "evaluate", "style-eval", "protocol", "compare")


def test_every_sub_command_is_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in SUBCOMMANDS)


@pytest.mark.parametrize("argv, message", [
    (["protocol", "--protocol", "missing.yaml", "--run", "base=", "--styleref", "s", "--out", "o"], "missing.yaml"),
    (["compare", "--out", "o", "--methods", "lora"], "must include base"),
    (["generate", "--prompts", "p.txt", "--out", "o"], "--model is required"),
])
def test_a_sub_command_names_what_is_wrong_in_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()
