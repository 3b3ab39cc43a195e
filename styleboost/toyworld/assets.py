"""Where the shipped toy-world models live, and the StyleRef / Aux sets of a personalisation experiment.

One job: name the pre-trained toy world's pipeline (``core.shipped`` knows where the world lives) and
write the data a user would bring: a StyleRef set of a *held-out* style mixing people and landscapes,
and a curated Aux set of people in *named* styles.

``--encoder toyworld`` and ``--clip toyworld`` name the world's style encoder and CLIP wherever an
encoder or a CLIP is asked for (``core.shipped`` resolves them). ``STYLEBOOST_TOYWORLD_DIR`` points every
toy-world loader at another pre-trained world (the output folder of ``train_scripts/pretrain_toyworld.py``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.errors import StyleBoostError
from styleboost.core.paths import default_cache_dir
from styleboost.core.shipped import toyworld_dir
from styleboost.toyworld.world import write_style_folder

TARGET_STYLE = "thermal"  # the held-out style the embedded default personalises to
# StyleRef: a quarter people, the rest backgrounds, as in a typical artist's portfolio
STYLEREF_CONTENTS: tuple[str, ...] = ("landscape", "house", "portrait", "tree", "animal", "person", "landscape-tree", "house")
AUX_CONTENTS: tuple[str, ...] = ("portrait", "person", "group", "person-house", "person-tree")
PEOPLE_CONTENTS = frozenset(AUX_CONTENTS)  # the contents that show people
# named styles whose look (a colour ramp over the scene) helps a false-colour target such as thermal
AUX_STYLES: tuple[str, ...] = ("night-vision", "duotone", "cyanotype", "vaporwave")


def _present(path: Path, what: str) -> Path:
    if not path.exists():
        raise StyleBoostError(
            f"the toy world's {what} is missing ({path}); rebuild it with "
            "python train_scripts/pretrain_toyworld.py --output_dir styleboost/toyworld/pretrained")
    return path


def pipeline_path() -> Path:
    """The pre-trained toy Stable Diffusion pipeline folder (diffusers format, fp32 safetensors)."""
    return _present(toyworld_dir() / "pipeline", "pipeline")


def default_experiment_root(style: str = TARGET_STYLE) -> Path:
    """Where the embedded default and the method comparison keep the experiment sets of ``style``."""
    return default_cache_dir() / "toyworld-experiment" / style


@dataclass(frozen=True)
class ExperimentSets:
    """The folders of one personalisation experiment and the style they teach."""

    styleref: Path
    aux: Path
    style: str


def make_experiment_sets(
    root: str | os.PathLike,
    style: str = TARGET_STYLE,
    *,
    styleref_count: int = 16,
    aux_count: int = 16,
    size: int = 64,
    seed: int = 0,
) -> ExperimentSets:
    """Write ``root/styleref`` (``style``, captions "<content> in [V] style") and ``root/aux`` (people in
    the ``AUX_STYLES``, captions naming their style). Sets written with the same settings (recorded in
    ``root/experiment.json``) are reused; other ones are replaced."""
    root = Path(root)
    styleref, aux = root / "styleref", root / "aux"
    settings = {"style": style, "styleref_count": styleref_count, "aux_count": aux_count, "size": size, "seed": seed,
                "styleref_contents": list(STYLEREF_CONTENTS), "aux_contents": list(AUX_CONTENTS),
                "aux_styles": list(AUX_STYLES)}
    record = root / "experiment.json"
    if not (record.is_file() and json.loads(record.read_text()) == settings):
        for folder in (styleref, aux):
            shutil.rmtree(folder, ignore_errors=True)
        items = [(STYLEREF_CONTENTS[k % len(STYLEREF_CONTENTS)], style) for k in range(styleref_count)]
        write_style_folder(styleref, items, size=size, seed=seed, caption="{content} in [V] style")
        items = [(AUX_CONTENTS[k % len(AUX_CONTENTS)], AUX_STYLES[k % len(AUX_STYLES)]) for k in range(aux_count)]
        write_style_folder(aux, items, size=size, seed=seed + 1)
        write_bytes_atomic(record, (json.dumps(settings, indent=2) + "\n").encode())
    return ExperimentSets(styleref, aux, style)


def write_part_captions(styleref: Path, dest: Path) -> Path:
    """The StyleRef set again in ``dest`` with each caption's token naming the part of the style it shows:
    ``[V1]`` for people, ``[V2]`` for everything else (Multi-StyleForge, which binds one token to each part)."""
    dest.mkdir(parents=True, exist_ok=True)
    for caption in sorted(styleref.glob("*.txt")):
        content = caption.stem.split("-", 1)[1]  # write_style_folder names images <index>-<content>
        part = "[V1]" if content in PEOPLE_CONTENTS else "[V2]"
        shutil.copyfile(caption.with_suffix(".png"), dest / f"{caption.stem}.png")
        write_bytes_atomic(dest / caption.name, caption.read_text().replace("[V]", part).encode())
    return dest


def make_content_set(root: Path, *, count: int = 16, size: int = 64, seed: int = 2) -> Path:
    """``root/content``: toy-world pictures of every StyleRef and Aux content in the Aux styles (never the target
    style), the content collection a per-style transfer network learns to restyle."""
    contents = sorted(set(STYLEREF_CONTENTS) | PEOPLE_CONTENTS)
    items = [(contents[k % len(contents)], AUX_STYLES[k % len(AUX_STYLES)]) for k in range(count)]
    return write_style_folder(root / "content", items, size=size, seed=seed)
