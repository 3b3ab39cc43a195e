"""Procedural scenes as label maps, and the same scenes painted in natural colours; pure numpy + PIL.

One job: draw a content (a person, a portrait, a group of people, a house, a tree, mountains with a
sun) from a seed. A *drawer* paints a ``Canvas`` whose every pixel names the scene part it belongs to;
every part has a kind (skin, hair, cloth, roof...) and a natural colour. ``natural_image`` turns the
label map into a picture: natural colours, lit from the top left, darker near part boundaries, with
noise. The synthetic style set and the toy world draw their contents with these drawers.

Scenes are drawn at a few times the requested size and reduced, so edges stay smooth at any
resolution. Everything is derived from the random generator, so the same seed gives the same pixels.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from styleboost.core.errors import StyleBoostError

RGB = tuple[int, int, int]
Point = tuple[float, float]


class Kind(Enum):
    """What a scene part is (the sky, skin, a roof...): ``Scene.mask`` finds the pixels of some kinds."""

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


# --------------------------------------------------------------------------- pictures


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


def natural_image(scene: Scene, size: int, rng: np.random.Generator) -> Image.Image:
    """A drawn scene painted in its natural colours with light, shading and noise, reduced to ``size``."""
    pixels = scene.paint([p.colour for p in scene.parts]) / 255
    side = scene.labels.shape[0]
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    light = 1.1 - 0.25 * (0.6 * ys + 0.4 * xs)
    boundary = edge_mask(scene.labels, 2)
    nearness = np.exp(-ndimage.distance_transform_edt(~boundary) / (side * 0.04))
    texture = ndimage.gaussian_filter(rng.standard_normal((side, side)), side / 40)
    texture = texture / max(float(texture.std()), 1e-6) * 0.04 + rng.standard_normal((side, side)) * 0.02
    shade = (light - 0.18 * nearness + texture)[..., None]
    return reduce(to_image(np.clip(pixels * shade, 0, 1) * 255), size)
