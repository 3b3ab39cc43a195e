"""The open_clip model the metrics use (CLIP-T, CLIP-I, CLIP diversity), loaded by one spec string.

``--clip`` takes ``ARCH:PRETRAINED`` (open_clip names, e.g. ``ViT-L-14:openai``; the tag may also be a
local checkpoint file), ``hf-hub:org/repo``, ``local-dir:/path`` or a local folder holding
``open_clip_config.json``, or a bare ``ARCH`` for random weights (smoke tests and benchmarks only).
Its tokenizer and preprocessing come with the model, so callers cannot mismatch them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.core.notice import notice
from styleboost.core.shipped import shipped_clip_dirs
from styleboost.metrics.cache import file_identity, module_fingerprint

DEFAULT_CLIP = "ViT-L-14:openai"


def parse_clip_spec(spec: str) -> tuple[str, str | None]:
    """``(open_clip model name, pretrained tag or file or None)`` of a ``--clip`` value (a shipped name such as
    "toyworld": that shipped CLIP folder)."""
    shipped = shipped_clip_dirs()
    if spec in shipped:
        if not shipped[spec].is_dir():
            raise StyleBoostError(f"--clip {spec}: the shipped CLIP folder {shipped[spec]} is missing")
        return f"local-dir:{shipped[spec]}", None
    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    if Path(spec).expanduser().is_dir():
        return f"local-dir:{Path(spec).expanduser()}", None
    arch, _, pretrained = spec.partition(":")
    return arch, (pretrained or None)


class ClipModel:
    """An open_clip model with its tokenizer and image preprocessing; unit-length embeddings out."""

    def __init__(self, model: nn.Module, tokenizer, spec: str, weights_id: str, random_weights: bool = False) -> None:
        import open_clip

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)))
        self.std = tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)))
        self.key = f"open_clip:{spec}:{weights_id}"
        self.random_weights = random_weights

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> "ClipModel":
        self.model.to(device)
        return self

    def pixels_to_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)`` -> CLIP's input: shorter side to its size (bicubic), centre crop, normalised."""
        x = pixels.float() / 255
        x = TF.resize(x, self.image_size, interpolation=InterpolationMode.BICUBIC, antialias=True)
        x = TF.center_crop(x, [self.image_size, self.image_size]).clamp(0, 1)
        return TF.normalize(x, list(self.mean), list(self.std))

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(self.pixels_to_input(pixels)).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Unit text embeddings ``(N, D)`` (float32, on the CPU) of ``texts``, exactly as given."""
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[start:start + batch_size]).to(self.device)
            with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
                out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.empty(0, 0)


def load_clip(spec: str = DEFAULT_CLIP) -> ClipModel:
    """Build the open_clip model a ``--clip`` spec names (weights from open_clip's hub/cache or a file)."""
    import open_clip

    name, pretrained = parse_clip_spec(spec)
    known = name.startswith(("hf-hub:", "local-dir:")) or name in open_clip.list_models()
    if not known:
        raise StyleBoostError(f"--clip {spec}: unknown open_clip model {name!r} (see open_clip.list_models())")
    try:
        model = open_clip.create_model(name, pretrained=pretrained)
        tokenizer = open_clip.get_tokenizer(name)
    except (RuntimeError, ValueError, OSError) as err:
        raise StyleBoostError(f"--clip {spec}: could not load the model ({first_line(err)[:200]})") from None
    random_weights = pretrained is None and not name.startswith(("hf-hub:", "local-dir:"))
    if random_weights:
        notice(f"--clip {spec}: no pretrained weights named, so CLIP is random (use ARCH:TAG, e.g. {DEFAULT_CLIP})")
        weights_id = module_fingerprint(model)
    else:
        weights_id = file_identity(pretrained) if pretrained and Path(pretrained).is_file() else str(pretrained or "")
        if name.startswith("local-dir:"):  # the folder's weights file names the weights, so a retrained model is not mistaken
            weights = sorted(Path(name.removeprefix("local-dir:")).glob("open_clip*.safetensors")) or \
                sorted(Path(name.removeprefix("local-dir:")).glob("open_clip*.bin"))
            weights_id = file_identity(weights[0]) if weights else weights_id
    return ClipModel(model, tokenizer, spec, weights_id, random_weights)
