"""The embedded default: no model, no data given -> the tiny local model learns the toy style."""

from __future__ import annotations

import json


def test_default_run_without_arguments_writes_weights_samples_and_manifest(train_main, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STYLEBOOST_CACHE", str(tmp_path / "cache"))
    from styleboost import testing

    testing.tiny_pipeline_path.cache_clear()
    monkeypatch.chdir(tmp_path)
    code = train_main(["--max_train_steps", "6", "--validation_steps", "3", "--checkpointing_steps", "3",
                       "--validation_inference_steps", "2"])
    assert code == 0, capsys.readouterr().err
    testing.tiny_pipeline_path.cache_clear()
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["config"]["pretrained_model_name_or_path"].startswith(str(tmp_path / "cache"))
    assert len(manifest["data"]["styleref"]) == 16 and len(manifest["data"]["aux"]) == 16
    assert (run_dir / "pytorch_lora_weights.safetensors").is_file()
    assert (run_dir / "samples.png").is_file() and (run_dir / "validation" / "step-3.png").is_file()
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))  # tensorboard received the logs
