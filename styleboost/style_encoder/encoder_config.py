"""Style-encoder architecture as data: the ``config.json`` saved beside ``model.safetensors``.

Named configs live in ``configs/*.json`` (like open_clip's model configs); a saved encoder's
``config.json`` is the same structure plus its class names and a training summary.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from styleboost.core.errors import StyleBoostError

FEATURES = ("meanstd", "gram", "pool")
HEADS = ("mlp", "linear", "none")


@dataclass
class EncoderConfig:
    """Everything needed to rebuild a style encoder (weights excluded)."""

    name: str
    backbone: dict[str, Any]  # {"type": "small-cnn" | "timm" | "open_clip" | "vgg19", ...type-specific keys}
    image_size: int = 128
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    features: list[str] = field(default_factory=lambda: ["meanstd", "gram"])  # style descriptors fed to the head
    gram_channels: int | None = 16  # project each layer to this many channels before its Gram matrix
    gram_trainable: bool = True  # learn that projection (False: a fixed seeded random projection)
    head: str = "mlp"  # "none": training-free, the descriptors themselves are the style vector
    head_hidden: int = 256
    embed_dim: int = 128
    logit_scale: float = 16.0  # cosine classifier temperature
    init_seed: int = 0  # random initialisation (training-free encoders are reproducible from it)
    pretrained: str | None = None  # backbone weights: hub id / tag or local file (the user's)
    class_names: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        unknown = sorted(set(self.features) - set(FEATURES))
        if unknown or not self.features:
            raise StyleBoostError(f"style encoder {self.name!r}: features must be some of {', '.join(FEATURES)}")
        if self.head not in HEADS:
            raise StyleBoostError(f"style encoder {self.name!r}: head must be one of {', '.join(HEADS)}")
        if self.head == "none" and self.class_names:
            raise StyleBoostError(f"style encoder {self.name!r}: a training-free encoder (head none) has no classes")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> EncoderConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise StyleBoostError(f"{source}: unknown style-encoder setting(s) {', '.join(unknown)}")
        try:
            cfg = cls(**data)
        except TypeError as err:
            raise StyleBoostError(f"{source}: incomplete style-encoder config ({err})") from None
        cfg.validate()
        return cfg


def read_config(path: str | Path) -> EncoderConfig:
    """Load an ``EncoderConfig`` from a JSON file, naming the file in any error."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise StyleBoostError(f"{path}: not a readable style-encoder config ({err})") from None
    if not isinstance(data, dict):
        raise StyleBoostError(f"{path}: expected a JSON object")
    return EncoderConfig.from_dict(data, str(path))


def named_configs() -> dict[str, Path]:
    """The architectures shipped in ``configs/``, by name."""
    folder = resources.files("styleboost.style_encoder") / "configs"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json")}
