"""`styleboost evaluate` end to end on synthetic runs: the numbers rank what they should, CLIP-T reads
the prompt without the token, the report is complete, a re-run comes from the cache, bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from styleboost.cli import main
from styleboost.core.errors import StyleBoostError
from styleboost.evaluation import models as models_module
from styleboost.evaluation.config import EvaluateConfig
from styleboost.evaluation.evaluate import evaluate
from styleboost.evaluation.models import load_gram_backbone
from styleboost.metrics.loader import decode_square
from styleboost.style_encoder.backbones import SmallCNN
from styleboost.testing import register_tiny_open_clip, tiny_eval_models, write_styled_run, write_styleref

PROMPTS = {
    "people": ["a portrait of a woman in [V] style", "a man reading a book in [V] style"],
    "non_people": ["a red car on a street in [V] style"],
}
SIZE = 96


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """StyleRef: 8 woodcut images; runs: the same 9 held-out contents in woodcut and in pointillism."""
    root = tmp_path_factory.mktemp("eval")
    write_styleref(root / "styleref", "woodcut", count=8, size=SIZE)
    write_styled_run(root / "woodcut", "woodcut", PROMPTS, images_per_prompt=3, size=SIZE)
    write_styled_run(root / "pointillism", "pointillism", PROMPTS, images_per_prompt=3, size=SIZE)
    return root


def make_config(root: Path, out: str, runs: tuple[str, ...] = ("woodcut", "pointillism"), **overrides) -> EvaluateConfig:
    settings = dict(
        runs=[f"{name}={root / name}" for name in runs], styleref=str(root / "styleref"), out=str(root / out),
        image_size=SIZE, workers=0, cache_dir=str(root / "cache"), progress=False, kid_subsets=20,
    )
    settings.update(overrides)
    return EvaluateConfig(**settings)


class RecordingTokenizer:
    """Wraps the CLIP tokenizer and keeps every text it is asked to encode."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.texts = tokenizer, []

    def __call__(self, texts):
        self.texts.extend(texts)
        return self.tokenizer(texts)


@pytest.fixture(scope="module")
def models():
    return tiny_eval_models()


@pytest.fixture(scope="module")
def report(folders, models) -> dict:
    models.clip.tokenizer = RecordingTokenizer(models.clip.tokenizer)
    return evaluate(make_config(folders, "report"), models)


def runs_by_name(report: dict) -> dict[str, dict]:
    return {run["name"]: run for run in report["runs"]}


def test_style_score_ranks_the_styleref_style_above_another_style_of_the_same_content(report):
    """Measured with the shipped encoder: style score 0.919 (woodcut) vs 0.439 (pointillism); per image
    the lowest woodcut image scores 0.840, the highest pointillism one 0.531."""
    runs = runs_by_name(report)
    same, other = runs["woodcut"], runs["pointillism"]
    for metric in ("style_score", "style_centroid"):
        assert same["overall"][metric] > other["overall"][metric] + 0.2, metric
        for prompt_set in PROMPTS:
            assert same["prompt_sets"][prompt_set][metric] > other["prompt_sets"][prompt_set][metric] + 0.2
    for mine, theirs in zip(same["prompts"], other["prompts"]):
        assert mine["key"] == theirs["key"]
        assert mine["metrics"]["style_score"] > theirs["metrics"]["style_score"]
    same_images = [im["metrics"]["style_score"] for im in same["images"]]
    other_images = [im["metrics"]["style_score"] for im in other["images"]]
    assert min(same_images) > max(other_images)  # image by image, same content, the StyleRef style wins


def test_kid_and_fid_of_the_styleref_against_itself_are_about_zero(folders, models):
    """Measured (tiny FID features): KID -0.0014 against itself (the unbiased estimate of identical sets
    is slightly negative) vs 0.027 for pointillism; FID -6e-9 vs 0.36."""
    report = evaluate(make_config(folders, "self", runs=("styleref", "pointillism"), metrics=["fid", "kid"]), models)
    assert set(report["models"]) == {"fid_features"}  # only the network the chosen metrics need ran
    runs = runs_by_name(report)
    self_kid, other_kid = runs["styleref"]["overall"]["kid"], runs["pointillism"]["overall"]["kid"]
    self_fid, other_fid = runs["styleref"]["overall"]["fid"], runs["pointillism"]["overall"]["fid"]
    assert other_kid > 0.01 and abs(self_kid) < other_kid / 10
    assert other_fid > 0.1 and abs(self_fid) < other_fid / 1000
    assert runs["styleref"]["overall"]["kid_std"] >= 0
    assert any("no metadata.jsonl" in note for note in report["notes"])  # the StyleRef folder has no prompts


def test_clip_t_encodes_the_prompt_without_the_token(report, models, folders):
    encoded = set(models.clip.tokenizer.texts)
    assert encoded == {"a portrait of a woman", "a man reading a book", "a red car on a street"}
    run = runs_by_name(report)["woodcut"]
    image = run["images"][0]
    pixels = decode_square(folders / "woodcut" / image["file"], SIZE)[None]
    image_embedding = models.clip.encode_images(pixels)[0]
    text_embedding = models.clip.encode_texts(["a portrait of a woman"])[0]
    expected = 100 * max(float(image_embedding @ text_embedding), 0.0)
    assert image["metrics"]["clip_t"] == pytest.approx(expected, abs=1e-3)
    assert run["prompts"][0]["prompt_without_token"] == "a portrait of a woman"


def test_report_files_hold_every_metric_for_every_run_and_every_prompt(report, folders):
    out = folders / "report"
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    keys = [m["key"] for m in report["metrics"]]
    assert set(keys) == {"style_score", "style_centroid", "clip_t", "clip_i", "gram_distance", "fid", "kid",
                         "diversity_style", "diversity_clip"}
    image_keys = {m["key"] for m in report["metrics"] if m["level"] == "image"}
    html = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    for run in report["runs"]:
        assert run["name"] in html and run["name"] in markdown
        assert set(run["prompt_sets"]) == set(PROMPTS)
        for group in [run["overall"], *run["prompt_sets"].values()]:
            assert all(group[key] is not None for key in keys + ["kid_std"]), group
        assert len(run["prompts"]) == 3 and len(run["images"]) == 9
        for prompt in run["prompts"]:
            assert prompt["prompt_without_token"] in html
            assert all(prompt["metrics"][key] is not None for key in image_keys | {"kid"})
            assert "fid" not in prompt["metrics"]  # FID needs more images than one prompt has
        for image in run["images"]:
            assert set(image["metrics"]) == image_keys
    assert "people" in markdown and "non_people" in markdown
    assert any("random weights" in note for note in report["notes"])  # the tiny CLIP is said to be random


def test_a_rerun_on_the_same_images_comes_from_the_cache(report, folders, models):
    calls = []
    hook = models.fid.module.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    try:
        again = evaluate(make_config(folders, "again"), models)
    finally:
        hook.remove()
    assert calls == []  # not one image went through the FID network
    assert again["settings"]["cache"]["misses"] == 0 and again["settings"]["cache"]["hits"] > 0
    for first, second in zip(report["runs"], again["runs"]):
        assert first["overall"] == second["overall"]


def test_an_existing_report_is_kept_unless_overwrite(report, folders, models):
    before = (folders / "report" / "report.json").read_bytes()
    with pytest.raises(StyleBoostError, match="--overwrite"):
        evaluate(make_config(folders, "report"), models)
    assert (folders / "report" / "report.json").read_bytes() == before


def test_mismatched_sizes_are_resized_and_noted(folders, models, tmp_path):
    run = write_styled_run(tmp_path / "mixed", "woodcut", {"people": PROMPTS["people"][:1]}, images_per_prompt=3, size=SIZE)
    odd = run / "images" / "people" / "p000_s1.png"
    Image.open(odd).resize((SIZE, SIZE + 40)).save(odd)
    config = make_config(folders, "mixed", runs=(), metrics=["style", "kid"])
    config.runs = [f"mixed={run}"]
    report = evaluate(config, models)
    assert any("1 of 3 image(s) are not 96x96" in note for note in report["notes"])
    assert all(im["metrics"]["style_score"] is not None for im in report["runs"][0]["images"])


def test_a_styleref_image_that_does_not_decode_is_skipped_named_and_the_rest_scored(folders, models, tmp_path, capsys):
    styleref = tmp_path / "styleref"
    styleref.mkdir()
    for image in sorted((folders / "styleref").glob("*.png")):
        (styleref / image.name).write_bytes(image.read_bytes())
    whole = (styleref / sorted(p.name for p in styleref.iterdir())[0]).read_bytes()
    (styleref / "truncated.png").write_bytes(whole[: len(whole) // 2])  # the header reads, the pixels do not
    report = evaluate(make_config(folders, "truncated", runs=("woodcut",), metrics=["style"], styleref=str(styleref),
                                  cache_dir="none"), models)
    named = [line for line in capsys.readouterr().err.splitlines() if "truncated.png" in line]
    assert len(named) == 1 and "does not decode" in named[0], named
    assert report["styleref"]["count"] == 8 and "truncated.png" not in report["styleref"]["files"]
    assert any("truncated.png" in note for note in report["notes"])
    assert all(im["metrics"]["style_score"] is not None for im in report["runs"][0]["images"])


def test_random_gram_weights_are_the_same_network_every_time_whatever_the_global_seed(monkeypatch):
    # a small CNN in VGG19's place: building VGG19 takes seconds, and what is tested is the seeding around it
    monkeypatch.setattr(models_module, "VGG19Features", lambda layers, pretrained: SmallCNN([4, 8]))
    pixels = torch.arange(3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(1, 3, 32, 32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        first = load_gram_backbone("random")(pixels)
        torch.manual_seed(2)
        second = load_gram_backbone("random")(pixels)
        stream_after = torch.rand(4)
        torch.manual_seed(2)
        stream = torch.rand(4)
    assert torch.equal(first, second)
    assert torch.equal(stream_after, stream)  # the global random state is left as it was


def test_cli_runs_the_real_loaders_offline(folders, capsys):
    """The command line with random-weight models that need no download: tiny CLIP, CLIP features for
    FID/KID, a random VGG19 for the Gram distance."""
    code = main([
        "evaluate", "--run", f"woodcut={folders / 'woodcut'}", "--run", f"pointillism={folders / 'pointillism'}",
        "--styleref", str(folders / "styleref"), "--out", str(folders / "cli"), "--clip", register_tiny_open_clip(),
        "--fid-features", "clip", "--gram-weights", "random", "--metrics", "style,clip_t,kid,gram",
        "--image-size", "64", "--kid-subsets", "5", "--workers", "1", "--cache-dir", "none", "--no-progress",
    ])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "| woodcut | 9 |" in printed.out and "| pointillism | 9 |" in printed.out  # the Overall table
    saved = json.loads((folders / "cli" / "report.json").read_text())
    assert [m["key"] for m in saved["metrics"]] == ["style_score", "style_centroid", "clip_t", "gram_distance", "kid"]
    assert saved["models"]["gram"]["weights"] == "random"
    woodcut, pointillism = saved["runs"]
    assert woodcut["overall"]["style_score"] > pointillism["overall"]["style_score"]


@pytest.mark.parametrize("make_args, expected", [
    (lambda root, tmp: ["--run", f"empty={tmp}"], "no images"),
    (lambda root, tmp: ["--run", "no-equals-sign"], "expected NAME=DIR"),
    (lambda root, tmp: ["--run", f"a={root / 'woodcut'}", "--encoder", str(tmp)], "not a style encoder folder"),
    (lambda root, tmp: ["--run", f"a={root / 'woodcut'}", "--metrics", "style,beauty"], "--metrics beauty"),
    (lambda root, tmp: ["--run", f"a={root / 'woodcut'}", "--run", f"a={root / 'pointillism'}"], "given twice"),
])
def test_bad_input_is_one_line(folders, tmp_path, capsys, make_args, expected):
    code = main(["evaluate", *make_args(folders, tmp_path), "--styleref", str(folders / "styleref"),
                 "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err
