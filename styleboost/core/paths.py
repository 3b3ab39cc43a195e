"""Where styleboost keeps what it builds between runs (tiny models, experiment sets, feature caches)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$STYLEBOOST_CACHE``, else ``$XDG_CACHE_HOME/styleboost`` (``~/.cache/styleboost``)."""
    root = os.environ.get("STYLEBOOST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "styleboost"
    )
    return Path(root)
