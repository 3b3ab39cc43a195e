"""Feature extractors: a batch of uint8 images on the device in, one vector per image out.

Each extractor has a ``key`` naming its model, weights and preprocessing (the embedding cache files
vectors under it) and says whether fp16 autocast is safe for it. The metrics use:
style vectors (the trained style encoder), CLIP image embeddings, Gram matrices / Gram distances
(Gatys et al.) and the FID/KID features (torchmetrics' Inception-v3, or any module a caller plugs in).
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from styleboost.core.errors import StyleBoostError, first_line
from styleboost.metrics.cache import file_identity, module_fingerprint
from styleboost.metrics.clip import ClipModel
from styleboost.style_encoder.model import StyleEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# relu1_1 ... relu5_1 of torchvision's vgg19().features: the layers of Gatys et al.'s style loss.
GATYS_VGG19_LAYERS = [1, 6, 11, 20, 29]


class FeatureExtractor:
    """uint8 ``(B, 3, S, S)`` on the device -> float ``(B, D)``."""

    key: str = ""
    autocast: bool = True  # whether fp16 autocast on CUDA is safe
    cacheable: bool = True  # whether its vectors are small enough to keep in the embedding cache

    def modules(self) -> list[nn.Module]:
        return []

    def to(self, device: str | torch.device) -> "FeatureExtractor":
        for module in self.modules():
            module.to(device)
        return self

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class StyleVectors(FeatureExtractor):
    """Unit style vectors from a trained style encoder (its own resize, crop and normalisation)."""

    def __init__(self, encoder: StyleEncoder) -> None:
        self.encoder = encoder.eval()
        self.key = f"style-encoder:{encoder.config.name}:{module_fingerprint(encoder)}"

    def modules(self) -> list[nn.Module]:
        return [self.encoder]

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.encoder.preprocess.batch(pixels))


class ClipImages(FeatureExtractor):
    """Unit CLIP image embeddings."""

    def __init__(self, clip: ClipModel) -> None:
        self.clip = clip
        self.key = f"{clip.key}:image"

    def modules(self) -> list[nn.Module]:
        return [self.clip.model]

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_images(pixels)


class GramMatrices(FeatureExtractor):
    """The Gatys style representation: each layer's Gram matrix of channel correlations / (H W).

    ``backbone`` returns ``(maps, pooled)`` like the style encoder's backbones; the images are
    normalised with ImageNet statistics, as VGG expects. Not cached: VGG19's are 0.6 M numbers an image."""

    cacheable = False

    def __init__(self, backbone: nn.Module, weights_id: str) -> None:
        self.backbone = backbone.eval()
        self.key = f"gram:{type(backbone).__name__}:{weights_id}"
        self.channels: list[int] = list(getattr(backbone, "channels", []))

    def modules(self) -> list[nn.Module]:
        return [self.backbone]

    @torch.no_grad()
    def layer_grams(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        x = TF.normalize(pixels.float() / 255, list(IMAGENET_MEAN), list(IMAGENET_STD))
        maps, _ = self.backbone(x)
        grams = []
        for features in maps:
            flat = features.flatten(2).float()  # the products are summed in float32 even under autocast
            grams.append(flat @ flat.transpose(1, 2) / flat.shape[-1])
        return grams

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.flatten(1) for g in self.layer_grams(pixels)], dim=1)


class GramDistances(FeatureExtractor):
    """Per layer, the Gatys style loss of each image against a reference set's mean Gram matrices:
    ``E_l = mean((G_l - A_l)^2) / 4`` (Gatys et al.'s ``1 / (4 N^2 M^2)`` with G normalised by M = H W).

    The Gram matrices of big layers are large (VGG19: 0.6 M numbers an image), so what is cached
    per image is these few distances, under a key that names the reference."""

    def __init__(self, grams: GramMatrices, reference: list[torch.Tensor]) -> None:
        self.grams = grams
        self.reference = [r.float() for r in reference]
        digest = hashlib.sha256(b"".join(r.cpu().numpy().tobytes() for r in self.reference)).hexdigest()[:16]
        self.key = f"{grams.key}:distance-to:{digest}"

    def modules(self) -> list[nn.Module]:
        return self.grams.modules()

    def to(self, device: str | torch.device) -> "GramDistances":
        self.grams.to(device)
        self.reference = [r.to(device) for r in self.reference]
        return self

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        grams = self.grams.layer_grams(pixels)
        return torch.stack([((g - r) ** 2).mean(dim=(1, 2)) / 4 for g, r in zip(grams, self.reference)], dim=1)


def split_gram_matrices(grams: GramMatrices, flat: torch.Tensor) -> list[torch.Tensor]:
    """Flattened Gram matrices ``(sum C^2,)`` back into per-layer ``C x C`` matrices (sizes from the last call)."""
    parts = torch.split(flat.float(), [c * c for c in grams.channels])
    return [p.view(c, c) for p, c in zip(parts, grams.channels)]


class ModuleFeatures(FeatureExtractor):
    """Any module that maps uint8 ``(B, 3, H, W)`` images to ``(B, D)`` features (a pluggable FID extractor)."""

    def __init__(self, module: nn.Module, key: str, autocast: bool = False) -> None:
        self.module = module.eval()
        self.key = key
        self.autocast = autocast

    def modules(self) -> list[nn.Module]:
        return [self.module]

    @torch.no_grad()
    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module(pixels).float().flatten(1)


def inception_features(weights_path: str | None = None) -> ModuleFeatures:
    """torchmetrics' FID Inception-v3 (the ``inception-v3-compat`` port of the TF FID network), 2048-d pool
    features; weights from a local file, else downloaded by torch-fidelity on first use. Runs in fp32."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3

        module = NoTrainInceptionV3(
            name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=weights_path
        )
    except ModuleNotFoundError as err:
        raise StyleBoostError(f"FID/KID features need torch-fidelity ({first_line(err)}); pip install torch-fidelity") from None
    except Exception as err:  # download or file errors surface as many types
        raise StyleBoostError(
            f"FID/KID Inception weights could not be loaded ({first_line(err)[:160]}); "
            "pass --inception-weights FILE or --fid-features clip"
        ) from None
    source = file_identity(weights_path) if weights_path else "torch-fidelity"
    return ModuleFeatures(module, key=f"inception-v3-compat:2048:{source}")
