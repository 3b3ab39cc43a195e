"""Backbones of a style encoder: each turns pixels into feature maps of several layers.

Every backbone returns ``(maps, pooled)``: a list of ``(B, C_i, H_i, W_i)`` maps of the layers the
config names (for Gram / mean-std style statistics) and a ``(B, P)`` pooled vector of the deepest
layer (CLIP's image embedding for open_clip). ``channels`` and ``pooled_dim`` say their sizes.

Pretrained weights are the user's: a hub id or tag the backbone library resolves (timm, open_clip,
``torchvision`` for VGG19) or a local ``.safetensors`` file. Without them the weights are random.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from styleboost.core.errors import StyleBoostError
from styleboost.core.notice import notice


class Backbone(nn.Module):
    channels: list[int]
    pooled_dim: int


class SmallCNN(Backbone):
    """Four stride-2 stages of two 3x3 convolutions with BatchNorm: small enough to train on a CPU.

    BatchNorm (not instance or group norm) keeps each image's own channel statistics, which are
    exactly the style signal the descriptors read."""

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        stages, previous = [], 3
        for width in widths:
            stages.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            ))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.channels = list(widths)
        self.pooled_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps, x.mean(dim=(2, 3))


# torchvision vgg19().features indices of relu1_1 ... relu5_1, the layers Gatys et al. use.
VGG19_LAYER_CHANNELS = {1: 64, 3: 64, 6: 128, 8: 128, 11: 256, 13: 256, 15: 256, 17: 256,
                        20: 512, 22: 512, 24: 512, 26: 512, 29: 512, 31: 512, 33: 512, 35: 512}


class VGG19Features(Backbone):
    """torchvision's VGG19 convolutional part, read at ReLU outputs (the Gatys style layers)."""

    def __init__(self, layers: list[int], pretrained: str | None) -> None:
        super().__init__()
        import torchvision

        unknown = [i for i in layers if i not in VGG19_LAYER_CHANNELS]
        if unknown:
            raise StyleBoostError(f"vgg19 backbone: layers {unknown} are not ReLU outputs of vgg19().features")
        weights = torchvision.models.VGG19_Weights.IMAGENET1K_V1 if pretrained == "torchvision" else None
        self.features = torchvision.models.vgg19(weights=weights).features[: max(layers) + 1]
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False  # the maps we keep must not be overwritten by the next layer
        if pretrained and pretrained != "torchvision":
            load_safetensors_into(self.features, pretrained)
        self.layers = sorted(layers)
        self.channels = [VGG19_LAYER_CHANNELS[i] for i in self.layers]
        self.pooled_dim = self.channels[-1]

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        maps = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.layers:
                maps.append(x)
        return maps, maps[-1].mean(dim=(2, 3))


class TimmFeatures(Backbone):
    """Any timm model as a multi-layer feature extractor (``features_only``), e.g. EfficientNet."""

    def __init__(self, model: str, out_indices: list[int], pretrained: str | None) -> None:
        super().__init__()
        import timm

        kwargs: dict = dict(features_only=True, out_indices=tuple(out_indices))
        if pretrained:  # a local file, or a hub id such as timm/efficientnet_b0.ra_in1k
            source = "file" if Path(pretrained).is_file() else "hf_hub_id"
            kwargs.update(pretrained=True, pretrained_cfg_overlay={source: pretrained.removeprefix("hf-hub:")})
        self.model = timm.create_model(model, **kwargs)
        self.channels = list(self.model.feature_info.channels())
        self.pooled_dim = self.channels[-1]

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        maps = list(self.model(x))
        return maps, maps[-1].mean(dim=(2, 3))


class OpenCLIPVision(Backbone):
    """The image tower of an open_clip model: intermediate transformer layers as maps, and CLIP's
    image embedding as the pooled vector. ``pretrained``: an open_clip tag (``openai``) or file."""

    def __init__(self, model: str, layers: list[int], pretrained: str | None) -> None:
        super().__init__()
        import open_clip

        clip = open_clip.create_model(model, pretrained=pretrained or None)
        self.visual = clip.visual
        self.layers = list(layers)
        if not hasattr(self.visual, "transformer") or not hasattr(self.visual, "forward_intermediates"):
            raise StyleBoostError(f"open_clip backbone {model!r}: only ViT image towers are supported")
        self.channels = [self.visual.transformer.width] * len(self.layers)
        self.pooled_dim = int(self.visual.output_dim)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        out = self.visual.forward_intermediates(x, indices=self.layers, output_fmt="NCHW")
        return list(out["image_intermediates"]), out["image_features"]


class CSDVision(Backbone):
    """The CSD layout (Somepalli et al. 2024, "Measuring Style Similarity in Diffusion Models"): a CLIP ViT image
    tower without its projection, and a style projection of the tower's pooled features in its place; the
    pooled vector is that projection (``features: ["pool"]``, ``head: "none"`` gives CSD's style descriptor).

    ``pretrained``: a ``.safetensors`` file of a CSD checkpoint (keys ``backbone.*``, ``last_layer_style``,
    optional ``last_layer_content`` and ``module.`` prefixes, as the CSD repository saves them) or a hub id whose
    ``model.safetensors`` is one. Without weights the tower and projection are random (CLIP's initialisation)."""

    def __init__(self, model: str, pretrained: str | None, layers: list[int] | None = None) -> None:
        super().__init__()
        import open_clip

        self.visual = open_clip.create_model(model, pretrained=None).visual
        if not hasattr(self.visual, "transformer") or getattr(self.visual, "proj", None) is None:
            raise StyleBoostError(f"csd backbone {model!r}: needs a ViT image tower with a projection")
        self.style_projection = nn.Parameter(self.visual.proj.detach().clone())  # CSD starts from CLIP's proj
        self.visual.proj = None
        self.layers = list(layers or [])
        self.channels = [self.visual.transformer.width] * len(self.layers)
        self.pooled_dim = self.style_projection.shape[1]
        if pretrained:
            load_csd_weights(self, pretrained)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        if not self.layers:
            return [], self.visual(x) @ self.style_projection
        out = self.visual.forward_intermediates(x, indices=self.layers, output_fmt="NCHW")
        return list(out["image_intermediates"]), out["image_features"] @ self.style_projection


def csd_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A CSD checkpoint's keys as ``CSDVision``'s: ``backbone.X`` -> ``visual.X``, ``last_layer_style`` ->
    ``style_projection``; the content projection is not used."""
    mapped = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("backbone."):
            mapped["visual." + key.removeprefix("backbone.")] = value
        elif key == "last_layer_style":
            mapped["style_projection"] = value
    return mapped


def load_csd_weights(backbone: CSDVision, pretrained: str) -> None:
    """Load a CSD checkpoint (a local ``.safetensors`` file or a hub id's ``model.safetensors``); every weight
    of the tower and the style projection must be there."""
    from safetensors.torch import load_file

    path = Path(pretrained)
    if not path.is_file():
        path = Path(hub_file(pretrained, "model.safetensors"))
    if path.suffix != ".safetensors":
        raise StyleBoostError(f"csd weights {pretrained}: expected a .safetensors file (pickle files are never read)")
    state = csd_state_dict(load_file(str(path)))
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise StyleBoostError(f"csd weights {pretrained}: do not fit the architecture ({str(err)[:160]})") from None
    if result.missing_keys:
        raise StyleBoostError(f"csd weights {pretrained}: {len(result.missing_keys)} weights missing "
                              f"(e.g. {result.missing_keys[0]}); not a CSD checkpoint of this architecture")


def hub_file(repo_id: str, filename: str) -> str:
    """A file of a hub repository (downloaded once into the hub cache), or one line saying why not."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo_id.removeprefix("hf-hub:"), filename)
    except Exception as err:  # offline, no such repo or file: huggingface_hub raises several types
        raise StyleBoostError(f"{repo_id}: neither a local file nor a hub repository with {filename} "
                              f"({type(err).__name__})") from None


def load_safetensors_into(module: nn.Module, path: str) -> None:
    """Load a local ``.safetensors`` state dict into ``module`` (pickle files are never read)."""
    from safetensors.torch import load_file

    file = Path(path)
    if file.suffix != ".safetensors" or not file.is_file():
        raise StyleBoostError(f"pretrained backbone weights {path}: expected an existing .safetensors file")
    result = module.load_state_dict(load_file(str(file)), strict=False)
    if result.missing_keys:
        notice(f"{path}: {len(result.missing_keys)} backbone weights missing, left random")


def build_backbone(spec: dict, pretrained: str | None) -> Backbone:
    """The backbone a config's ``backbone`` entry describes."""
    kind = spec.get("type")
    options = {k: v for k, v in spec.items() if k != "type"}
    try:
        if kind == "small-cnn":
            backbone: Backbone = SmallCNN(**options)
            if pretrained:
                load_safetensors_into(backbone, pretrained)
            return backbone
        if kind == "vgg19":
            return VGG19Features(pretrained=pretrained, **options)
        if kind == "timm":
            return TimmFeatures(pretrained=pretrained, **options)
        if kind == "open_clip":
            return OpenCLIPVision(pretrained=pretrained, **options)
        if kind == "csd":
            return CSDVision(pretrained=pretrained, **options)
    except TypeError as err:
        raise StyleBoostError(f"backbone {kind!r}: bad settings ({err})") from None
    raise StyleBoostError(f"unknown backbone type {kind!r}; choose small-cnn, vgg19, timm, open_clip or csd")
