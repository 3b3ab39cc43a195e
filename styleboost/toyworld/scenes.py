"""What the toy world shows: its contents, their captions, and how each is drawn in natural colours.

The single-subject contents reuse the procedural drawers of ``styleboost.styles.scenes`` (people in
poses, portraits, groups, houses, trees, mountains with a sun) and add animals and three
two-subject scenes ("a person next to a house"...). ``CLASSES`` are the contents a zero-shot
classifier is asked to tell apart; the compositions are only trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from styleboost.core.errors import StyleBoostError
from styleboost.styles import scenes as drawing
from styleboost.styles.scenes import Canvas, Kind, hsv_colour, jitter, natural_image, pick, sky_and_ground

# fur colours of the animals: brown, ginger, grey, black, cream
FUR: tuple[drawing.RGB, ...] = ((120, 80, 45), (205, 120, 50), (130, 130, 135), (40, 35, 35), (225, 205, 165))


def draw_animal_at(canvas: Canvas, rng: np.random.Generator, cx: float, feet_y: float, length: float) -> None:
    """A four-legged animal (body, head, ears, legs, tail) facing left or right, feet at ``feet_y``."""
    fur = canvas.part(Kind.CLOTH, pick(rng, FUR))
    dark = canvas.part(Kind.FEATURE, (25, 20, 20))
    facing = pick(rng, (-1, 1))
    body_h = length * rng.uniform(0.28, 0.36)
    leg = length * rng.uniform(0.28, 0.38)
    body_y = feet_y - leg - body_h * 0.35
    for offset in (-0.32, -0.18, 0.2, 0.34):
        x = cx + offset * length
        canvas.limb(fur, (x, body_y), (x + rng.uniform(-0.01, 0.01), feet_y), length * 0.08)
    canvas.ellipse(fur, cx, body_y, length * 0.5, body_h * 0.6)
    tail_root = (cx - facing * length * 0.46, body_y - body_h * 0.1)
    tail_tip = (tail_root[0] - facing * length * 0.18, tail_root[1] - body_h * rng.uniform(0.4, 1.1))
    canvas.limb(fur, tail_root, tail_tip, length * 0.06)
    head_r = length * rng.uniform(0.15, 0.19)
    head = (cx + facing * length * 0.5, body_y - body_h * 0.55)
    for side in (-1, 1):  # ears: pointed (cat) or round (bear/dog)
        ear_x = head[0] + side * head_r * 0.55
        if rng.random() < 0.5:
            canvas.polygon(fur, [(ear_x - head_r * 0.35, head[1] - head_r * 0.4), (ear_x + head_r * 0.35, head[1] - head_r * 0.4),
                                 (ear_x, head[1] - head_r * 1.45)])
        else:
            canvas.ellipse(fur, ear_x, head[1] - head_r * 0.85, head_r * 0.35)
    canvas.ellipse(fur, head[0], head[1], head_r)
    canvas.ellipse(fur, head[0] + facing * head_r * 0.75, head[1] + head_r * 0.25, head_r * 0.5, head_r * 0.38)
    canvas.ellipse(dark, head[0] + facing * head_r * 1.15, head[1] + head_r * 0.15, head_r * 0.16)
    canvas.ellipse(dark, head[0] + facing * head_r * 0.3, head[1] - head_r * 0.2, head_r * 0.13)


def draw_animal(canvas: Canvas, rng: np.random.Generator) -> str:
    horizon = rng.uniform(0.55, 0.7)
    sky_and_ground(canvas, rng, horizon)
    draw_animal_at(canvas, rng, rng.uniform(0.4, 0.6), rng.uniform(0.8, 0.9), rng.uniform(0.5, 0.62))
    return "an animal"


def draw_person_and_house(canvas: Canvas, rng: np.random.Generator) -> str:
    """A house on one side and a person standing in front of the other side."""
    horizon = rng.uniform(0.62, 0.7)
    sky_and_ground(canvas, rng, horizon)
    side = pick(rng, (-1, 1))
    wall = canvas.part(Kind.WALL, hsv_colour(rng.uniform(0.0, 0.15), rng.uniform(0.15, 0.45), rng.uniform(0.75, 0.95)))
    roof = canvas.part(Kind.ROOF, hsv_colour(rng.uniform(-0.05, 0.05), rng.uniform(0.55, 0.8), rng.uniform(0.45, 0.7)))
    door = canvas.part(Kind.OPENING, jitter(rng, (110, 70, 40)))
    cx = 0.5 + side * rng.uniform(0.17, 0.23)
    half_w, top, bottom = rng.uniform(0.2, 0.25), horizon - rng.uniform(0.2, 0.26), horizon + 0.1
    canvas.rect(wall, cx - half_w, top, cx + half_w, bottom)
    canvas.polygon(roof, [(cx - half_w - 0.05, top + 0.01), (cx + half_w + 0.05, top + 0.01), (cx, top - rng.uniform(0.16, 0.22))])
    canvas.rect(door, cx - 0.045, bottom - 0.16, cx + 0.045, bottom)
    drawing.draw_figure(canvas, rng, cx=0.5 - side * rng.uniform(0.22, 0.28), feet_y=rng.uniform(0.9, 0.94),
                        height=rng.uniform(0.6, 0.7))
    return "a person next to a house"


def draw_person_and_tree(canvas: Canvas, rng: np.random.Generator) -> str:
    horizon = rng.uniform(0.62, 0.75)
    sky_and_ground(canvas, rng, horizon)
    side = pick(rng, (-1, 1))
    drawing.draw_tree_at(canvas, rng, 0.5 + side * rng.uniform(0.18, 0.24), rng.uniform(0.9, 0.94), rng.uniform(0.7, 0.8))
    drawing.draw_figure(canvas, rng, cx=0.5 - side * rng.uniform(0.2, 0.26), feet_y=rng.uniform(0.9, 0.94),
                        height=rng.uniform(0.6, 0.7))
    return "a person next to a tree"


def draw_landscape_with_tree(canvas: Canvas, rng: np.random.Generator) -> str:
    drawing.draw_landscape(canvas, rng)
    drawing.draw_tree_at(canvas, rng, pick(rng, (0.2, 0.8)) + rng.uniform(-0.05, 0.05), rng.uniform(0.92, 0.96),
                         rng.uniform(0.5, 0.6))
    return "a landscape with a tree"


@dataclass(frozen=True)
class Content:
    """One kind of picture in the world: how it is drawn and whether it shows people."""

    name: str
    caption: str
    drawer: Callable[[Canvas, np.random.Generator], str]
    people: bool


CONTENTS: dict[str, Content] = {
    content.name: content
    for content in (
        Content("person", "a person", drawing.draw_person, True),
        Content("portrait", "a portrait of a person", drawing.draw_portrait, True),
        Content("group", "a group of people", drawing.draw_group, True),
        Content("house", "a house", drawing.draw_house, False),
        Content("tree", "a tree", drawing.draw_tree, False),
        Content("landscape", "a landscape with mountains", drawing.draw_landscape, False),
        Content("animal", "an animal", draw_animal, False),
        Content("person-house", "a person next to a house", draw_person_and_house, True),
        Content("person-tree", "a person next to a tree", draw_person_and_tree, True),
        Content("landscape-tree", "a landscape with a tree", draw_landscape_with_tree, False),
    )
}
# the single-subject contents: what zero-shot classification tells apart
CLASSES: tuple[str, ...] = ("person", "portrait", "group", "house", "tree", "landscape", "animal")


def check_content(name: str) -> Content:
    if name not in CONTENTS:
        raise StyleBoostError(f"unknown toy-world content {name!r}; choose from {', '.join(CONTENTS)}")
    return CONTENTS[name]


def draw(name: str, size: int, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """Content ``name`` drawn in natural colours at ``size`` px, and its caption ("a person next to a tree")."""
    content = check_content(name)
    canvas = Canvas(size * drawing.supersampling(size))
    content.drawer(canvas, rng)
    return natural_image(canvas.scene(content.caption), size, rng), content.caption
