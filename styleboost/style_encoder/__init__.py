"""The style-similarity encoder: images -> style vectors that are close for one style, whatever the content.

    encoder = create_style_encoder()                    # the shipped default, trained on synthetic styles
    vectors = encoder.embed(["a.png", "b.png"])        # (N, D), unit length
    style_similarity(vectors, vectors)                  # cosine similarity matrix
"""

from styleboost.style_encoder.encoder_config import EncoderConfig
from styleboost.style_encoder.factory import (
    DEFAULT_ENCODER,
    available_encoders,
    create_style_encoder,
    load_style_encoder,
    save_style_encoder,
)
from styleboost.style_encoder.model import StyleEncoder, style_similarity

__all__ = [
    "DEFAULT_ENCODER",
    "EncoderConfig",
    "StyleEncoder",
    "available_encoders",
    "create_style_encoder",
    "load_style_encoder",
    "save_style_encoder",
    "style_similarity",
]
