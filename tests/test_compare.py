"""The method comparison (eval/compare_methods.py): a reduced run on the shipped toy world, and its summary."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from styleboost.core.errors import StyleBoostError
from styleboost.experiments.compare import (
    README_BEGIN,
    README_END,
    CompareConfig,
    claim,
    claims,
    compare,
    summarise,
    train_runs,
    update_readme,
)
from styleboost.generation.records import read_metadata
from styleboost.toyworld import assets

PERSONALISED = ("dreambooth", "styleboost", "multi_styleforge", "lora", "textual_inversion", "custom_diffusion")
TRANSFER = ("gatys", "adain", "encoder_decoder")


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """One seed, a short budget, 2 images per prompt: what CI can afford."""
    root = tmp_path_factory.mktemp("compare")
    patch = pytest.MonkeyPatch()
    patch.setenv("STYLEBOOST_CACHE", str(root / "cache"))
    try:
        config = CompareConfig(out=str(root / "out"), seeds=[0], max_train_steps=120, images_per_prompt=2, steps=12,
                               transfer_steps=10, transfer_train_steps=30, progress=False)
        yield config, compare(config)
    finally:
        patch.undo()


def test_methods_raise_the_heldout_style_score_and_styleboost_beats_dreambooth_on_people(reduced):
    _, summary = reduced
    table = summary["table"]
    base = table["base"]["overall"]["style_score"]["mean"]
    # DreamBooth is left out of the first check: the shipped base has learned to nearly ignore sks, so its
    # prior term on "a person" pulls back almost the same conditioning, and in this short run it stays at the
    # base's score (the full comparison moves it only from -0.24 to -0.07; see the README)
    for method in (m for m in PERSONALISED if m != "dreambooth"):
        assert table[method]["overall"]["style_score"]["mean"] > base, method
    people = {m: table[m]["people"]["style_score"]["mean"] for m in ("styleboost", "dreambooth")}
    assert people["styleboost"] > people["dreambooth"], people


def test_comparison_writes_one_report_and_a_summary_of_every_method(reduced):
    config, summary = reduced
    out = config.out
    report = json.loads(Path(out, "report", "report.json").read_text())
    assert [run["name"] for run in report["runs"]] == ["base", *(f"{m}-s0" for m in PERSONALISED), "gatys", "adain",
                                                       "encoder_decoder-s0"]
    text = open(f"{out}/compare.md").read()
    assert all(f"| {m} |" in text for m in ("base", *PERSONALISED, *TRANSFER))
    assert "people prompts, style: StyleBoost" in text and "people prompts, CLIP-T: Multi-StyleForge" in text
    assert "overall prompts, style: StyleBoost" in text and "vs AdaIN" in text
    assert json.loads(open(f"{out}/compare.json").read())["table"] == summary["table"]
    # DreamBooth's prior images are the frozen model's class images, not the curated Aux set StyleBoost uses
    config_of = {m: json.loads(Path(out, "runs", f"{m}-s0", "run.json").read_text())["config"] for m in PERSONALISED}
    assert config_of["dreambooth"]["aux_dir"] is None and config_of["styleboost"]["aux_dir"]
    assert summary["table"]["dreambooth"]["overall"] != summary["table"]["styleboost"]["overall"]
    for method in (*PERSONALISED, *TRANSFER):
        assert set(summary["table"][method]) == {"people", "non_people", "overall"}
        assert summary["table"][method]["people"]["style_score"]["n"] == 1
    # what each method cost is reported (printed here, never asserted): training time for every method that
    # trains something, seconds per image for all
    timing = summary["timing"]
    print(json.dumps(timing, indent=1))
    assert all(timing[m]["train_seconds"] is not None for m in (*PERSONALISED, "encoder_decoder"))
    assert timing["base"]["train_seconds"] is None and timing["gatys"]["train_seconds"] is None
    assert all(timing[m]["seconds_per_image"] is not None for m in ("base", *PERSONALISED, *TRANSFER))
    assert "| gatys |" in text.split("## Cost", 1)[1]


def test_multi_styleforge_binds_a_token_per_part_and_draws_each_prompt_set_with_its_own(reduced):
    config, _ = reduced
    run = json.loads(Path(config.out, "runs", "multi_styleforge-s0", "run.json").read_text())
    assert run["tokens"] == ["sks", "ohwx"]
    captions = {p.stem.split("-", 1)[1]: p.read_text() for p in Path(run["config"]["styleref_dir"]).glob("*.txt")}
    assert "[V1]" in captions["portrait"] and "[V2]" in captions["house"]
    records = read_metadata(Path(config.out, "generated", "multi_styleforge-s0")).values()
    words = {r["prompt_set"]: {w for rec in records if rec["prompt_set"] == r["prompt_set"]
                               for w in rec["prompt"].split()} for r in records}
    assert "sks" in words["people"] and "ohwx" not in words["people"]
    assert "ohwx" in words["non_people"] and "sks" not in words["non_people"]


def test_transfer_restyles_the_base_images_keeping_their_prompts(reduced):
    config, _ = reduced
    base = read_metadata(Path(config.out, "generated", "base"))
    for name in ("gatys", "adain", "encoder_decoder-s0"):
        restyled = read_metadata(Path(config.out, "generated", name))
        assert sorted(restyled) == sorted(base), name
        assert all(restyled[f]["prompt"] == base[f]["prompt"] and restyled[f]["seed"] == base[f]["seed"]
                   for f in base)
        assert {r["method"] for r in restyled.values()} == {dict(gatys="gatys", adain="adain").get(name, "encoder-decoder")}


def test_a_second_comparison_is_refused_without_overwrite_and_finished_runs_are_reused(reduced, monkeypatch):
    config, _ = reduced
    summary_file = Path(config.out) / "compare.json"
    before = summary_file.read_bytes()
    with pytest.raises(StyleBoostError, match="--overwrite"):
        compare(config)
    assert summary_file.read_bytes() == before
    import styleboost.training.loop

    monkeypatch.setattr(styleboost.training.loop, "train", lambda cfg: pytest.fail(f"retrained {cfg.output_dir}"))
    sets = assets.make_experiment_sets(Path(config.out).parent / "cache" / "toyworld-experiment" / assets.TARGET_STYLE)
    runs = train_runs(config, sets, str(assets.pipeline_path()), Path(config.out))
    assert runs[0] == "base=" and len(runs) == 1 + len(PERSONALISED)
    # a finished run with another budget is not mistaken for this one
    retrained = []
    monkeypatch.setattr(styleboost.training.loop, "train", lambda cfg: retrained.append(Path(cfg.output_dir).name))
    longer = dataclasses.replace(config, max_train_steps=config.max_train_steps + 1)
    train_runs(longer, sets, str(assets.pipeline_path()), Path(config.out))
    assert retrained == [f"{m}-s0" for m in PERSONALISED]


def test_summary_is_mean_and_std_over_seeds_per_prompt_set():
    def run(name, style):
        section = {"style_score": style, "clip_t": 20.0, "kid": 0.01}
        return {"name": name, "overall": section, "prompt_sets": {"people": section, "non_people": section}}

    report = {"runs": [run("base", 0.1), run("lora-s0", 0.5), run("lora-s1", 0.7)]}
    table = summarise(report, ["base", "lora"])
    assert table["lora"]["people"]["style_score"]["mean"] == pytest.approx(0.6)
    assert table["lora"]["people"]["style_score"]["std"] == pytest.approx(0.1414, abs=1e-3)
    assert table["lora"]["overall"]["style_score"]["n"] == 2
    assert table["base"]["overall"]["style_score"]["std"] == 0.0


def test_claim_reads_the_table_in_both_directions():
    def entry(style, clip_t, kid):
        values = {"style_score": style, "clip_t": clip_t, "kid": kid}
        return {"people": {k: {"mean": v, "std": 0.0, "n": 1} for k, v in values.items()}}

    lines = claim({"styleboost": entry(0.8, 20.0, 0.02), "dreambooth": entry(0.6, 21.0, 0.01)})
    assert "StyleBoost better" in lines[0]  # style: higher is better
    assert "not better" in lines[1] and "not better" in lines[2]  # CLIP-T lower, KID higher
    assert "run both" in claim({"styleboost": entry(0.8, 20.0, 0.02)})[0]


@pytest.mark.parametrize("changes, message", [
    ({"methods": ["base", "magic"]}, "unknown magic"),
    ({"methods": ["lora"]}, "must include base"),
    ({"seeds": []}, "at least one seed"),
    ({"max_train_steps": 0}, "--max-train-steps"),
    ({"out": ""}, "--out"),
])
def test_bad_settings_are_one_line(changes, message, tmp_path):
    config = CompareConfig(out=str(tmp_path), **{k: v for k, v in changes.items() if k != "out"})
    if "out" in changes:
        config.out = changes["out"]
    with pytest.raises(StyleBoostError, match=message):
        config.validate()


def test_entry_point_names_a_bad_flag(tmp_path, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "eval" / "compare_methods.py"
    spec = importlib.util.spec_from_file_location("compare_methods", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path / "x"), "--methods", "lora", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must include base" in err[0]
    assert not (tmp_path / "x").exists()


def test_the_readme_table_goes_between_its_markers_and_a_readme_without_them_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_BEGIN}\nold table\n{README_END}\n\nWhat it says.\n")
    update_readme(readme, "| new | table |")
    assert readme.read_text() == f"# Title\n\n{README_BEGIN}\n| new | table |\n{README_END}\n\nWhat it says.\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("# no markers\n")
    with pytest.raises(StyleBoostError, match="PLAIN.md: no '<!-- compare-table -->'"):
        update_readme(plain, "x")
    assert plain.read_text() == "# no markers\n"
    config = CompareConfig(out=str(tmp_path / "out"), readme=str(plain))
    with pytest.raises(StyleBoostError, match="--readme"):  # refused before anything trains
        compare(config)
    assert not (tmp_path / "out").exists()


def test_claims_read_multi_styleforge_against_both_and_each_transfer_against_styleboost():
    def entry(style, clip_t):
        values = {"style_score": style, "clip_t": clip_t, "kid": 0.01}
        section = {k: {"mean": v, "std": 0.0, "n": 1} for k, v in values.items()}
        return {"people": section, "non_people": section, "overall": section}

    table = {"styleboost": entry(0.6, 30.0), "dreambooth": entry(0.0, 60.0), "multi_styleforge": entry(0.5, 45.0),
             "gatys": entry(0.1, 70.0)}
    found = claims(table)
    alignment = found["Multi-StyleForge restores prompt alignment (CLIP-T) on people prompts"]
    assert "CLIP-T: Multi-StyleForge 45 vs DreamBooth 60 -> Multi-StyleForge not better" in " ".join(alignment)
    assert "CLIP-T: Multi-StyleForge 45 vs StyleBoost 30 -> Multi-StyleForge better" in " ".join(alignment)
    transfer = found["Personalisation beats restyling the base model's images"]
    assert any("style: StyleBoost 0.6 vs Gatys 0.1 -> StyleBoost better" in line for line in transfer)
    assert any("CLIP-T: StyleBoost 30 vs Gatys 70 -> StyleBoost not better" in line for line in transfer)
