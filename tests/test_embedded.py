"""The embedded default: no model, no data given -> the pre-trained toy world learns a held-out style,
then the base and the tuned model are generated and evaluated side by side."""

from __future__ import annotations

import json

from styleboost.toyworld import assets


def test_default_run_trains_the_toy_world_on_a_heldout_style_and_evaluates_it(train_main, tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.setenv("STYLEBOOST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code = train_main(["--max_train_steps", "6", "--validation_steps", "3", "--checkpointing_steps", "3",
                       "--validation_inference_steps", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (run_dir,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["config"]["pretrained_model_name_or_path"] == str(assets.pipeline_path())
    assert len(manifest["data"]["styleref"]) == 16 and len(manifest["data"]["aux"]) == 16
    styleref = tmp_path / "cache" / "toyworld-experiment" / assets.TARGET_STYLE / "styleref"
    assert manifest["config"]["styleref_dir"] == str(styleref)
    assert all("[V] style" in p.read_text() for p in styleref.glob("*.txt"))
    assert (run_dir / "pytorch_lora_weights.safetensors").is_file()
    assert (run_dir / "samples.png").is_file() and (run_dir / "validation" / "step-3.png").is_file()
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))  # tensorboard received the logs

    report_dir = run_dir / "evaluation" / "report"
    report = json.loads((report_dir / "report.json").read_text())
    assert [run["name"] for run in report["runs"]] == ["base", "lora"]
    assert {run["count"] for run in report["runs"]} == {32}  # 8 prompts x 4 seeds each
    assert set(report["runs"][0]["prompt_sets"]) == {"people", "non_people"}
    assert report["models"]["style_encoder"]["name"] == "toyworld" and report["models"]["clip"]["name"] == "toyworld"
    assert (report_dir / "report.html").stat().st_size > 10_000
    assert list((run_dir / "evaluation" / "generated" / "lora" / "grids").rglob("*.png"))
    assert "| lora |" in captured.out and "report.html" in captured.out
    assert_lora_loads_in_plain_diffusers(run_dir)


def assert_lora_loads_in_plain_diffusers(run_dir) -> None:
    """The embedded default's LoRA, loaded as a user would, changes the image; the model card's usage
    snippet runs exactly as printed."""
    import re

    import numpy as np
    import torch
    from diffusers import StableDiffusionPipeline

    def draw(pipe):
        return pipe("a portrait of a person in sks style", num_inference_steps=10, output_type="np",
                    generator=torch.Generator().manual_seed(0)).images[0]

    pipe = StableDiffusionPipeline.from_pretrained(str(assets.pipeline_path()))
    before = draw(pipe)
    pipe.load_lora_weights(str(run_dir))
    after = draw(pipe)
    assert np.abs(after - before).mean() > 0.01

    card = (run_dir / "README.md").read_text()
    snippet = re.search(r"## Use\n\n```python\n(.*?)```", card, flags=re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README.md snippet", "exec"), namespace)  # noqa: S102 - our own card, as printed
    assert namespace["image"].size == (64, 64)
