"""Bad input gets one clear line naming the file or flag, exit status 2, and nothing written is lost."""

from __future__ import annotations

import json

import torch
from conftest import write_styleref_images
from helpers import one_line_error
from safetensors.torch import load_file


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def test_missing_styleref_folder(train_main, capsys, base_args, tmp_path):
    line = one_line_error(train_main, capsys, with_flag(base_args, "--styleref_dir", str(tmp_path / "nope")))
    assert "--styleref_dir" in line and "nope" in line and "not found" in line


def test_empty_folder(train_main, capsys, base_args, tmp_path):
    (tmp_path / "empty").mkdir()
    line = one_line_error(train_main, capsys, with_flag(base_args, "--aux_dir", str(tmp_path / "empty")))
    assert "--aux_dir" in line and "no images" in line


def test_undecodable_images_are_skipped_and_named_or_fatal_when_none_is_left(train_main, capsys, base_args, tmp_path):
    folder = tmp_path / "ref"
    write_styleref_images(folder, 2, size=32)
    (folder / "broken.png").write_bytes(b"not a png at all")
    assert train_main(with_flag(base_args, "--styleref_dir", str(folder))) == 0
    assert "broken.png" in capsys.readouterr().err

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "a.jpg").write_bytes(b"\xff\xd8garbage")
    line = one_line_error(
        train_main, capsys, with_flag(with_flag(base_args, "--styleref_dir", str(only_bad)), "--output_dir", str(tmp_path / "o2"))
    )
    assert "--styleref_dir" in line and "could be decoded" in line


def test_transparent_and_unused_images_are_named_once_and_a_bad_background_is_refused(train_main, capsys, base_args,
                                                                                      tmp_path):
    from PIL import Image

    folder = tmp_path / "ref"
    paths = write_styleref_images(folder, 3, size=32)
    rgba = Image.open(paths[0]).convert("RGBA")
    rgba.putalpha(0)
    rgba.save(paths[0])
    Image.open(paths[1]).save(folder / "animated.gif")
    args = with_flag(base_args, "--styleref_dir", str(folder)) + ["--image_background", "black"]
    assert train_main(args) == 0
    err = capsys.readouterr().err
    transparent = [line for line in err.splitlines() if "transparent pixels" in line]
    assert len(transparent) == 1 and "1 of 3" in transparent[0] and "#000000" in transparent[0], transparent
    assert "animated.gif" in err  # named as not used, instead of skipped silently
    line = one_line_error(train_main, capsys, with_flag(args, "--image_background", "blackish") + ["--overwrite"])
    assert "--image_background" in line and "blackish" in line


LONG = "a very detailed picture of " + "many small houses, " * 20


def test_caption_files_that_are_not_utf8_or_too_long(train_main, capsys, base_args, tmp_path):
    folder = tmp_path / "ref"
    paths = write_styleref_images(folder, 2, size=32)
    args = with_flag(base_args, "--styleref_dir", str(folder))
    paths[0].with_suffix(".txt").write_bytes("un caf\xe9 in [V] style".encode("latin-1"))
    line = one_line_error(train_main, capsys, args)
    assert str(paths[0].with_suffix(".txt")) in line and "UTF-8" in line  # before: a UnicodeDecodeError traceback

    paths[0].with_suffix(".txt").write_text(LONG + "in [V] style")  # the token past the 77-token window
    line = one_line_error(train_main, capsys, args)
    assert str(paths[0].with_suffix(".txt")) in line and "'sks' would be cut off" in line  # before: trained, no token

    paths[0].with_suffix(".txt").write_text("\ufeff[V] style, " + LONG)  # a BOM, and the token inside the window
    assert train_main(args) == 0
    assert "it is cut after" in capsys.readouterr().err
    trained = json.loads((tmp_path / "out" / "run.json").read_text())["data"]["captions"][str(paths[0])]
    assert trained.startswith("sks style, a very detailed") and len(trained) < len(LONG)


def test_caption_without_token(train_main, capsys, base_args, tmp_path):
    folder = tmp_path / "ref"
    paths = write_styleref_images(folder, 2, size=32)
    paths[1].with_suffix(".txt").write_text("a person in watercolor style")
    line = one_line_error(train_main, capsys, with_flag(base_args, "--styleref_dir", str(folder)))
    assert paths[1].with_suffix(".txt").name in line and "none of the tokens" in line


def test_placeholder_for_a_token_that_is_not_bound(train_main, capsys, base_args, tmp_path):
    folder = tmp_path / "ref"
    paths = write_styleref_images(folder, 1, size=32)
    paths[0].with_suffix(".txt").write_text("a person in [V2] style")
    line = one_line_error(train_main, capsys, with_flag(base_args, "--styleref_dir", str(folder)))
    assert "[V2]" in line


def test_resolution_not_a_multiple_of_8(train_main, capsys, base_args):
    line = one_line_error(train_main, capsys, base_args + ["--resolution", "30"])
    assert "--resolution 30" in line and "multiple of 8" in line


def test_unknown_model_path(train_main, capsys, base_args, tmp_path):
    line = one_line_error(train_main, capsys, with_flag(base_args, "--pretrained_model_name_or_path", "./no/such/model"))
    assert "model not found" in line and "no/such/model" in line


def test_folder_that_is_not_a_pipeline(train_main, capsys, base_args, tmp_path):
    line = one_line_error(train_main, capsys, with_flag(base_args, "--pretrained_model_name_or_path", str(tmp_path)))
    assert "model_index.json" in line


def test_pickle_checkpoint_refused(train_main, capsys, base_args, tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"pickle")
    line = one_line_error(train_main, capsys, with_flag(base_args, "--pretrained_model_name_or_path", str(tmp_path / "model.ckpt")))
    assert "pickle" in line and "--allow_pickle" in line


def test_output_folder_holding_a_run_is_not_overwritten(train_main, capsys, base_args, tmp_path):
    assert train_main(base_args) == 0
    capsys.readouterr()
    weights = tmp_path / "out" / "pytorch_lora_weights.safetensors"
    before = weights.read_bytes()
    line = one_line_error(train_main, capsys, base_args + ["--learning_rate", "0.5"])
    assert "already holds a run" in line and "--overwrite" in line
    assert weights.read_bytes() == before
    assert train_main(base_args + ["--overwrite", "--learning_rate", "0.5"]) == 0
    assert weights.read_bytes() != before


def test_textual_inversion_without_new_token(train_main, capsys, base_args):
    line = one_line_error(train_main, capsys, base_args + ["--method", "textual_inversion"])
    assert "--new_token" in line


def test_multi_piece_token(train_main, capsys, base_args):
    line = one_line_error(train_main, capsys, base_args + ["--token", "zxqvstyle"])
    assert "zxqvstyle" in line and "--new_token" in line


def test_bad_yaml_config(train_main, capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 1e-4\nlearnign_rate: 3\n")
    line = one_line_error(train_main, capsys, ["--config", str(config)])
    assert "c.yaml" in line and "learnign_rate" in line


def test_nan_loss_keeps_only_checkpoints_that_did_not_diverge(train_main, capsys, base_args, tmp_path):
    # warm-up: the first update has LR 0 (checkpoint-1 is good); the second, LR 2.5e29, diverges, and
    # the loss of step 3 is NaN. Before, checkpoint-2 was kept and named, and resuming failed again.
    args = with_flag(base_args, "--max_train_steps", "6") + [
        "--learning_rate", "1e30", "--lr_scheduler", "linear", "--lr_warmup_steps", "4", "--checkpointing_steps", "1",
        "--max_grad_norm", "1e38"]
    line = one_line_error(train_main, capsys, args)
    out = tmp_path / "out"
    assert "NaN" in line and "step 3" in line and f"last good checkpoint: {out / 'checkpoint-1'}" in line
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert not (out / "pytorch_lora_weights.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "failed"

    # resuming from the named checkpoint with a lower learning rate finishes, with finite weights
    assert train_main(with_flag(args, "--learning_rate", "1e-3") + ["--resume_from_checkpoint", "latest"]) == 0
    assert "--learning_rate 1e+30 -> 0.001" in capsys.readouterr().err
    weights = load_file(str(out / "pytorch_lora_weights.safetensors"))
    assert all(torch.isfinite(w).all() and w.abs().max() < 1 for w in weights.values())
