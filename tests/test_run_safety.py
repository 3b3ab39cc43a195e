"""Nothing lost, nothing silently wrong: reruns, resumes with other settings, damaged checkpoints, two runs
into one folder, and stopping a run from outside - each tried as a user types it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import one_line_error
from safetensors.torch import load_file

from styleboost.core.lock import LOCK_FILE

SCRIPT = Path(__file__).resolve().parents[1] / "train_scripts" / "train_styleboost.py"
LORA = "pytorch_lora_weights.safetensors"
EMBEDDINGS = "learned_embeds.safetensors"


def with_flag(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    if flag in args:
        args[args.index(flag) + 1] = value
        return args
    return args + [flag, value]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the lock) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK_FILE}


def test_overwrite_that_fails_before_it_starts_keeps_the_old_run(train_main, capsys, base_args, tmp_path):
    args = base_args + ["--checkpointing_steps", "1"]
    assert train_main(args) == 0
    out = tmp_path / "out"
    before = snapshot(out)
    assert LORA in before and "run.json" in before and "checkpoint-1/checkpoint.json" in before
    (tmp_path / "empty").mkdir()
    line = one_line_error(train_main, capsys, with_flag(args, "--styleref_dir", str(tmp_path / "empty")) + ["--overwrite"])
    assert "no images" in line
    assert snapshot(out) == before  # before: checkpoints, run.json and validation were deleted first


def test_overwrite_with_another_method_leaves_no_file_of_the_old_run(train_main, base_args, tmp_path):
    assert train_main(base_args + ["--checkpointing_steps", "1"]) == 0
    ti = ["--method", "textual_inversion", "--new_token", "<neon>", "--overwrite"]
    assert train_main(base_args + ti) == 0
    fresh = tmp_path / "fresh"
    assert train_main(with_flag(base_args, "--output_dir", str(fresh)) + ti) == 0
    listing = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*"))
    assert listing == sorted(p.relative_to(fresh) for p in fresh.rglob("*"))  # before: the LoRA was left there
    assert not (tmp_path / "out" / LORA).exists() and (tmp_path / "out" / EMBEDDINGS).is_file()


def test_a_run_that_fails_to_start_leaves_no_folder(train_main, capsys, base_args, tmp_path):
    (tmp_path / "empty").mkdir()
    one_line_error(train_main, capsys, with_flag(base_args, "--styleref_dir", str(tmp_path / "empty")))
    assert not (tmp_path / "out").exists()  # before: an empty folder was left


def test_resume_latest_refuses_a_finished_run_without_checkpoints(train_main, capsys, base_args, tmp_path):
    assert train_main(base_args) == 0
    weights = (tmp_path / "out" / LORA).read_bytes()
    line = one_line_error(train_main, capsys, base_args + ["--resume_from_checkpoint", "latest"])
    assert "finished run" in line and "--overwrite" in line
    assert (tmp_path / "out" / LORA).read_bytes() == weights  # before: trained again and overwritten


def test_resume_refuses_another_rank_in_one_line(train_main, capsys, base_args, tmp_path):
    args = with_flag(base_args, "--max_train_steps", "3") + ["--checkpointing_steps", "1"]
    assert train_main(args) == 0
    line = one_line_error(train_main, capsys, args + ["--resume_from_checkpoint", "latest", "--rank", "8"])
    assert "--rank 8" in line and "4" in line  # before: a 60-line size-mismatch traceback


def test_damaged_latest_checkpoint_falls_back_to_the_previous_whole_one(train_main, capsys, base_args, tmp_path):
    args = with_flag(base_args, "--max_train_steps", "6") + ["--checkpointing_steps", "2", "--learning_rate", "1e-2"]
    assert train_main(args) == 0
    out = tmp_path / "out"
    straight = load_file(str(out / LORA))
    weights = out / "checkpoint-4" / "trainable_0.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as by a full disk
    capsys.readouterr()
    assert train_main(args + ["--resume_from_checkpoint", "latest"]) == 0
    err = capsys.readouterr().err
    assert f"skipping {out / 'checkpoint-4'}" in err and "trainable_0.safetensors" in err
    assert f"resumed from {out / 'checkpoint-2'} at step 2" in err
    resumed = load_file(str(out / LORA))
    assert resumed.keys() == straight.keys()
    for key in straight:
        assert (resumed[key] - straight[key]).abs().max() < 1e-6, key

    assert (out / "checkpoint-4" / "checkpoint.json").is_file()  # written again by the resumed run
    weights.write_bytes(weights.read_bytes()[:100])
    line = one_line_error(train_main, capsys, args + ["--resume_from_checkpoint", str(out / "checkpoint-4")])
    assert "checkpoint-4" in line and "damaged" in line and "trainable_0.safetensors" in line


# ----------------------------------------------------------------------------- other processes


def start(argv: list[str], *, launcher: bool, **popen) -> subprocess.Popen:
    """A training run in another process: ``accelerate launch train_styleboost.py`` or plain python."""
    prefix = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1"]
    command = (prefix if launcher else [sys.executable]) + [str(SCRIPT), *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def running(out: Path) -> bool:
    """The run in ``out`` has started its loop (run.json says running)."""
    try:
        return json.loads((out / "run.json").read_text())["status"] == "running"
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False


def child_of(pid: int) -> int:
    """The one child process of ``pid`` (the training script that ``accelerate launch`` started)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.fixture
def long_run(base_args):
    """Flags of a run that trains until it is stopped."""
    return with_flag(base_args, "--max_train_steps", "100000") + ["--skip_final_samples", "--checkpointing_steps",
                                                                   "100000"]


def test_a_second_run_into_a_folder_in_use_is_refused(train_main, capsys, long_run, tmp_path):
    out = tmp_path / "out"
    first = start(long_run, launcher=False)
    try:
        wait_until(lambda: running(out), 120, "the first run to start")
        for extra in ([], ["--overwrite"], ["--resume_from_checkpoint", "latest"]):
            line = one_line_error(train_main, capsys, long_run + extra)
            assert f"--output_dir {out} is in use by another run (pid {first.pid}" in line
        assert running(out) and first.poll() is None  # the first run goes on, untouched
        first.kill()  # kill -9: the kernel releases the lock with the process
        first.wait(30)
    finally:
        first.kill()
        first.communicate()
    assert train_main(with_flag(long_run, "--max_train_steps", "2") + ["--overwrite"]) == 0


@pytest.mark.parametrize("how", ["SIGTERM to the launcher alone", "Ctrl-C in the terminal"])
def test_stopping_the_launcher_stops_the_run_with_a_checkpoint(how, train_main, capsys, long_run, tmp_path):
    out = tmp_path / "out"
    launcher = start(long_run, launcher=True, start_new_session=True)
    child = None
    try:
        wait_until(lambda: running(out), 120, "the run to start")
        child = child_of(launcher.pid)
        time.sleep(1)
        if how.startswith("SIGTERM"):
            launcher.send_signal(signal.SIGTERM)
        else:
            os.killpg(launcher.pid, signal.SIGINT)  # a terminal sends Ctrl-C to the whole foreground group
        wait_until(lambda: not alive(child), 60, "the training process to stop")  # before: it trained on
    finally:
        if child and alive(child):
            os.kill(child, signal.SIGKILL)  # it holds the launcher's pipes open
        launcher.kill()
        launcher.communicate()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "stopped", record.get("status")
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "checkpoint.json").is_file()
    step = json.loads((checkpoints[0] / "checkpoint.json").read_text())["step"]
    assert record["error"].endswith(f"after step {step}") and not (out / LOCK_FILE).exists()

    resume = with_flag(long_run, "--max_train_steps", str(step + 1)) + ["--resume_from_checkpoint", "latest"]
    assert train_main(resume) == 0
    assert f"resumed from {checkpoints[0]} at step {step}" in capsys.readouterr().err
