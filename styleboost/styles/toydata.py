"""Procedural toy images: the embedded default StyleRef and Aux sets, pure numpy + PIL.

A *content drawer* paints a scene (a person, a portrait, a group of people, a house, a tree,
mountains with a sun) as a label map: every pixel names the scene part it belongs to, and every
part has a kind (skin, hair, cloth, roof...) and a natural colour. A *style renderer* turns that
label map into an RGB image with one fixed recipe:

- ``ink``: black outlines and hatching on cream paper, faint grey washes.
- ``neon``: a dark night background, saturated glowing outlines, dim tinted interiors.
- ``pastel``: soft, blurred, light and desaturated colours, no outlines.
- ``pixel``: a 16x16 grid of cells quantised to a fixed 16-colour retro palette.
- ``halftone``: coloured dots on white paper, dot size following the darkness of the scene.

Scenes are drawn at a few times the requested size and reduced, so edges stay smooth at any
resolution. Everything is derived from the seed, so the same arguments give byte-identical PNGs.

``make_default_datasets(root)`` writes the StyleRef set (target style ``neon``, captions with the
``[V]`` placeholder) and the Aux set (people in the other styles, captions without the token)
that the training benchmark and tests use (the embedded default now uses ``styleboost.toyworld``).
"""

from __future__ import annotations

import colorsys
import io
import math
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from styleboost.core.atomic import write_bytes_atomic
from styleboost.core.errors import StyleBoostError

RGB = tuple[int, int, int]
Point = tuple[float, float]

TARGET_STYLE = "neon"
DEFAULT_SIZE = 64
DEFAULT_COUNT = 16
MIN_SIZE = 16


class Kind(Enum):
    """What a scene part is; style renderers treat some kinds specially (the sky, the sun...)."""

    SKY = "sky"
    GROUND = "ground"
    SKIN = "skin"
    HAIR = "hair"
    CLOTH = "cloth"
    FEATURE = "feature"
    WALL = "wall"
    ROOF = "roof"
    OPENING = "opening"
    TRUNK = "trunk"
    FOLIAGE = "foliage"
    MOUNTAIN = "mountain"
    SNOW = "snow"
    SUN = "sun"


@dataclass(frozen=True)
class Part:
    """One region of a scene: its kind and its natural colour."""

    kind: Kind
    colour: RGB


@dataclass(frozen=True)
class Scene:
    """A drawn scene: ``labels[y, x]`` indexes ``parts``; ``caption`` is a noun phrase."""

    labels: np.ndarray
    parts: tuple[Part, ...]
    caption: str

    def paint(self, colours: Sequence[RGB]) -> np.ndarray:
        """An ``(H, W, 3)`` float array with every part filled by ``colours[part_index]``."""
        return np.asarray(colours, dtype=np.float32)[self.labels]

    def mask(self, *kinds: Kind) -> np.ndarray:
        """A boolean map of the pixels whose part has one of ``kinds``."""
        selected = np.array([part.kind in kinds for part in self.parts])
        return selected[self.labels]


# --------------------------------------------------------------------------- drawing surface


class Canvas:
    """A label-map canvas in normalised coordinates: (0, 0) top left, (1, 1) bottom right."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.image = Image.new("L", (side, side), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.parts: list[Part] = []

    def part(self, kind: Kind, colour: RGB) -> int:
        if len(self.parts) == 256:
            raise ValueError("a scene holds at most 256 parts")
        self.parts.append(Part(kind, tuple(int(c) for c in colour)))
        return len(self.parts) - 1

    def _px(self, point: Point) -> tuple[float, float]:
        return point[0] * self.side, point[1] * self.side

    def fill(self, label: int) -> None:
        self.draw.rectangle((0, 0, self.side, self.side), fill=label)

    def rect(self, label: int, x0: float, y0: float, x1: float, y1: float) -> None:
        self.draw.rectangle((*self._px((x0, y0)), *self._px((x1, y1))), fill=label)

    def ellipse(self, label: int, cx: float, cy: float, rx: float, ry: float | None = None) -> None:
        ry = rx if ry is None else ry
        self.draw.ellipse((*self._px((cx - rx, cy - ry)), *self._px((cx + rx, cy + ry))), fill=label)

    def polygon(self, label: int, points: Iterable[Point]) -> None:
        self.draw.polygon([self._px(p) for p in points], fill=label)

    def limb(self, label: int, start: Point, end: Point, width: float) -> None:
        """A thick line with round ends (arms, legs, branches)."""
        self.draw.line([self._px(start), self._px(end)], fill=label, width=max(1, round(width * self.side)))
        for x, y in (start, end):
            self.ellipse(label, x, y, width / 2)

    def scene(self, caption: str) -> Scene:
        return Scene(np.asarray(self.image, dtype=np.uint8).copy(), tuple(self.parts), caption)


# --------------------------------------------------------------------------- natural colours

SKIN_TONES: tuple[RGB, ...] = ((255, 219, 190), (241, 194, 160), (224, 172, 130), (198, 134, 94), (141, 85, 54))
HAIR_COLOURS: tuple[RGB, ...] = ((25, 20, 18), (70, 45, 25), (120, 70, 30), (200, 160, 80), (150, 50, 25))


def hsv_colour(hue: float, saturation: float, value: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def jitter(rng: np.random.Generator, colour: RGB, amount: int = 12) -> RGB:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def sky_colour(rng: np.random.Generator) -> RGB:
    return jitter(rng, (150, 200, 235))


def grass_colour(rng: np.random.Generator) -> RGB:
    return jitter(rng, (105, 165, 80))


def cloth_colour(rng: np.random.Generator, value: float = 0.8) -> RGB:
    return hsv_colour(rng.random(), rng.uniform(0.5, 0.8), value)


def sky_and_ground(canvas: Canvas, rng: np.random.Generator, horizon: float) -> None:
    canvas.fill(canvas.part(Kind.SKY, sky_colour(rng)))
    canvas.rect(canvas.part(Kind.GROUND, grass_colour(rng)), 0, horizon, 1, 1)


# --------------------------------------------------------------------------- people

Angles = tuple[float, float]
# pose: (left arm (upper, forearm), right arm (upper, forearm), range of leg spread), in degrees
# away from straight down; positive points away from the body, negative across it.
POSES: dict[str, tuple[Angles, Angles, Angles]] = {
    "standing": ((15, 22), (15, 22), (3, 7)),
    "waving": ((15, 22), (130, 165), (3, 8)),
    "arms up": ((140, 160), (140, 160), (8, 14)),
    "arms out": ((80, 95), (80, 95), (5, 10)),
    "hands on hips": ((45, -45), (45, -45), (5, 10)),
    "striding": ((-20, -10), (25, 35), (18, 26)),
}


def direction(angle_deg: float, side: int) -> Point:
    """A unit vector ``angle_deg`` away from straight down, pointing to ``side`` (-1 left, +1 right)."""
    angle = math.radians(angle_deg)
    return side * math.sin(angle), math.cos(angle)


def step(start: Point, angle_deg: float, side: int, length: float) -> Point:
    dx, dy = direction(angle_deg, side)
    return start[0] + dx * length, start[1] + dy * length


def draw_hair_back(canvas: Canvas, hair: int, cx: float, cy: float, r: float, style: str) -> None:
    """Hair that sits behind the head: long hair falls to the shoulders."""
    if style == "long":
        canvas.ellipse(hair, cx, cy + r * 0.55, r * 1.15, r * 1.5)
    elif style == "bun":
        canvas.ellipse(hair, cx, cy - r * 1.05, r * 0.45)


def draw_hair_top(canvas: Canvas, hair: int, cx: float, cy: float, r: float) -> None:
    """The crown of the hair: drawn before the face, it shows above and beside it."""
    canvas.ellipse(hair, cx, cy - r * 0.18, r * 1.06, r * 0.98)


def draw_face(canvas: Canvas, skin: int, hair: int, cx: float, cy: float, r: float) -> None:
    """The face over the hair crown, with a fringe across the forehead."""
    canvas.ellipse(skin, cx, cy + r * 0.06, r * 0.9, r * 0.94)
    canvas.ellipse(hair, cx + r * 0.1, cy - r * 0.72, r * 0.78, r * 0.3)


def draw_figure(canvas: Canvas, rng: np.random.Generator, cx: float, feet_y: float, height: float) -> None:
    """A full-body person, feet at ``feet_y``, with a pose, clothes and hair chosen by ``rng``."""
    pose = pick(rng, sorted(POSES))
    left_arm, right_arm, leg_spread = POSES[pose]
    skin = canvas.part(Kind.SKIN, pick(rng, SKIN_TONES))
    hair = canvas.part(Kind.HAIR, pick(rng, HAIR_COLOURS))
    shirt_colour = cloth_colour(rng)
    shirt = canvas.part(Kind.CLOTH, shirt_colour)
    sleeve = canvas.part(Kind.CLOTH, shirt_colour)
    trousers = canvas.part(Kind.CLOTH, cloth_colour(rng, value=rng.uniform(0.3, 0.55)))
    shoes = canvas.part(Kind.FEATURE, (35, 30, 30))

    r = height * 0.1
    head = (cx, feet_y - height + r)
    shoulder_y = head[1] + r * 1.35
    hip_y = shoulder_y + height * 0.33
    limb = height * 0.085

    for side, spread in ((-1, rng.uniform(*leg_spread)), (1, rng.uniform(*leg_spread))):
        hip = (cx + side * height * 0.055, hip_y - limb / 2)
        foot = step(hip, spread, side, feet_y - hip[1] - limb * 0.4)
        canvas.limb(trousers, hip, foot, limb)
        canvas.ellipse(shoes, foot[0] + side * limb * 0.35, foot[1] + limb * 0.15, limb * 0.7, limb * 0.45)

    hair_style = pick(rng, ("short", "short", "long", "bun"))
    draw_hair_back(canvas, hair, head[0], head[1], r, hair_style)
    canvas.rect(skin, cx - r * 0.35, head[1], cx + r * 0.35, shoulder_y + r * 0.3)
    half_top, half_bottom = height * 0.125, height * 0.1
    left, right = cx - half_top, cx + half_top
    canvas.polygon(shirt, [(left, shoulder_y), (right, shoulder_y), (cx + half_bottom, hip_y), (cx - half_bottom, hip_y)])
    draw_hair_top(canvas, hair, head[0], head[1], r)
    draw_face(canvas, skin, hair, head[0], head[1], r)

    for side, (upper_angle, fore_angle) in ((-1, left_arm), (1, right_arm)):
        shoulder = (cx + side * (half_top - limb * 0.35), shoulder_y + limb * 0.5)
        elbow = step(shoulder, upper_angle + rng.uniform(-6, 6), side, height * 0.16)
        hand = step(elbow, fore_angle + rng.uniform(-6, 6), side, height * 0.15)
        canvas.limb(sleeve, shoulder, elbow, limb)
        canvas.limb(skin, elbow, hand, limb * 0.85)
        canvas.ellipse(skin, hand[0], hand[1], limb * 0.6)


def draw_person(canvas: Canvas, rng: np.random.Generator) -> str:
    sky_and_ground(canvas, rng, horizon=rng.uniform(0.62, 0.75))
    draw_figure(canvas, rng, cx=rng.uniform(0.42, 0.58), feet_y=rng.uniform(0.88, 0.93), height=rng.uniform(0.7, 0.8))
    return "a person"


def draw_group(canvas: Canvas, rng: np.random.Generator) -> str:
    sky_and_ground(canvas, rng, horizon=rng.uniform(0.55, 0.68))
    count = int(rng.integers(2, 4))
    slots = np.linspace(0.5 - 0.16 * (count - 1), 0.5 + 0.16 * (count - 1), count)
    centres = slots + rng.uniform(-0.03, 0.03, count)
    feet = rng.uniform(0.86, 0.95, count)
    heights = rng.uniform(0.48, 0.6, count)
    for k in np.argsort(feet):  # the figures further back first
        draw_figure(canvas, rng, float(centres[k]), float(feet[k]), float(heights[k]))
    return "a group of people"


def draw_portrait(canvas: Canvas, rng: np.random.Generator) -> str:
    canvas.fill(canvas.part(Kind.SKY, hsv_colour(rng.random(), rng.uniform(0.15, 0.35), rng.uniform(0.75, 0.92))))
    skin = canvas.part(Kind.SKIN, pick(rng, SKIN_TONES))
    hair = canvas.part(Kind.HAIR, pick(rng, HAIR_COLOURS))
    shirt = canvas.part(Kind.CLOTH, cloth_colour(rng, value=rng.uniform(0.5, 0.85)))
    eyes = canvas.part(Kind.FEATURE, (30, 25, 25))
    mouth = canvas.part(Kind.FEATURE, (150, 50, 55))

    cx, cy, r = rng.uniform(0.45, 0.55), rng.uniform(0.38, 0.44), rng.uniform(0.17, 0.21)
    hair_style = pick(rng, ("short", "long", "bun"))
    draw_hair_back(canvas, hair, cx, cy, r, hair_style)
    canvas.ellipse(shirt, 0.5, 1.08, rng.uniform(0.4, 0.46), 0.36)
    canvas.rect(skin, cx - r * 0.38, cy, cx + r * 0.38, cy + r * 1.55)
    canvas.polygon(shirt, [(cx - r * 0.6, 0.76), (cx + r * 0.6, 0.76), (cx, cy + r * 1.75)])
    draw_hair_top(canvas, hair, cx, cy, r)
    for side in (-1, 1):
        canvas.ellipse(skin, cx + side * r * 0.92, cy + r * 0.12, r * 0.16, r * 0.25)
    draw_face(canvas, skin, hair, cx, cy, r)
    for side in (-1, 1):
        canvas.ellipse(eyes, cx + side * r * 0.36, cy + r * 0.05, r * 0.11, r * 0.13)
    canvas.ellipse(mouth, cx, cy + r * 0.52, r * 0.28, r * 0.08)
    return "a portrait of a person"


# --------------------------------------------------------------------------- other contents


def draw_house(canvas: Canvas, rng: np.random.Generator) -> str:
    horizon = rng.uniform(0.65, 0.75)
    sky_and_ground(canvas, rng, horizon)
    wall = canvas.part(Kind.WALL, hsv_colour(rng.uniform(0.0, 0.15), rng.uniform(0.15, 0.45), rng.uniform(0.75, 0.95)))
    roof = canvas.part(Kind.ROOF, hsv_colour(rng.uniform(-0.05, 0.05), rng.uniform(0.55, 0.8), rng.uniform(0.45, 0.7)))
    door = canvas.part(Kind.OPENING, jitter(rng, (110, 70, 40)))
    window = canvas.part(Kind.OPENING, jitter(rng, (200, 225, 245)))

    cx, half_w = rng.uniform(0.42, 0.58), rng.uniform(0.2, 0.27)
    bottom, top = horizon + rng.uniform(0.08, 0.14), horizon - rng.uniform(0.18, 0.26)
    apex = top - rng.uniform(0.18, 0.26)
    if rng.random() < 0.6:
        chimney_x = cx + half_w * rng.uniform(0.35, 0.6)
        canvas.rect(roof, chimney_x - 0.03, apex + 0.02, chimney_x + 0.03, top - 0.02)
    canvas.rect(wall, cx - half_w, top, cx + half_w, bottom)
    canvas.polygon(roof, [(cx - half_w - 0.06, top + 0.01), (cx + half_w + 0.06, top + 0.01), (cx, apex)])
    door_x = cx + rng.uniform(-0.4, 0.4) * half_w
    canvas.rect(door, door_x - 0.05, bottom - (bottom - top) * 0.6, door_x + 0.05, bottom)
    for window_x in (cx - half_w * 0.62, cx + half_w * 0.62):
        if abs(window_x - door_x) > 0.12:
            canvas.rect(window, window_x - 0.055, top + 0.05, window_x + 0.055, top + 0.15)
    return "a house"


def draw_tree_at(canvas: Canvas, rng: np.random.Generator, cx: float, base_y: float, height: float) -> None:
    trunk = canvas.part(Kind.TRUNK, jitter(rng, (105, 70, 40)))
    leaf_colour = hsv_colour(rng.uniform(0.22, 0.4), rng.uniform(0.55, 0.8), rng.uniform(0.45, 0.7))
    leaves = canvas.part(Kind.FOLIAGE, leaf_colour)
    crown_y, crown_r = base_y - height * 0.68, height * 0.3
    foot, neck = height * 0.06, height * 0.035
    canvas.polygon(trunk, [(cx - foot, base_y), (cx + foot, base_y), (cx + neck, crown_y), (cx - neck, crown_y)])
    for side in (-1, 1):
        canvas.limb(trunk, (cx, crown_y + height * 0.2), (cx + side * crown_r * 0.7, crown_y), height * 0.03)
    blobs = int(rng.integers(4, 7))
    for k in range(blobs):
        angle = 2 * math.pi * k / blobs + rng.uniform(-0.4, 0.4)
        distance = crown_r * rng.uniform(0.35, 0.6)
        blob_x, blob_y = cx + math.cos(angle) * distance, crown_y + math.sin(angle) * distance * 0.8
        canvas.ellipse(leaves, blob_x, blob_y, crown_r * rng.uniform(0.5, 0.65))
    canvas.ellipse(leaves, cx, crown_y, crown_r * 0.6)


def draw_tree(canvas: Canvas, rng: np.random.Generator) -> str:
    horizon = rng.uniform(0.65, 0.78)
    sky_and_ground(canvas, rng, horizon)
    if rng.random() < 0.5:
        draw_tree_at(canvas, rng, pick(rng, (0.15, 0.85)), horizon + 0.04, rng.uniform(0.3, 0.4))
    draw_tree_at(canvas, rng, rng.uniform(0.4, 0.6), rng.uniform(0.9, 0.95), rng.uniform(0.75, 0.85))
    return "a tree"


def snow_cap(apex: Point, left: Point, right: Point, depth: float, rng: np.random.Generator) -> list[Point]:
    """The top ``depth`` of a mountain triangle, with a jagged lower edge."""
    def along(end: Point, t: float) -> Point:
        return apex[0] + (end[0] - apex[0]) * t, apex[1] + (end[1] - apex[1]) * t

    start, stop = along(left, depth), along(right, depth)
    teeth = []
    for k, t in enumerate(np.linspace(0.2, 0.8, 4)):
        drop = (0.035 if k % 2 else -0.01) * rng.uniform(0.6, 1.0)
        teeth.append((start[0] + (stop[0] - start[0]) * t, start[1] + (stop[1] - start[1]) * t + drop))
    return [apex, start, *teeth, stop]


def draw_landscape(canvas: Canvas, rng: np.random.Generator) -> str:
    horizon = rng.uniform(0.7, 0.8)
    canvas.fill(canvas.part(Kind.SKY, sky_colour(rng)))
    sun = canvas.part(Kind.SUN, jitter(rng, (255, 210, 70)))
    canvas.ellipse(sun, rng.uniform(0.15, 0.85), rng.uniform(0.12, 0.25), rng.uniform(0.08, 0.11))
    peaks = int(rng.integers(2, 4))
    for k in range(peaks):
        rock_colour = hsv_colour(rng.uniform(0.55, 0.75), rng.uniform(0.15, 0.35), rng.uniform(0.35, 0.6))
        rock = canvas.part(Kind.MOUNTAIN, rock_colour)
        snow = canvas.part(Kind.SNOW, jitter(rng, (245, 245, 250), 6))
        cx = (k + 0.5) / peaks + rng.uniform(-0.08, 0.08)
        apex = (cx, rng.uniform(0.2, 0.42))
        half = rng.uniform(0.3, 0.45)
        left, right = (cx - half, horizon + 0.02), (cx + half, horizon + 0.02)
        canvas.polygon(rock, [apex, left, right])
        canvas.polygon(snow, snow_cap(apex, left, right, rng.uniform(0.25, 0.35), rng))
    canvas.rect(canvas.part(Kind.GROUND, grass_colour(rng)), 0, horizon, 1, 1)
    return "a landscape with mountains"


Drawer = Callable[[Canvas, np.random.Generator], str]

CONTENTS: dict[str, Drawer] = {
    "person": draw_person,
    "portrait": draw_portrait,
    "group": draw_group,
    "house": draw_house,
    "tree": draw_tree,
    "landscape": draw_landscape,
}
PEOPLE_CONTENTS: tuple[str, ...] = ("person", "portrait", "group")
NON_PEOPLE_CONTENTS: tuple[str, ...] = ("house", "tree", "landscape")


def supersampling(size: int) -> int:
    """How many times larger than ``size`` scenes are drawn before reduction (smooth edges)."""
    return max(1, min(4, 512 // size))


def draw_scene(content: str, size: int, rng: np.random.Generator) -> Scene:
    """Draw ``content`` as a label map at ``size`` times the supersampling factor."""
    if content not in CONTENTS:
        raise StyleBoostError(f"unknown toy content {content!r}; choose from {', '.join(CONTENTS)}")
    canvas = Canvas(size * supersampling(size))
    caption = CONTENTS[content](canvas, rng)
    return canvas.scene(caption)


# --------------------------------------------------------------------------- style helpers


def edge_mask(labels: np.ndarray, thickness: int) -> np.ndarray:
    """Pixels within about ``thickness`` pixels of a boundary between two parts."""
    edges = np.zeros(labels.shape, dtype=bool)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    edges[:-1, :] |= labels[1:, :] != labels[:-1, :]
    grow = thickness - 2
    if grow > 0:
        image = Image.fromarray(edges.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(grow | 1))
        edges = np.asarray(image) > 0
    return edges


def to_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def reduce(image: Image.Image, size: int) -> Image.Image:
    return image if image.size == (size, size) else image.resize((size, size), Image.Resampling.BOX)


def blur(pixels: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a float RGB array (values 0..255)."""
    return np.asarray(to_image(pixels).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)


def luminance(colour: Sequence[float]) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def recolour(colour: RGB, saturation: Callable[[float], float], value: Callable[[float], float]) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    return hsv_colour(h, saturation(s), value(v))


# --------------------------------------------------------------------------- styles

INK_PAPER: RGB = (244, 236, 214)
INK_BLACK: RGB = (22, 20, 18)


INK_HATCH_MIN_SIZE = 48


def render_ink(scene: Scene, size: int) -> Image.Image:
    """Black outlines on cream paper, grey washes for dark parts, hatching for the darkest.

    Lines scale with the image; hatching is drawn only from 48 px up (below, it turns to mud).
    """
    side = scene.labels.shape[0]
    paper = np.asarray(INK_PAPER, dtype=np.float32)
    darkness = [0.0 if p.kind in (Kind.SKY, Kind.GROUND) else 1 - luminance(p.colour) / 255 for p in scene.parts]
    pixels = scene.paint([tuple(paper * (1 - 0.4 * d)) for d in darkness])
    if size >= INK_HATCH_MIN_SIZE:
        ys, xs = np.indices(scene.labels.shape)
        period = max(3, round(side / 18))
        hatch_lines = (xs + ys) % period < max(1, round(period * 0.35))
        dark_parts = np.array([d > 0.5 for d in darkness])[scene.labels]
        pixels[hatch_lines & dark_parts] = INK_BLACK
    pixels[edge_mask(scene.labels, max(2, round(side / 45)))] = INK_BLACK
    return reduce(to_image(pixels), size)


NEON_COLOURS: tuple[RGB, ...] = (
    (255, 40, 200),  # magenta
    (40, 235, 255),  # cyan
    (120, 255, 60),  # lime
    (255, 235, 40),  # yellow
    (255, 120, 30),  # orange
    (170, 80, 255),  # violet
)


def neon_colour(colour: RGB) -> RGB:
    """The glowing colour nearest in hue to ``colour``; greys become cyan."""
    h, s, _ = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    if s < 0.2:
        return NEON_COLOURS[1]
    hues = [colorsys.rgb_to_hsv(*(c / 255 for c in n))[0] for n in NEON_COLOURS]
    distance = [min(abs(h - nh), 1 - abs(h - nh)) for nh in hues]
    return NEON_COLOURS[int(np.argmin(distance))]


def render_neon(scene: Scene, size: int) -> Image.Image:
    """A dark night scene: dim tinted interiors, saturated outlines with a soft glow."""
    side = scene.labels.shape[0]
    glow_colours = [neon_colour(p.colour) for p in scene.parts]
    interior = {Kind.SUN: 0.9, Kind.FEATURE: 1.0, Kind.SKY: 0.0, Kind.GROUND: 0.06}
    fills = [tuple(np.asarray(c) * interior.get(p.kind, 0.2)) for c, p in zip(glow_colours, scene.parts)]
    night = np.linspace([30, 6, 50], [6, 4, 16], side, dtype=np.float32)[:, None, :]
    pixels = scene.paint(fills) + night * scene.mask(Kind.SKY, Kind.GROUND)[..., None]
    lines = scene.paint(glow_colours) * edge_mask(scene.labels, max(2, round(side / 50)))[..., None]
    pixels = pixels + lines + 1.4 * blur(lines, side / 40)
    return reduce(to_image(pixels), size)


PASTEL_TINT: RGB = (255, 246, 250)


def render_pastel(scene: Scene, size: int) -> Image.Image:
    """Light, desaturated colours with a soft blur and no outlines."""
    soft = [recolour(p.colour, lambda s: 0.55 * s, lambda v: 0.8 + 0.2 * v) for p in scene.parts]
    pixels = 0.85 * scene.paint(soft) + 0.15 * np.asarray(PASTEL_TINT, dtype=np.float32)
    image = reduce(to_image(pixels), size)
    return image.filter(ImageFilter.GaussianBlur(size / 48))


PIXEL_GRID = 16
PIXEL_PALETTE: tuple[RGB, ...] = (  # the PICO-8 palette
    (0, 0, 0), (29, 43, 83), (126, 37, 83), (0, 135, 81),
    (171, 82, 54), (95, 87, 79), (194, 195, 199), (255, 241, 232),
    (255, 0, 77), (255, 163, 0), (255, 236, 39), (0, 228, 54),
    (41, 173, 255), (131, 118, 156), (255, 119, 168), (255, 204, 170),
)


def quantise(pixels: np.ndarray, palette: Sequence[RGB]) -> np.ndarray:
    """Replace every colour by the nearest palette colour (Euclidean in RGB)."""
    colours = np.asarray(palette, dtype=np.float32)
    distance = ((pixels[..., None, :] - colours) ** 2).sum(axis=-1)
    return colours[distance.argmin(axis=-1)]


def render_pixel(scene: Scene, size: int) -> Image.Image:
    """A 16x16 grid of flat cells in a fixed 16-colour palette, scaled up without smoothing."""
    vivid = [recolour(p.colour, lambda s: min(1.0, 1.6 * s + 0.1), lambda v: v) for p in scene.parts]
    cells = to_image(scene.paint(vivid)).resize((PIXEL_GRID, PIXEL_GRID), Image.Resampling.BOX)
    quantised = quantise(np.asarray(cells, dtype=np.float32), PIXEL_PALETTE)
    return to_image(quantised).resize((size, size), Image.Resampling.NEAREST)


HALFTONE_PAPER: RGB = (252, 250, 242)

def halftone_cells(size: int) -> int:
    """Dots across the image: 16 from 48 px up, fewer below so that a dot stays >= ~3 px."""
    return max(8, min(16, size // 3))


def render_halftone(scene: Scene, size: int) -> Image.Image:
    """Staggered dots on white paper: dot colour from the part, dot size from its darkness."""
    side = scene.labels.shape[0]
    cells = halftone_cells(size)
    cell = side / cells
    inks = [recolour(p.colour, lambda s: min(1.0, 1.3 * s + 0.1), lambda v: 0.85 * v) for p in scene.parts]
    image = Image.new("RGB", (side, side), HALFTONE_PAPER)
    draw = ImageDraw.Draw(image)
    for row in range(cells + 1):
        offset = cell / 2 if row % 2 else 0.0
        for column in range(cells + 1):
            x, y = column * cell + offset, row * cell
            label = scene.labels[min(side - 1, int(y)), min(side - 1, int(x))]
            darkness = 1 - luminance(scene.parts[label].colour) / 255
            radius = cell * 0.62 * math.sqrt(0.12 + 0.88 * darkness)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=inks[label])
    return reduce(image, size)


Renderer = Callable[[Scene, int], Image.Image]

STYLES: dict[str, Renderer] = {
    "ink": render_ink,
    "neon": render_neon,
    "pastel": render_pastel,
    "pixel": render_pixel,
    "halftone": render_halftone,
}


def other_styles(target: str = TARGET_STYLE) -> tuple[str, ...]:
    """All styles except ``target``, in a fixed order (the default Aux styles)."""
    check_style(target)
    return tuple(name for name in STYLES if name != target)


def check_style(style: str) -> None:
    if style not in STYLES:
        raise StyleBoostError(f"unknown toy style {style!r}; choose from {', '.join(STYLES)}")


def check_size(size: int) -> None:
    if size < MIN_SIZE:
        raise StyleBoostError(f"toy image size {size} is too small; use at least {MIN_SIZE} pixels")


def check_seed(seed: int) -> None:
    if seed < 0:
        raise StyleBoostError(f"toy data seed must be 0 or more, got {seed}")


# --------------------------------------------------------------------------- examples and sets


STYLEREF_STREAM, AUX_STREAM = 0, 1


def example_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """An independent generator for one image of one set, reproducible from the seed."""
    return np.random.default_rng([stream, index, seed])


def render_example(content: str, style: str, size: int = DEFAULT_SIZE, seed: int = 0) -> tuple[Image.Image, str]:
    """One image of ``content`` in ``style`` and its noun-phrase caption ("a house")."""
    check_style(style)
    check_size(size)
    check_seed(seed)
    scene = draw_scene(content, size, np.random.default_rng(seed))
    return STYLES[style](scene, size), scene.caption


def _render(content: str, style: str, size: int, rng: np.random.Generator) -> tuple[Image.Image, str]:
    scene = draw_scene(content, size, rng)
    return STYLES[style](scene, size), scene.caption


def png_bytes(image: Image.Image, compress_level: int = 9) -> bytes:
    """PNG bytes with no metadata, so equal pixels give equal files."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` (atomically, via a temporary name) unless ``path`` already holds exactly it."""
    if path.is_file() and path.read_bytes() == data:
        return
    write_bytes_atomic(path, data)


def write_example(folder: Path, stem: str, image: Image.Image, caption: str) -> Path:
    image_path = folder / f"{stem}.png"
    write_if_changed(image_path, png_bytes(image))
    write_if_changed(folder / f"{stem}.txt", (caption + "\n").encode())
    return image_path


def prepare_folder(folder: str | os.PathLike, n: int) -> Path:
    if n < 1:
        raise StyleBoostError(f"a toy set needs at least one image, got n={n}")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise StyleBoostError(f"{path} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


STYLEREF_CONTENT_ORDER: tuple[str, ...] = ("person", "house", "portrait", "tree", "group", "landscape")


def make_styleref_set(
    folder: str | os.PathLike,
    style: str = TARGET_STYLE,
    n: int = DEFAULT_COUNT,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    token_placeholder: str = "[V]",
) -> list[Path]:
    """Write ``n`` PNGs of people and non-people contents in ``style``, captioned "<noun> in [V] style".

    Contents alternate people / non-people (person, house, portrait, tree, group, landscape, ...).
    Existing files with the same bytes are left untouched. Returns the image paths in order.
    """
    check_style(style)
    check_size(size)
    check_seed(seed)
    if not token_placeholder.strip():
        raise StyleBoostError("the StyleRef token placeholder is empty; use e.g. [V]")
    target = prepare_folder(folder, n)
    paths = []
    for index in range(n):
        content = STYLEREF_CONTENT_ORDER[index % len(STYLEREF_CONTENT_ORDER)]
        image, noun = _render(content, style, size, example_rng(seed, index, STYLEREF_STREAM))
        paths.append(write_example(target, f"{index:03d}_{content}", image, f"{noun} in {token_placeholder} style"))
    return paths


def make_aux_set(
    folder: str | os.PathLike,
    styles: Sequence[str] = other_styles(TARGET_STYLE),
    n: int = DEFAULT_COUNT,
    size: int = DEFAULT_SIZE,
    seed: int = 1,
) -> list[Path]:
    """Write ``n`` PNGs of people (person, portrait, group) in ``styles``, captioned "<noun> in <style> style".

    Image ``i`` shows people content ``i % 3`` in style ``(i // 3) % len(styles)``, so the first
    ``3 * len(styles)`` images cover every pairing. Captions carry no token. Returns the image paths.
    """
    styles = tuple(styles)
    if not styles:
        raise StyleBoostError("the Aux set needs at least one style")
    for style in styles:
        check_style(style)
    check_size(size)
    check_seed(seed)
    target = prepare_folder(folder, n)
    paths = []
    for index in range(n):
        content = PEOPLE_CONTENTS[index % len(PEOPLE_CONTENTS)]
        style = styles[(index // len(PEOPLE_CONTENTS)) % len(styles)]
        image, noun = _render(content, style, size, example_rng(seed, index, AUX_STREAM))
        paths.append(write_example(target, f"{index:03d}_{content}_{style}", image, f"{noun} in {style} style"))
    return paths


def make_default_datasets(root: str | os.PathLike, size: int = DEFAULT_SIZE, seed: int = 0) -> tuple[Path, Path]:
    """The default StyleRef set (``neon``, root/styleref) and Aux set (other styles, root/aux).

    Idempotent: files that already hold the right bytes are not rewritten.
    """
    root = Path(root)
    styleref_dir, aux_dir = root / "styleref", root / "aux"
    make_styleref_set(styleref_dir, style=TARGET_STYLE, n=DEFAULT_COUNT, size=size, seed=seed)
    make_aux_set(aux_dir, styles=other_styles(TARGET_STYLE), n=DEFAULT_COUNT, size=size, seed=seed + 1)
    return styleref_dir, aux_dir


def contact_sheet(images: Sequence[Image.Image | str | os.PathLike], columns: int = 8, scale: int = 1) -> Image.Image:
    """Tile images (or image files) into one grid image, for a quick look at a set."""
    if not images:
        raise StyleBoostError("no images for the contact sheet")
    tiles = [image if isinstance(image, Image.Image) else Image.open(image).convert("RGB") for image in images]
    width, height = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * width, rows * height), (255, 255, 255))
    for index, tile in enumerate(tiles):
        sheet.paste(tile.resize((width, height)), ((index % columns) * width, (index // columns) * height))
    if scale != 1:
        sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.Resampling.NEAREST)
    return sheet
