"""StyleBoost: bind an artistic style to a token in Stable Diffusion and measure the result."""

from styleboost.core.errors import StyleBoostError

__version__ = "0.1.0"
__all__ = ["StyleBoostError", "__version__"]
