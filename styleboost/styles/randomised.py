"""Style randomisation: a style drawn as a random program of ``stylize`` parts with random parameters.

One job: say what a random style is and draw one, reproducibly, from (seed, name). Parts are grouped into
operation *families* (tone, colour maps, inversions, posterisation, warps, line work, hatching, halftone screens,
paint, dots, pixels, cells, surface textures, lens effects, screen artefacts). A program takes at most one part
of each family, at most one *medium* (the families that redraw the picture with marks: line, hatching, halftone,
paint, dots, pixel, cells), and runs them in the families' stage order (tone before colour before marks before
texture). Drawing from a subset of families keeps whole families out of training, so an encoder can be judged on
marks it has never seen (``randomised_set``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from styleboost.core.errors import StyleBoostError
from styleboost.styles.stylize import LUMA, PALETTES, StyleRecipe
from styleboost.styles.synthstyle import derived_seed

Rng = np.random.Generator
Sampler = Callable[[Rng], dict[str, Any]]


def u(rng: Rng, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 3)


def colour(rng: Rng, low: int = 0, high: int = 256) -> list[int]:
    return [int(c) for c in rng.integers(low, high, 3)]


def dark(rng: Rng) -> list[int]:
    return colour(rng, 0, 90)


def light(rng: Rng) -> list[int]:
    return colour(rng, 190, 256)


def ramp(rng: Rng) -> list[list[int]]:
    """2-5 random colours, usually dark to light (a natural ramp), sometimes in any order (false colour)."""
    colours = [colour(rng) for _ in range(int(rng.integers(2, 6)))]
    if rng.random() < 0.7:
        colours.sort(key=lambda c: float(np.dot(c, LUMA)))
    return colours


def pick(rng: Rng, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


PALETTE_NAMES = tuple(PALETTES)

# family -> (stage, {part: parameter sampler}); lengths are px at stylize's 128 px reference size
FAMILIES: dict[str, tuple[int, dict[str, Sampler]]] = {
    "tone": (0, {
        "tone": lambda r: dict(contrast=u(r, 0.7, 1.8), brightness=u(r, -0.12, 0.12), gamma=u(r, 0.5, 1.8)),
        "saturation": lambda r: dict(amount=u(r, 0.0, 1.8)),
    }),
    "colour": (1, {
        "gradient_map": lambda r: dict(colours=ramp(r), steps=pick(r, (0, 0, 3, 4, 5)), amount=u(r, 0.6, 1.0)),
        "split_tone": lambda r: dict(shadows=colour(r), highlights=colour(r), amount=u(r, 0.2, 0.5)),
        "palette": lambda r: dict(colours=pick(r, PALETTE_NAMES), mode=pick(r, ("rgb", "luma", "chroma")),
                                  dither=pick(r, (0.0, u(r, 0.2, 0.9))), cell=pick(r, (1.0, 2.0))),
    }),
    "inversion": (1, {
        "solarize": lambda r: dict(threshold=u(r, 0.3, 0.8), amount=u(r, 0.6, 1.0)),
        "hue_rotate": lambda r: dict(degrees=u(r, 30, 330)),
    }),
    "posterise": (2, {
        "posterize": lambda r: dict(levels=int(r.integers(2, 7)), shading=bool(r.random() < 0.5)),
    }),
    "warp": (2, {
        "ripple": lambda r: dict(amplitude=u(r, 1.0, 4.0), wavelength=u(r, 8, 32), angle=u(r, 0, 180),
                                 swirl=pick(r, (0.0, u(r, -3.0, 3.0)))),
    }),
    "line": (3, {
        "outline": lambda r: dict(width=u(r, 0.6, 2.5), colour=pick(r, (dark(r), colour(r))),
                                  method=pick(r, ("sobel", "canny")), threshold=u(r, 0.1, 0.3),
                                  background=pick(r, (None, None, light(r)))),
        "neon_edges": lambda r: dict(gain=u(r, 3, 6), sigma=u(r, 0.5, 1.2)),
    }),
    "hatching": (3, {
        "hatch": lambda r: dict(angles=[u(r, -90, 90) for _ in range(int(r.integers(1, 4)))], spacing=u(r, 3, 6),
                                width=u(r, 0.7, 1.5), ink=dark(r), paper=light(r), wash=u(r, 0, 0.3),
                                wobble=u(r, 0, 0.5), outline_width=u(r, 0, 1.5)),
        "engrave": lambda r: dict(angle=u(r, -90, 90), spacing=u(r, 2.5, 6), ink=dark(r), paper=light(r),
                                  wave=u(r, 0, 3), gain=u(r, 0.8, 1.5), outline_width=u(r, 0, 1.5)),
        "pencil": lambda r: dict(sigma=u(r, 2, 4), darkness=u(r, 1.5, 3), shading=u(r, 0.2, 0.6), angle=u(r, 0, 90)),
    }),
    "halftone": (3, {
        "halftone": lambda r: dict(spacing=u(r, 3, 6.5), angle=u(r, 0, 90), mode=pick(r, ("mono", "cmyk")),
                                   ink=pick(r, (dark(r), colour(r))), paper=light(r)),
        "benday": lambda r: dict(spacing=u(r, 3.5, 6), low=u(r, 0.35, 0.55), high=u(r, 0.9, 0.98),
                                 dot=u(r, 0.35, 0.5)),
        "riso": lambda r: dict(inks=[colour(r), colour(r)], paper=light(r), offset=u(r, 0.5, 3), grain=u(r, 0.3, 0.9)),
    }),
    "paint": (3, {
        "watercolor": lambda r: dict(blur=u(r, 1, 2.5), bleed=u(r, 1.5, 3.5), edge=u(r, 0.3, 1.0),
                                     granulation=u(r, 0.05, 0.2), paper_white=u(r, 0.05, 0.2)),
        "kuwahara": lambda r: dict(radius=u(r, 2, 6)),
        "dry_media": lambda r: dict(paper=pick(r, (light(r), dark(r))), pressure=u(r, 0.6, 0.95),
                                    stroke=u(r, 3, 7), angle=u(r, -90, 90), gain=u(r, 1.2, 2.0)),
    }),
    "dots": (3, {
        "pointillism": lambda r: dict(spacing=u(r, 2.5, 5), radius=u(r, 1.2, 2.5), jitter=u(r, 0.3, 0.9),
                                      paper=light(r)),
    }),
    "pixel": (3, {
        "pixelate": lambda r: dict(block=u(r, 3, 8), colours=pick(r, (None, *PALETTE_NAMES)),
                                   mode=pick(r, ("rgb", "luma", "chroma")), dither=pick(r, (0.0, u(r, 0.2, 0.7)))),
    }),
    "cells": (3, {
        "cells": lambda r: dict(spacing=u(r, 5, 12), jitter=u(r, 0.3, 0.95), border=u(r, 0.5, 2.5),
                                border_colour=pick(r, (dark(r), light(r))), shading=u(r, 0, 0.3)),
    }),
    "texture": (4, {
        "paper": lambda r: dict(strength=u(r, 0.03, 0.1), fibre=u(r, 2, 5), grain=u(r, 0.01, 0.04),
                                tint=pick(r, (None, light(r)))),
        "canvas": lambda r: dict(spacing=u(r, 2, 3.5), strength=u(r, 0.04, 0.1)),
        "grain": lambda r: dict(amount=u(r, 0.03, 0.12), size=u(r, 0.5, 1.5), colour=bool(r.random() < 0.5)),
        "vignette": lambda r: dict(strength=u(r, 0.3, 0.9), start=u(r, 0.3, 0.55), colour=dark(r)),
    }),
    "lens": (4, {
        "blur": lambda r: dict(sigma=u(r, 0.5, 2.0)),
        "sharpen": lambda r: dict(amount=u(r, 0.5, 1.5), sigma=u(r, 0.7, 1.5)),
        "glow": lambda r: dict(sigma=u(r, 1.5, 4), strength=u(r, 0.4, 1.2)),
        "chromatic_shift": lambda r: dict(shift=u(r, 1, 3)),
        "emboss": lambda r: dict(strength=u(r, 1.5, 3), angle=u(r, 0, 360), amount=u(r, 0.3, 1.0),
                                 shade=bool(r.random() < 0.5)),
    }),
    "screen": (4, {
        "scanlines": lambda r: dict(period=u(r, 2, 4), strength=u(r, 0.15, 0.45)),
        "subpixels": lambda r: dict(period=3.0, strength=u(r, 0.3, 0.6)),
        "glitch": lambda r: dict(bands=int(r.integers(5, 13)), shift=u(r, 6, 16), split=u(r, 1, 4)),
        "grid": lambda r: dict(spacing=u(r, 10, 24), width=u(r, 0.5, 1.0), colour=colour(r), alpha=u(r, 0.15, 0.35)),
    }),
}
MEDIUM_STAGE = 3
MEDIA = tuple(name for name, (stage, _) in FAMILIES.items() if stage == MEDIUM_STAGE)
DEFAULT_HELDOUT_FAMILIES = ("halftone", "cells", "warp")


@dataclass(frozen=True)
class RandomStyle:
    """A drawn style: its name, the families it draws from, and the recipe ``stylize.render`` runs."""

    name: str
    families: tuple[str, ...]
    recipe: StyleRecipe


def check_families(names: Sequence[str], flag: str = "--heldout-families") -> list[str]:
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise StyleBoostError(f"{flag} {','.join(unknown)}: unknown; families are {', '.join(FAMILIES)}")
    return list(names)


def draw_families(rng: Rng, allowed: Sequence[str], required: str | None = None) -> list[str]:
    """1-4 families in stage order: usually one medium, plus 1-3 of the others (``required`` always among them)."""
    media = [f for f in allowed if f in MEDIA and f != required]
    others = [f for f in allowed if f not in MEDIA and f != required]
    chosen = [required] if required else []
    if media and (required is None or required not in MEDIA) and rng.random() < 0.8:
        chosen.append(pick(rng, media))
    extra = int(rng.integers(1, 4)) - (1 if required else 0)
    chosen += [str(f) for f in rng.permutation(others)[:max(extra, 0)]]
    if not chosen:
        chosen.append(pick(rng, list(allowed)))
    return sorted(chosen, key=lambda f: (FAMILIES[f][0], f))


def draw_style(rng: Rng, name: str, allowed: Sequence[str], required: str | None = None) -> RandomStyle:
    """One random style: families, then one part of each with random parameters."""
    families = draw_families(rng, allowed, required)
    steps = []
    for family in families:
        parts = FAMILIES[family][1]
        part_name = pick(rng, sorted(parts))
        steps.append((part_name, parts[part_name](rng)))
    description = " + ".join(f"{family}:{part}" for family, (part, _) in zip(families, steps))
    return RandomStyle(name, tuple(families), StyleRecipe(name, description, tuple(steps)))


def program_rng(seed: int, name: str) -> Rng:
    """The generator of one style's program: from the seed and the style's name (stable across runs)."""
    return np.random.default_rng(derived_seed(seed, "random-style", name))


def recipe_to_dict(recipe: StyleRecipe) -> dict[str, Any]:
    """A recipe as JSON data (what the set's manifest records of every drawn style)."""
    return {"name": recipe.name, "description": recipe.description,
            "steps": [[part, params] for part, params in recipe.steps]}

