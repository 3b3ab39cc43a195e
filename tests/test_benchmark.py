"""The training benchmark times the trainer's own run: every step it ran, every stage it went through, the
final samples it drew, and it leaves the loop as it found it."""

from __future__ import annotations

import sys

import pytest
import tqdm.auto

from styleboost.training import loop
from styleboost.training.benchmark import PARTS, STAGES, span_seconds, step_breakdown, time_training
from styleboost.training.clock import Clock, run_script


@pytest.fixture(scope="module")
def timed(one_thread, tiny_model_dir, style_dirs, tmp_path_factory):
    """A 3-step run of 2 micro-steps each on the tiny model, with final samples, under the benchmark's timers."""
    from styleboost.training.config import TrainConfig

    cfg = TrainConfig(
        pretrained_model_name_or_path=tiny_model_dir, styleref_dir=style_dirs[0], aux_dir=style_dirs[1],
        output_dir=str(tmp_path_factory.mktemp("bench") / "run"), max_train_steps=3, gradient_accumulation_steps=2,
        report_to="none", checkpointing_steps=1000, num_validation_images=1, validation_inference_steps=2,
    )
    originals = {name: getattr(loop, name) for name in (*STAGES, "micro_step", "end_of_step", "tqdm")}
    record = time_training(cfg, Clock(), breakdown=True)
    return record, originals


def test_every_optimizer_step_is_clocked_and_broken_down(timed):
    record, _ = timed
    assert len(record["step_ends"]) == 3  # read from the loop's own progress bar
    assert len(record["steps"]) == 3  # optimizer steps, not the 6 micro-steps
    assert record["loop_start"] < record["step_ends"][0]
    for step in record["steps"]:
        assert set(step) == {*PARTS, "total"}
        assert all(step[part] >= 0 for part in PARTS), step
        assert step["unet_fwd"] > 0 and step["unet_bwd"] > 0 and step["optim"] > 0
        assert sum(step[part] for part in PARTS) == pytest.approx(step["total"])
    assert record["facts"]["unet_batch"] == 2  # one StyleRef and one Aux image a micro-step
    assert record["peak_rss_mib"] >= record["facts"]["setup_rss_mib"] > 0
    summary = step_breakdown(record, warmup=1)
    assert len(summary["step_times"]) == 2 and summary["setup_s"] > 0


def test_the_stages_of_the_run_are_timed_where_the_loop_calls_them(timed):
    record, _ = timed
    kinds = {kind for kind, _, _ in record["spans"]}
    ran = {"build_run", "load_models", "load_training_sets", "place_models", "make_optimizer", "make_conditioning",
           "train_loop", "finish", "run_validation", "export_weights", "write_model_card", "Method.apply",
           "Accelerator.prepare", "load", "samples"}
    assert ran <= kinds
    (_, loop_start, loop_end), = [s for s in record["spans"] if s[0] == "train_loop"]
    assert loop_start <= record["loop_start"] and record["step_ends"][-1] <= loop_end
    (_, build_start, build_end), = [s for s in record["spans"] if s[0] == "build_run"]
    assert all(build_start <= s <= e <= build_end for k, s, e in record["spans"] if k == "load_models")
    # the final samples: one pipeline call per default validation prompt, after the loop
    samples = [s for s in record["spans"] if s[0] == "samples"]
    assert len(samples) == 2 and all(s[1] >= loop_end for s in samples)
    assert span_seconds(record, "run_validation") >= span_seconds(record, "samples")


def test_the_loop_is_left_as_it_was(timed):
    _, originals = timed
    assert {name: getattr(loop, name) for name in originals} == originals


def test_a_script_is_clocked_by_its_steps_bar(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\nfrom tqdm.auto import tqdm\n"
        "bar = tqdm(total=int(sys.argv[1]), desc='Steps')\n"
        "for _ in range(int(sys.argv[1])):\n    bar.update(1)\n"
        "tqdm(total=2, desc='other').update(2)\n"
    )
    bar_class, argv = tqdm.auto.tqdm, list(sys.argv)
    record = run_script(str(script), ["4"], Clock())
    assert len(record["step_ends"]) == 4 and record["loop_start"] <= record["step_ends"][0]
    assert tqdm.auto.tqdm is bar_class and sys.argv == argv
