"""Evaluation protocols: the shipped YAMLs load, and eval/run_protocol.py generates and evaluates in one go."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from styleboost.core.errors import StyleBoostError
from styleboost.evaluation.protocol import load_protocol, run_source
from styleboost.sd.weights import LORA_FILE

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = sorted((ROOT / "eval" / "protocols").glob("*.yaml"))


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "eval" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", PROTOCOLS, ids=[p.stem for p in PROTOCOLS])
def test_shipped_protocols_load_and_name_existing_prompt_files(path):
    protocol = load_protocol(path)
    assert protocol.prompt_files() and all(Path(f).is_file() for f in protocol.prompt_files())


def test_the_paper_protocol_splits_people_and_non_people():
    protocol = load_protocol(ROOT / "eval" / "protocols" / "styleboost.yaml")
    assert [Path(f).stem for f in protocol.prompt_files()] == ["people", "non_people"]
    assert {"style", "clip_t", "fid", "kid"} <= set(protocol.metrics)


def test_a_bad_protocol_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt_sets: [prompts/eval/people.txt]\nimages_per_promt: 3\n")
    with pytest.raises(StyleBoostError, match="bad.yaml: unknown setting.*images_per_promt"):
        load_protocol(bad)
    bad.write_text("prompt_sets: [nowhere/prompts.txt]\n")
    with pytest.raises(StyleBoostError, match="nowhere/prompts.txt not found"):
        load_protocol(bad)


def test_run_sources_tell_lora_embeddings_and_pipelines_apart(tmp_path, tiny_model_dir):
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / LORA_FILE).write_bytes(b"")
    assert run_source("a", str(tmp_path / "lora"), "base").lora == str(tmp_path / "lora")
    assert run_source("b", tiny_model_dir, None).model == tiny_model_dir
    assert run_source("c", "", "base").model == "base"
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleBoostError, match="training output folder"):
        run_source("d", str(tmp_path / "empty"), "base")
    with pytest.raises(StyleBoostError, match="needs --model"):
        run_source("e", "", None)


def test_run_protocol_generates_then_evaluates_and_resumes(tiny_model_dir, style_dirs, tmp_path, capsys):
    """The shipped smoke protocol on the tiny model: the base model and a full pipeline folder as two runs."""
    script = load_script("run_protocol")
    args = ["--protocol", str(ROOT / "eval" / "protocols" / "smoke.yaml"), "--model", tiny_model_dir,
            "--run", "base=", "--run", f"full={tiny_model_dir}", "--styleref", style_dirs[0],
            "--out", str(tmp_path / "out"), "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert script.main(args) == 0, capsys.readouterr().err
    prompts = 5  # prompts/validation.txt
    for run in ("base", "full"):
        assert len(list((tmp_path / "out" / "generated" / run / "images" / "validation").glob("*.png"))) == 2 * prompts
    report = json.loads((tmp_path / "out" / "report" / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["base", "full"]
    assert report["protocol"]["name"] == "smoke" and report["runs"][0]["count"] == 2 * prompts
    assert report["runs"][0]["prompts"][0]["prompt_without_token"] == "a portrait of a woman"
    # the same weights and seeds make the same images: the two runs score the same
    assert report["runs"][0]["overall"]["style_score"] == pytest.approx(report["runs"][1]["overall"]["style_score"])

    assert script.main(args) == 2  # the report is there: not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert script.main(args + ["--overwrite"]) == 0
    runs_log = (tmp_path / "out" / "generated" / "base" / "runs.jsonl").read_text().splitlines()
    assert json.loads(runs_log[-1])["generated"] == 0  # every image was already there
