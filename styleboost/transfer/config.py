"""The settings of ``styleboost transfer`` (one ``option`` field per flag) and their checks."""

from __future__ import annotations

from dataclasses import dataclass

from styleboost.core.errors import StyleBoostError
from styleboost.core.settings import option

METHODS = ("gatys", "adain", "encoder-decoder")
INITS = ("content", "noise")


@dataclass
class TransferConfig:
    """Every setting of one transfer run (the flags of ``styleboost transfer`` map onto these fields)."""

    method: str = option(help="gatys (L-BFGS on the image), adain (feed-forward, a trained decoder) or "
                         "encoder-decoder (feed-forward, a model trained per style with train_transfer.py).",
                         choices=list(METHODS))
    content: str = option(help="Content: an image, a folder of images, or a `styleboost generate` run folder "
                          "(its prompts carry over to the restyled images).")
    out: str = option(help="Output folder (images/, metadata.jsonl, run.json).")
    style: str | None = option(None, "Style (gatys, adain): an image or a folder of images of one style (a StyleRef "
                               "folder); several images average their statistics.")
    size: int = option(256, "Short side of the content (and style) images in pixels; sides rounded to multiples of 8.")
    vgg_weights: str = option("random", "VGG19 weights: torchvision (ImageNet, downloaded), a .safetensors file of "
                              "vgg19().features, or random (drawn from a fixed seed, offline).")
    steps: int = option(200, "gatys: L-BFGS function evaluations per image.")
    content_weight: float = option(1.0, "gatys: weight of the conv4_2 content loss.")
    style_weight: float = option(1e3, "gatys: weight of the Gram style loss (relu1_1..relu5_1).")
    init: str = option("content", "gatys: start from the content image or from seeded noise.", choices=list(INITS))
    seed: int = option(0, "gatys: seed of the noise start.")
    alpha: float = option(1.0, "adain: content/style trade-off, 0 (decoded content) .. 1 (full style).")
    decoder: str | None = option(None, "adain: decoder .safetensors file (default: the shipped one).")
    model: str | None = option(None, "encoder-decoder: the output folder of train_scripts/train_transfer.py.")
    overwrite: bool = option(False, "Make images that already exist in --out again.")
    progress: bool = option(True, "Show progress bars (--no-progress: none).")

    def validate(self) -> None:
        """Reject settings that cannot work, with one line naming the flag."""
        if self.method not in METHODS:
            raise StyleBoostError(f"--method {self.method!r}: choose from {', '.join(METHODS)}")
        if self.init not in INITS:
            raise StyleBoostError(f"--init {self.init!r}: choose content or noise")
        if self.size < 16:
            raise StyleBoostError(f"--size must be at least 16 (got {self.size})")
        if self.steps < 1:
            raise StyleBoostError(f"--steps must be at least 1 (got {self.steps})")
        if not 0 <= self.alpha <= 1:
            raise StyleBoostError(f"--alpha must be within 0..1 (got {self.alpha})")
