"""The run manifest: ``run.json`` beside a run's outputs (config, versions, data hashes, status)."""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from styleboost.core.atomic import write_json_atomic
from styleboost.core.images import file_sha256

MANIFEST_FILE = "run.json"
PACKAGES = (
    "styleboost", "torch", "diffusers", "transformers", "accelerate", "peft", "safetensors", "open-clip-torch",
    "torchmetrics",
)


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Python, the platform and the installed versions of ``packages`` (default: those a run depends on)."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def data_hashes(paths: Iterable[Path]) -> dict[str, str]:
    """SHA-256 of each input image, keyed by its path."""
    return {str(p): file_sha256(p) for p in paths}


def manifest_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / MANIFEST_FILE


def read_manifest(output_dir: str | Path) -> dict[str, Any]:
    """The ``run.json`` of a run folder; ``{}`` where there is none."""
    path = manifest_path(output_dir)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def update_manifest(output_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run.json`` (created on first call) and return the whole manifest."""
    manifest = read_manifest(output_dir) or {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    path = manifest_path(output_dir)
    manifest.update(fields)
    manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json_atomic(path, manifest)
    return manifest
