"""CSD-layout style encoders (a CLIP ViT image tower + a style projection): a checkpoint in the CSD repository's
layout loads and gives CSD's descriptor, bad weights are refused in one line, and `styleboost evaluate --encoder`
takes one. Offline, on a tiny open_clip architecture with random weights."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from styleboost.cli import main
from styleboost.core.errors import StyleBoostError
from styleboost.style_encoder import create_style_encoder
from styleboost.style_encoder.factory import available_encoders
from styleboost.testing import register_tiny_open_clip, write_styled_run, write_styleref

SIZE = 32


@pytest.fixture(scope="module")
def tiny_csd(tmp_path_factory) -> dict:
    """A tiny CSD config, and a checkpoint in CSD's own layout made from an independent open_clip model."""
    root = tmp_path_factory.mktemp("csd")
    arch = register_tiny_open_clip()
    config = root / "tiny-csd.json"
    config.write_text(json.dumps({
        "name": "tiny-csd", "backbone": {"type": "csd", "model": arch}, "image_size": SIZE,
        "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
        "features": ["pool"], "gram_channels": None, "head": "none", "embed_dim": 32}))
    torch.manual_seed(123)
    reference = open_clip.create_model(arch, pretrained=None).visual.eval()
    style = torch.randn(reference.proj.shape)
    state = {f"module.backbone.{k}": v.contiguous() for k, v in reference.state_dict().items() if k != "proj"}
    state |= {"module.last_layer_style": style, "module.last_layer_content": torch.randn(reference.proj.shape)}
    weights = root / "csd.safetensors"
    save_file(state, str(weights))
    reference.proj = None
    return {"root": root, "config": config, "weights": weights, "reference": reference, "style": style}


def csd_descriptor(tiny_csd, pixels: torch.Tensor) -> torch.Tensor:
    """CSD's style output, computed as the CSD repository does: tower features @ last_layer_style, normalised."""
    with torch.no_grad():
        return F.normalize(tiny_csd["reference"](pixels) @ tiny_csd["style"], dim=1)


def test_a_csd_checkpoint_loads_and_gives_csds_style_descriptor(tiny_csd):
    encoder = create_style_encoder(f"{tiny_csd['config']}:{tiny_csd['weights']}").eval()
    pixels = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        ours = encoder(pixels)
    assert torch.allclose(ours, csd_descriptor(tiny_csd, pixels), atol=1e-5)
    random = create_style_encoder(str(tiny_csd["config"])).eval()  # no weights: a random tower, another output
    with torch.no_grad():
        assert not torch.allclose(random(pixels), ours, atol=1e-3)


def test_weights_that_do_not_fit_are_refused_in_one_line(tiny_csd, tmp_path, monkeypatch):
    partial = tmp_path / "partial.safetensors"
    save_file({"last_layer_style": tiny_csd["style"]}, str(partial))
    with pytest.raises(StyleBoostError, match="weights missing") as err:
        create_style_encoder(f"{tiny_csd['config']}:{partial}")
    assert "\n" not in str(err.value)
    pickled = tmp_path / "checkpoint.pth"
    pickled.write_bytes(b"not read")
    with pytest.raises(StyleBoostError, match="expected a .safetensors file"):
        create_style_encoder(f"{tiny_csd['config']}:{pickled}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StyleBoostError, match="neither a local file nor a hub repository"):
        create_style_encoder(f"{tiny_csd['config']}:someone/no-such-csd")


def test_the_csd_architecture_ships_as_a_named_config():
    from styleboost.style_encoder.encoder_config import named_configs, read_config

    assert "csd-vit-l-14" in available_encoders()
    cfg = read_config(named_configs()["csd-vit-l-14"])
    assert cfg.backbone == {"type": "csd", "model": "ViT-L-14-quickgelu"} and cfg.head == "none"
    assert cfg.backbone["model"] in open_clip.list_models()  # OpenAI's ViT-L/14 (QuickGELU), as CSD is built on


def test_evaluate_takes_a_csd_encoder(tiny_csd, tmp_path):
    prompts = {"people": ["a portrait of a woman in [V] style"]}
    write_styleref(tmp_path / "styleref", "woodcut", count=4, size=SIZE)
    write_styled_run(tmp_path / "woodcut", "woodcut", prompts, images_per_prompt=2, size=SIZE)
    encoder = f"{tiny_csd['config']}:{tiny_csd['weights']}"
    code = main(["evaluate", "--run", f"woodcut={tmp_path / 'woodcut'}", "--styleref", str(tmp_path / "styleref"),
                 "--out", str(tmp_path / "report"), "--encoder", encoder, "--metrics", "style",
                 "--image-size", str(SIZE), "--workers", "0", "--cache-dir", "none", "--no-progress"])
    assert code == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["models"]["style_encoder"]["name"] == encoder
    # the report's style score is CSD's: the mean cosine of each image's descriptor to the StyleRef descriptors
    encoder_net = create_style_encoder(encoder).eval()
    images = sorted((tmp_path / "woodcut" / "images").rglob("*.png"))
    refs = sorted((tmp_path / "styleref").glob("*.png"))
    with torch.no_grad():
        a = csd_descriptor(tiny_csd, encoder_net.preprocess.batch(images))
        b = csd_descriptor(tiny_csd, encoder_net.preprocess.batch(refs))
    expected = (a @ b.T).mean().item()
    overall = report["runs"][0]["overall"]["style_score"]
    assert overall == pytest.approx(expected, abs=2e-3)
