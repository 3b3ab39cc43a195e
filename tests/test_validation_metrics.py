"""--validation_metrics: validation images scored during training, the curve logged and drawn, and best/ = the step
of the highest style score whose CLIP-T stays within --max_clip_t_drop of the base model's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import killed_after_first_checkpoint
from PIL import Image
from safetensors.torch import load_file

from styleboost.core.errors import StyleBoostError
from styleboost.evaluation.validation_scorer import validation_scorer
from styleboost.training.loop import train
from styleboost.training.validation import DEFAULT_VALIDATION_PROMPTS

# (style, clip_t) a scripted scorer hands out per validation, step 0 (the base model) first: step 2 has the
# highest style but loses 10 CLIP-T points; step 3 is the best one within a 2-point drop.
LEARNING_RATE = 3e-2  # large enough that one step visibly changes the tiny model's images
SCRIPT = {0: (0.10, 30.0), 1: (0.50, 29.0), 2: (0.90, 20.0), 3: (0.70, 28.5), 4: (0.60, 30.0)}


def step_of(images) -> int:
    """The step a validation's images were drawn at, from their folder (validation/step-N/)."""
    return int(Path(images[0]).parent.name.removeprefix("step-"))


class ScriptedScorer:
    """Scores by step (read off the image folder's name), so the choice of best/ is known in advance."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[str]]] = []

    def __call__(self, images, prompts, tokens, styleref):
        step = step_of(images)
        self.calls.append((step, list(prompts)))
        style, clip_t = SCRIPT[step]
        return {"style": style, "clip_t": clip_t}


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "validation" / "metrics.jsonl").read_text().splitlines()]


def expected_best(rows: list[dict], drop: float) -> int:
    """The rule, written out: the highest style among trained steps whose CLIP-T >= base - drop."""
    base = next(r for r in rows if r["step"] == 0)["clip_t"]
    return max((r for r in rows if r["step"] > 0 and r["clip_t"] >= base - drop), key=lambda r: r["style"])["step"]


@pytest.fixture
def scripted_run(train_config, tmp_path):
    scorer = ScriptedScorer()
    cfg = train_config(output_dir=str(tmp_path / "run"), validation_steps=1, validation_metrics=["style", "clip_t"],
                       max_clip_t_drop=2.0, learning_rate=LEARNING_RATE)
    return train(cfg, scorer), scorer


def test_best_is_the_step_the_numbers_choose_and_holds_that_steps_weights(scripted_run, train_config, tmp_path):
    run, scorer = scripted_run
    rows = records(run.output_dir)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]  # the base model, every validation step, the final one
    assert [(r["style"], r["clip_t"]) for r in rows] == [SCRIPT[s] for s in range(5)]
    best = json.loads((run.output_dir / "best" / "best.json").read_text())
    assert best["step"] == expected_best(rows, 2.0) == 3
    # best/ holds the weights of step 3: a run trained to exactly 3 steps (training is deterministic) ends there
    three = train(train_config(output_dir=str(tmp_path / "three"), max_train_steps=3, skip_final_samples=True,
                               learning_rate=LEARNING_RATE))
    ours = load_file(str(run.output_dir / "best" / "pytorch_lora_weights.safetensors"))
    theirs = load_file(str(three.output_dir / "pytorch_lora_weights.safetensors"))
    final = load_file(str(run.output_dir / "pytorch_lora_weights.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all((ours[k] == theirs[k]).all() for k in ours)
    assert any((ours[k] != final[k]).any() for k in ours)  # and not the final step's
    # the scorer saw each image with the prompt it was drawn from: the default prompts, one image each
    token = run.models.tokens[0]
    assert all(ps == [t.replace("[V]", token) for t in DEFAULT_VALIDATION_PROMPTS] for _, ps in scorer.calls)


def test_best_loads_in_plain_diffusers_and_draws_as_the_chosen_steps_validation(scripted_run, tiny_model_dir):
    from diffusers import StableDiffusionPipeline

    run, _ = scripted_run
    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir)
    pipe.load_lora_weights(str(run.output_dir / "best"))
    cfg = run.cfg
    prompt = DEFAULT_VALIDATION_PROMPTS[0].replace("[V]", run.models.tokens[0])
    image = pipe(prompt, generator=torch.Generator().manual_seed(cfg.seed), height=run.resolution,
                 width=run.resolution, num_inference_steps=cfg.validation_inference_steps,
                 guidance_scale=cfg.guidance_scale).images[0]
    drawn = {step: np.asarray(Image.open(run.output_dir / "validation" / f"step-{step}" / f"p00_s{cfg.seed}.png"),
                              dtype=np.int16) for step in (3, 4)}
    ours = np.asarray(image, dtype=np.int16)
    assert np.abs(ours - drawn[3]).max() <= 1  # the chosen step's image, to the PNG's rounding
    assert np.abs(ours - drawn[4]).max() > 1  # and not the final step's


def test_the_curve_goes_to_the_model_card_the_svg_and_the_tracker(scripted_run):
    run, _ = scripted_run
    card = (run.output_dir / "README.md").read_text()
    assert "![validation curve](validation/curve.svg)" in card
    assert "| 3 (best/) | 0.700 | 28.50 |" in card and "| 0 (base model) | 0.100 | 30.00 |" in card
    svg = (run.output_dir / "validation" / "curve.svg").read_text()
    assert svg.count("<circle") == 10 and "best: 3" in svg  # five steps, two curves


def test_no_step_within_the_drop_means_no_best_and_a_notice(train_config, tmp_path, capsys):
    cfg = train_config(output_dir=str(tmp_path / "run"), validation_steps=2, validation_metrics=["style", "clip_t"],
                       max_clip_t_drop=0.0)

    def scorer(images, prompts, tokens, styleref):
        step = step_of(images)
        return {"style": 0.1 * step, "clip_t": 30.0 - step}  # every trained step loses CLIP-T

    run = train(cfg, scorer)
    assert not (run.output_dir / "best").exists()
    assert "no best/ was written" in capsys.readouterr().err


def test_metrics_need_a_scorer_and_unknown_metrics_are_refused(train_config):
    with pytest.raises(StyleBoostError, match="needs the metric networks"):
        train(train_config(validation_metrics=["style"]))
    with pytest.raises(StyleBoostError, match="--validation_metrics fid: unknown"):
        train_config(validation_metrics=["fid"])
    with pytest.raises(StyleBoostError, match="--max_clip_t_drop -1.0"):
        train_config(validation_metrics=["clip_t"], max_clip_t_drop=-1.0)


def test_a_resumed_run_keeps_earlier_scores_and_redoes_later_ones(train_config, tmp_path, monkeypatch):
    common = dict(validation_steps=1, validation_metrics=["style", "clip_t"], checkpointing_steps=2)
    scorer = ScriptedScorer()
    killed_after_first_checkpoint(train_config, tmp_path / "run", monkeypatch,
                                  trainer=lambda cfg: train(cfg, scorer), **common)
    assert [r["step"] for r in records(tmp_path / "run")] == [0, 1]  # killed while checkpointing step 2
    resumed = ScriptedScorer()
    run = train(train_config(output_dir=str(tmp_path / "run"), resume_from_checkpoint="latest", **common), resumed)
    assert [s for s, _ in resumed.calls] == [3, 4]  # the base model is not redrawn from trained weights
    assert [r["step"] for r in records(run.output_dir)] == [0, 1, 3, 4]
    assert json.loads((run.output_dir / "best" / "best.json").read_text())["step"] == 3


def test_the_toy_world_scorer_agrees_with_what_it_measures(style_dirs, tmp_path):
    """The real networks (the toy world's encoder and CLIP): StyleRef images score higher on style than Aux
    people photos, and images score higher CLIP-T with their own captions than with swapped ones."""
    from styleboost.training.config import TrainConfig

    cfg = TrainConfig(validation_metrics=["style", "clip_t"], validation_encoder="toyworld",
                      validation_clip="toyworld", resolution=32)
    scorer = validation_scorer(cfg)
    styleref = sorted(Path(style_dirs[0]).glob("*.png"))
    aux = sorted(Path(style_dirs[1]).glob("*.png"))
    captions = [p.with_suffix(".txt").read_text().strip() for p in styleref]
    own = scorer(styleref, captions, [], styleref)
    swapped = scorer(styleref, captions[1:] + captions[:1], [], styleref)
    people = scorer(aux, [p.with_suffix(".txt").read_text().strip() for p in aux], [], styleref)
    assert all(math.isfinite(v) for v in own.values())
    assert own["style"] > people["style"] + 0.1
    assert own["clip_t"] > swapped["clip_t"]
    assert Image.open(styleref[0]).size == (32, 32)


def test_the_entry_point_builds_the_scorer_and_logs_the_curve(train_main, base_args, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "out"
    args = [a if a != "none" else "tensorboard" for a in base_args]
    assert train_main(args + ["--validation_steps", "1", "--validation_metrics", "style,clip_t",
                              "--validation_encoder", "toyworld", "--validation_clip", "toyworld"]) == 0
    rows = records(out)
    assert [r["step"] for r in rows] == [0, 1, 2] and all(math.isfinite(r["style"]) for r in rows)
    events = [str(p) for p in out.rglob("events.out.tfevents.*")]
    tags = set().union(*(EventAccumulator(e).Reload().Tags()["scalars"] for e in events))
    assert {"validation/style", "validation/clip_t"} <= tags
