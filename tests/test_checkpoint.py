"""Checkpoints: resuming gives the weights of an uninterrupted run; half-written ones are never taken."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from helpers import killed_after_first_checkpoint
from safetensors.torch import load_file

from styleboost.training.checkpoint import completed_checkpoints, resolve_resume
from styleboost.training.loop import train


def lora_weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "pytorch_lora_weights.safetensors"))


def test_resumed_run_ends_with_the_same_weights(train_config, tmp_path, monkeypatch):
    common = dict(max_train_steps=6, checkpointing_steps=3, learning_rate=1e-2, random_flip=True,
                  gradient_accumulation_steps=2, lr_scheduler="cosine", lr_warmup_steps=2)
    straight = train(train_config(output_dir=str(tmp_path / "straight"), **common))

    # the same command, killed right after its step-3 checkpoint ...
    killed_after_first_checkpoint(train_config, tmp_path / "resumed", monkeypatch, **common)
    assert [s for s, _ in completed_checkpoints(tmp_path / "resumed")] == [3]
    assert not (tmp_path / "resumed" / "pytorch_lora_weights.safetensors").exists()

    # ... and run again with --resume_from_checkpoint latest
    resumed = train(train_config(output_dir=str(tmp_path / "resumed"), resume_from_checkpoint="latest", **common))
    assert resumed.start_step == 3 and len(resumed.history) == 3
    a, b = lora_weights(straight.output_dir), lora_weights(resumed.output_dir)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
    straight_losses = [h["loss"] for h in straight.history[3:]]
    assert straight_losses == pytest.approx([h["loss"] for h in resumed.history], rel=1e-5)


def test_latest_skips_half_written_checkpoints(tmp_path):
    good = tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "checkpoint.json").write_text(json.dumps({"step": 4}))
    (tmp_path / "checkpoint-8.tmp").mkdir()  # interrupted while saving
    (tmp_path / "checkpoint-9").mkdir()  # renamed by hand, no marker
    assert resolve_resume(tmp_path, "latest") == (4, good)


def test_checkpoints_total_limit_keeps_the_newest(train_config):
    run = train(train_config(max_train_steps=7, checkpointing_steps=2, checkpoints_total_limit=2))
    assert [s for s, _ in completed_checkpoints(run.output_dir)] == [4, 6]
    assert not list(run.output_dir.glob("*.tmp"))
    saved = load_file(str(run.output_dir / "checkpoint-6" / "trainable_0.safetensors"))
    assert saved and all("lora_" in k for k in saved)  # only trainable weights, not the frozen UNet


def test_checkpoint_files_reach_the_disk_before_the_marker(train_config, monkeypatch):
    """A power loss must not leave a marked but incomplete checkpoint: each file, and the folder, is flushed
    before the marker exists; the renamed folder's parent after. (Before, nothing was flushed.)"""
    cfg = train_config(max_train_steps=3, checkpointing_steps=2)
    temporary = Path(cfg.output_dir) / "checkpoint-2.tmp"
    flushed: list[tuple[str, bool]] = []  # (path, whether the marker existed then)
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        flushed.append((os.readlink(f"/proc/self/fd/{fd}"), (temporary / "checkpoint.json").exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    run = train(cfg)
    final = run.output_dir / "checkpoint-2"
    files = [p for p in final.rglob("*") if p.is_file() and p.name != "checkpoint.json"]
    assert files
    before_marker = {path for path, marked in flushed if not marked}
    for path in files:
        assert str(temporary / path.relative_to(final)) in before_marker, path
    assert str(temporary) in before_marker  # the folder's entries
    assert str(run.output_dir) in {path for path, _ in flushed}  # the rename
