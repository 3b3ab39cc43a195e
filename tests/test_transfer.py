"""Classic style transfer (``styleboost transfer``): Gatys lowers its style loss with the content kept, AdaIN at
alpha 0 decodes the content, the trainers lower their loss and resume exactly, outputs follow generate's record
format and re-run rules and are scored by ``styleboost evaluate``, bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import load_entry_point
from helpers import killed_after_first_checkpoint, one_line_error
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from styleboost.cli import main
from styleboost.core.errors import StyleBoostError
from styleboost.core.images import file_sha256
from styleboost.evaluation import evaluate as evaluate_module
from styleboost.generation.records import PNG_RECORD_KEY, read_metadata
from styleboost.testing import tiny_eval_models, write_styled_run, write_styleref
from styleboost.transfer.adain import SHIPPED_DECODER, AdaIN, Decoder, load_adain, save_decoder
from styleboost.transfer.adain_training import DECODER_FILE, AdainTrainConfig, train_adain
from styleboost.transfer.config import TransferConfig
from styleboost.transfer.encoder_decoder import MODEL_FILE
from styleboost.transfer.gatys import GatysSettings, gatys_transfer, losses, style_targets
from styleboost.transfer.inputs import image_paths, load_tensor
from styleboost.transfer.trainer import seeded
from styleboost.transfer.training_data import write_contents
from styleboost.transfer.transfer import transfer_folder
from styleboost.transfer.transfer_training import TransferTrainConfig, train_transfer
from styleboost.transfer.vgg import CONV4_2, RELU4_1, FrozenVGG, weights_identity

SIZE = 32
PROMPTS = {"people": ["a portrait of a woman in [V] style"], "non_people": ["a red car on a street in [V] style"]}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """content/: 2 pointillist images; style/: 2 woodcuts; generated/: a generate-like run of 2 prompts x 1 seed."""
    root = tmp_path_factory.mktemp("transfer")
    write_styleref(root / "content", "pointillism", count=2, size=SIZE, seed=3)
    write_styleref(root / "style", "woodcut", count=2, size=SIZE)
    write_styled_run(root / "generated", "pointillism", PROMPTS, images_per_prompt=1, size=SIZE)
    return root


@pytest.fixture(scope="module")
def vgg() -> FrozenVGG:
    return FrozenVGG(29, "random")


def gatys_args(folders: Path, out: Path, *extra: str) -> list[str]:
    return ["transfer", "--method", "gatys", "--content", str(folders / "content"), "--style", str(folders / "style"),
            "--out", str(out), "--size", str(SIZE), "--steps", "5", "--no-progress", *extra]


def test_gatys_lowers_the_style_loss_while_the_content_loss_stays_bounded(folders, vgg):
    content = load_tensor(image_paths(folders / "content", "--content")[0], SIZE)
    styles = [load_tensor(p, SIZE) for p in image_paths(folders / "style", "--style")]
    targets = style_targets(vgg, styles)
    image, history = gatys_transfer(vgg, content, targets, GatysSettings(steps=20, progress=False))
    content_features = vgg(content, [CONV4_2])[CONV4_2]
    with torch.no_grad():
        final_content, final_style = losses(vgg, image, content_features, targets)
        style_image_content, _ = losses(vgg, styles[0], content_features, targets)
    assert final_style < 0.2 * history["style"][0]
    # the content is kept: nearer the content image's features than a style image is
    assert final_content < style_image_content
    assert image.shape == content.shape and 0 <= image.min() and image.max() <= 1


def test_transfer_writes_a_png_per_content_with_its_record_and_follows_the_rerun_rules(folders, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(gatys_args(folders, out)) == 0
    records = read_metadata(out)
    assert sorted(records) == ["images/ref_00.png", "images/ref_01.png"]
    record = records["images/ref_00.png"]
    assert record["method"] == "gatys" and record["steps"] == 5 and record["style_files"] == ["ref_00.png", "ref_01.png"]
    with Image.open(out / "images/ref_00.png") as image:
        assert image.size == (SIZE, SIZE)
        assert json.loads(image.text[PNG_RECORD_KEY]) == record
    assert "s/image" in capsys.readouterr().out
    written = (out / "images/ref_00.png").stat().st_mtime_ns
    assert main(gatys_args(folders, out)) == 0  # same settings: skipped, not made again
    assert (out / "images/ref_00.png").stat().st_mtime_ns == written
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 2
    assert main(gatys_args(folders, out, "--style-weight", "10")) == 2  # other settings: refused
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "style_weight" in err and "--overwrite" in err
    assert main(gatys_args(folders, out, "--style-weight", "10", "--overwrite")) == 0
    assert read_metadata(out)["images/ref_00.png"]["style_weight"] == 10
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 2


def bad_folder(tmp: Path) -> Path:
    (tmp / "bad").mkdir(exist_ok=True)
    (tmp / "bad" / "broken.png").write_bytes(b"not a png")
    return tmp / "bad"


@pytest.mark.parametrize("flag, make, expected", [
    ("--content", lambda tmp: tmp / "missing", "no such file or folder"),
    ("--style", lambda tmp: tmp / "missing", "no such file or folder"),
    ("--style", lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no images"),
    ("--content", bad_folder, "could be decoded"),
    ("--style", lambda tmp: bad_folder(tmp) / "broken.png", "could be decoded"),
    ("--vgg-weights", lambda tmp: tmp / "missing.safetensors", "expected an existing .safetensors file"),
])
def test_bad_input_is_one_line(folders, tmp_path, capsys, flag, make, expected):
    args = gatys_args(folders, tmp_path / "out")
    if flag in args:
        args[args.index(flag) + 1] = str(make(tmp_path))
    else:
        args += [flag, str(make(tmp_path))]
    assert main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("styleboost: error:")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err, err


def test_a_restyled_generated_run_keeps_its_prompts_and_is_scored_by_evaluate(folders, tmp_path, monkeypatch):
    out = tmp_path / "restyled"
    args = gatys_args(folders, out)
    args[args.index("--content") + 1] = str(folders / "generated")
    assert main(args) == 0
    source, restyled = read_metadata(folders / "generated"), read_metadata(out)
    assert sorted(restyled) == sorted(source)
    for file, record in source.items():
        for key in ("prompt", "prompt_template", "prompt_set", "prompt_index", "seed"):
            assert restyled[file][key] == record[key]
    monkeypatch.setattr(evaluate_module, "build_models", lambda config: tiny_eval_models())
    report_dir = tmp_path / "report"
    assert main(["evaluate", "--run", f"gatys={out}", "--styleref", str(folders / "style"), "--out", str(report_dir),
                 "--image-size", str(SIZE), "--workers", "0", "--cache-dir", "none", "--no-progress",
                 "--kid-subsets", "5"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    run = report["runs"][0]
    assert run["name"] == "gatys"
    assert run["overall"]["clip_t"] is not None and run["overall"]["style_score"] is not None


# --------------------------------------------------------------------------- AdaIN


def test_adain_at_alpha_0_decodes_the_content_features(folders):
    decoder = seeded(0, lambda: Decoder((8, 8, 8))).eval()
    model = AdaIN(decoder, "random")
    content = load_tensor(image_paths(folders / "content", "--content")[0], SIZE)
    target = model.style_statistics([load_tensor(p, SIZE) for p in image_paths(folders / "style", "--style")])
    with torch.no_grad():
        direct = decoder(model.encoder(content, [RELU4_1])[RELU4_1]).clamp(0, 1)
        assert torch.equal(model.transfer(content, target, 0.0), direct)
        assert not torch.equal(model.transfer(content, target, 1.0), direct)


def adain_args(folders: Path, out: Path, *extra: str) -> list[str]:
    return ["transfer", "--method", "adain", "--content", str(folders / "content"), "--style", str(folders / "style"),
            "--out", str(out), "--size", str(SIZE), "--no-progress", *extra]


def adain_config(folders: Path, **settings) -> AdainTrainConfig:
    common = dict(content_dir=str(folders / "content"), style_dir=str(folders / "style"), size=SIZE, batch_size=2,
                  widths=[8, 8, 8], max_train_steps=6, checkpointing_steps=3, learning_rate=2e-3, progress=False)
    return AdainTrainConfig(**{**common, **settings})


def test_train_adain_lowers_its_loss_and_resumes_exactly(folders, tmp_path, monkeypatch):
    straight = train_adain(adain_config(folders, output_dir=str(tmp_path / "straight")))
    run = json.loads((straight / "run.json").read_text())
    assert run["status"] == "finished" and run["train_seconds"] >= 0
    assert run["loss_after"]["loss"] < run["loss_before"]["loss"]
    make = lambda **kw: adain_config(folders, **kw)  # noqa: E731
    killed_after_first_checkpoint(make, tmp_path / "resumed", monkeypatch, trainer=train_adain)
    assert not (tmp_path / "resumed" / DECODER_FILE).exists()
    resumed = train_adain(adain_config(folders, output_dir=str(tmp_path / "resumed"), resume_from_checkpoint="latest"))
    assert json.loads((resumed / "run.json").read_text())["resumed_from_step"] == 3
    a, b = load_file(str(straight / DECODER_FILE)), load_file(str(resumed / DECODER_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the trained decoder is one --decoder reads
    assert main(adain_args(folders, tmp_path / "out", "--decoder", str(straight / DECODER_FILE))) == 0


def test_the_shipped_decoder_loads_in_float32_and_restyles(folders):
    with safe_open(str(SHIPPED_DECODER), framework="pt") as handle:
        assert handle.metadata()["vgg_weights"] == weights_identity("random")
        assert handle.metadata()["dtype"] == "float16"
    assert SHIPPED_DECODER.stat().st_size < 3.2e6
    model = load_adain(None, "random")
    assert all(p.dtype == torch.float32 for p in model.decoder.parameters())
    content = load_tensor(image_paths(folders / "content", "--content")[0], SIZE)
    target = model.style_statistics([load_tensor(p, SIZE) for p in image_paths(folders / "style", "--style")])
    with torch.no_grad():
        image = model.transfer(content, target, 1.0)
    assert image.shape == content.shape and torch.isfinite(image).all()
    assert (image - content).abs().mean() > 0.02


def test_the_shipped_decoder_gives_back_the_content_and_its_outputs_follow_it(folders, tmp_path):
    """On contents it never saw, the decoder inverts the encoder (alpha 0 is the content, to the blur of a small
    decoder: nearer than the content's own flat mean colour), and restyled images keep their content's layout
    (a decoder that paints one texture whatever the content, as the one this replaced did, fails both)."""
    model = load_adain(None, "random")
    unseen = write_contents(tmp_path / "contents", 4, seed=7)  # the decoder trained on seed 0's contents
    contents = torch.cat([load_tensor(p, 64) for p in image_paths(unseen, "--content")])
    target = model.style_statistics([load_tensor(p, 64) for p in image_paths(folders / "style", "--style")])
    with torch.no_grad():
        rebuilt = model.transfer(contents, target, 0.0)
        styled = model.transfer(contents, target, 1.0)
    flat = contents.mean(dim=(2, 3), keepdim=True)
    assert (rebuilt - contents).abs().mean() < 0.7 * (flat - contents).abs().mean()  # 0.11 vs 0.20 (old: 0.24)
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    for content, image in zip(contents, styled):
        pair = torch.stack([(content * luma).sum(0).flatten(), (image * luma).sum(0).flatten()])
        assert torch.corrcoef(pair)[0, 1] > 0.7  # 0.75-0.93 (old: 0.29-0.60)


def test_the_identity_loss_is_trained_and_recorded(folders, tmp_path):
    plain = json.loads((train_adain(adain_config(folders, output_dir=str(tmp_path / "plain"))) / "run.json").read_text())
    assert "identity" not in plain["loss_after"]
    run = json.loads((train_adain(adain_config(folders, output_dir=str(tmp_path / "id"), identity_weight=10.0,
                                               max_train_steps=12)) / "run.json").read_text())
    assert run["loss_after"]["identity"] < run["loss_before"]["identity"]


def test_adain_records_carry_alpha_and_the_decoder(folders, tmp_path):
    assert main(adain_args(folders, tmp_path / "out", "--alpha", "0.5")) == 0
    record = read_metadata(tmp_path / "out")["images/ref_00.png"]
    assert record["method"] == "adain" and record["alpha"] == 0.5
    assert record["decoder"] == str(SHIPPED_DECODER) and len(record["decoder_sha256"]) == 16
    assert record["vgg_weights"] == weights_identity("random")


def test_images_of_another_decoder_are_refused_or_with_remake_stale_made_again(folders, tmp_path):
    other = save_decoder(seeded(1, lambda: Decoder((8, 8, 8))), tmp_path / "other.safetensors", weights_identity("random"))
    out = tmp_path / "out"
    assert main(adain_args(folders, out, "--decoder", str(other))) == 0
    config = TransferConfig(method="adain", content=str(folders / "content"), style=str(folders / "style"),
                            out=str(out), size=SIZE, progress=False)
    with pytest.raises(StyleBoostError, match="decoder"):
        transfer_folder(config)  # the shipped decoder now: the images of the other one do not count as done
    records = transfer_folder(config, remake_stale=True)
    shipped = file_sha256(SHIPPED_DECODER)[:16]
    assert all(r["decoder_sha256"] == shipped for r in records)
    lines = read_metadata(out)
    assert len(lines) == len(records) and all(r["decoder_sha256"] == shipped for r in lines.values())


# --------------------------------------------------------------------------- the per-style encoder-decoder


def transfer_train_config(folders: Path, **settings) -> TransferTrainConfig:
    common = dict(styleref_dir=str(folders / "style"), content_dir=str(folders / "content"), size=SIZE, batch_size=2,
                  widths=[8, 8, 8], max_train_steps=6, checkpointing_steps=3, learning_rate=2e-3, progress=False)
    return TransferTrainConfig(**{**common, **settings})


@pytest.fixture(scope="module")
def encoder_decoder_run(folders) -> Path:
    return train_transfer(transfer_train_config(folders, output_dir=str(folders / "encoder-decoder")))


def test_train_transfer_lowers_its_loss_and_resumes_exactly(folders, encoder_decoder_run, tmp_path, monkeypatch):
    run = json.loads((encoder_decoder_run / "run.json").read_text())
    assert run["status"] == "finished" and run["train_seconds"] >= 0
    assert run["loss_after"]["loss"] < run["loss_before"]["loss"]
    make = lambda **kw: transfer_train_config(folders, **kw)  # noqa: E731
    killed_after_first_checkpoint(make, tmp_path / "resumed", monkeypatch, trainer=train_transfer)
    resumed = train_transfer(transfer_train_config(folders, output_dir=str(tmp_path / "resumed"),
                                                   resume_from_checkpoint="latest"))
    a, b = load_file(str(encoder_decoder_run / MODEL_FILE)), load_file(str(resumed / MODEL_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_encoder_decoder_run_writes_records_evaluate_scores(folders, encoder_decoder_run, tmp_path, monkeypatch):
    out = tmp_path / "restyled"
    assert main(["transfer", "--method", "encoder-decoder", "--model", str(encoder_decoder_run), "--content",
                 str(folders / "generated"), "--out", str(out), "--size", str(SIZE), "--no-progress"]) == 0
    records = read_metadata(out)
    assert sorted(records) == sorted(read_metadata(folders / "generated"))
    record = next(iter(records.values()))
    assert record["method"] == "encoder-decoder" and record["model_dir"] == str(encoder_decoder_run)
    assert record["model_steps"] == 6 and len(record["model_sha256"]) == 16
    assert record["style_files"] == ["ref_00.png", "ref_01.png"]
    monkeypatch.setattr(evaluate_module, "build_models", lambda config: tiny_eval_models())
    report_dir = tmp_path / "report"
    assert main(["evaluate", "--run", f"ed={out}", "--styleref", str(folders / "style"), "--out", str(report_dir),
                 "--image-size", str(SIZE), "--workers", "0", "--cache-dir", "none", "--no-progress",
                 "--kid-subsets", "5"]) == 0
    run = json.loads((report_dir / "report.json").read_text())["runs"][0]
    assert run["name"] == "ed" and run["overall"]["style_score"] is not None


# --------------------------------------------------------------------------- bad input: one line


def foreign_safetensors(tmp: Path) -> Path:
    save_file({"weight": torch.zeros(2)}, str(tmp / "other.safetensors"))
    return tmp / "other.safetensors"


def decoder_of_other_weights(tmp: Path) -> Path:
    return save_decoder(Decoder((8, 8, 8)), tmp / "other-vgg.safetensors", "random-seed0-000000000000")


@pytest.mark.parametrize("args, expected", [
    (["--method", "adain", "--decoder", "{tmp}/missing.safetensors"], "file not found"),
    (["--method", "adain", "--decoder", foreign_safetensors], "not an AdaIN decoder written by styleboost"),
    (["--method", "adain", "--decoder", lambda tmp: bad_folder(tmp) / "broken.png"], "not a readable safetensors"),
    (["--method", "adain", "--decoder", decoder_of_other_weights], "was trained on VGG19 weights random-seed0-0000"),
    (["--method", "encoder-decoder", "--model", "{tmp}/missing"], "folder not found"),
    (["--method", "encoder-decoder", "--model", lambda tmp: (tmp / "e").mkdir() or tmp / "e"], "no model.safetensors"),
    (["--method", "encoder-decoder"], "--model is required"),
])
def test_bad_transfer_models_are_one_line(folders, tmp_path, capsys, args, expected):
    given = [str(a(tmp_path)) if callable(a) else a.format(tmp=tmp_path) for a in args]
    base = ["transfer", "--content", str(folders / "content"), "--out", str(tmp_path / "out"), "--size", str(SIZE),
            "--no-progress"] + ([] if "encoder-decoder" in given else ["--style", str(folders / "style")])
    assert main(base + given) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("styleboost: error:")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err, err


def test_a_style_given_to_the_encoder_decoder_is_refused_in_one_line(folders, encoder_decoder_run, tmp_path, capsys):
    """The network learnt its style from its StyleRef set; a --style beside it cannot apply."""
    assert main(["transfer", "--method", "encoder-decoder", "--model", str(encoder_decoder_run), "--content",
                 str(folders / "content"), "--style", str(folders / "style"), "--out", str(tmp_path / "out"),
                 "--size", str(SIZE), "--no-progress"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("styleboost: error:")]
    assert len(errors) == 1 and "--style is not used with --method encoder-decoder" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script, flag", [
    ("train_adain", "--content_dir"), ("train_adain", "--style_dir"),
    ("train_transfer", "--content_dir"), ("train_transfer", "--styleref_dir"),
])
@pytest.mark.parametrize("state, expected", [("missing", "folder not found"), ("empty", "no images")])
def test_trainer_folders_missing_or_empty_are_one_line(folders, tmp_path, capsys, script, flag, state, expected):
    dirs = {"--content_dir": folders / "content", "--style_dir": folders / "style", "--styleref_dir": folders / "style"}
    used = ["--content_dir", "--style_dir" if script == "train_adain" else "--styleref_dir"]
    (tmp_path / "empty").mkdir()
    dirs[flag] = tmp_path / state
    argv = [x for f in used for x in (f, str(dirs[f]))] + ["--output_dir", str(tmp_path / "run"), "--no-progress"]
    line = one_line_error(load_entry_point(script).main, capsys, argv, prog=f"{script}.py")
    assert flag in line and expected in line
    assert not (tmp_path / "run").exists()  # a run that cannot start leaves nothing behind
