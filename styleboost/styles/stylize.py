"""Procedural art styles from composable parts: turn any RGB image into one of ``STYLES``.

One job: re-draw a picture in a fixed, named style, reproducibly. A *part* is a pure function
``part(pixels, rng, **params) -> pixels`` on a float32 ``(H, W, 3)`` array in [0, 1] (palette
quantisation, ink outlines, cross-hatching, halftone screens, Kuwahara oil smoothing, paper
texture, tone curves...); every part takes the random generator, and the deterministic ones
ignore it. A ``StyleRecipe`` is data: a name, a one-line description and a tuple of
``(part name, params)`` steps. ``apply_style(image, style, seed)`` runs a recipe on a PIL image.

Lengths in pixels (line widths, dot spacing, block sizes: the params documented "px") are given
at a 128 px reference size and scale with the shorter side of the image, so a style looks the
same at 64 px and at 512 px.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage, special
from skimage.feature import canny

from styleboost.core.errors import StyleBoostError

REFERENCE_SIZE = 128
MIN_SIZE = 32
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

Colour = tuple[int, int, int]
Part = Callable[..., np.ndarray]
Pixels = np.ndarray
Rng = np.random.Generator

PALETTES: dict[str, tuple[Colour, ...]] = {
    "gameboy": ((15, 56, 15), (48, 98, 48), (139, 172, 15), (155, 188, 15)),
    "cga": ((0, 0, 0), (85, 255, 255), (255, 85, 255), (255, 255, 255)),
    "pico8": (
        (0, 0, 0), (29, 43, 83), (126, 37, 83), (0, 135, 81), (171, 82, 54), (95, 87, 79),
        (194, 195, 199), (255, 241, 232), (255, 0, 77), (255, 163, 0), (255, 236, 39), (0, 228, 54),
        (41, 173, 255), (131, 118, 156), (255, 119, 168), (255, 204, 170),
    ),
    "sepia": ((40, 26, 16), (94, 62, 38), (150, 108, 70), (204, 168, 122), (242, 226, 196)),
    "pastel": (
        (255, 209, 220), (255, 236, 179), (200, 230, 201), (179, 229, 252), (225, 190, 231), (250, 248, 240), (150, 140, 165),
    ),
    "earth": ((52, 40, 30), (110, 80, 50), (165, 120, 70), (200, 170, 115), (120, 130, 80), (232, 218, 185)),
    "neon": ((12, 6, 24), (255, 20, 147), (0, 240, 255), (57, 255, 20), (255, 240, 0), (190, 0, 255)),
    "risograph": ((255, 72, 176), (0, 120, 191), (245, 240, 230)),
    "ukiyoe": (
        (35, 52, 90), (60, 105, 140), (200, 68, 48), (214, 166, 88), (238, 226, 196), (40, 36, 38), (88, 116, 84), (150, 178, 186),
    ),
    "popart": (
        (255, 226, 0), (225, 30, 40), (20, 80, 200), (255, 255, 255), (15, 15, 20), (255, 196, 170), (0, 150, 80), (120, 190, 255),
    ),
    "bw": ((0, 0, 0), (255, 255, 255)),
}

CMYK_INKS: tuple[tuple[Colour, float], ...] = (  # ink colour, screen angle in degrees
    ((0, 174, 239), 15.0),
    ((236, 0, 140), 75.0),
    ((255, 241, 0), 0.0),
    ((35, 31, 32), 45.0),
)

BAYER_4 = (np.array([[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]], dtype=np.float32) + 0.5) / 16 - 0.5


# --------------------------------------------------------------------------- small helpers


def scaled(pixels: np.ndarray, length: float) -> float:
    """``length`` px at the 128 px reference size, in pixels of this image."""
    return length * min(pixels.shape[:2]) / REFERENCE_SIZE


def whole(pixels: np.ndarray, length: float, minimum: int = 1) -> int:
    return max(minimum, round(scaled(pixels, length)))


def rgb(colour: Sequence[float]) -> np.ndarray:
    return np.asarray(colour, dtype=np.float32) / 255


def luma(pixels: np.ndarray) -> np.ndarray:
    return pixels @ LUMA


def flat(colour: Colour, shape: tuple[int, ...]) -> np.ndarray:
    """An image of one colour."""
    return np.broadcast_to(rgb(colour), shape).copy()


def grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=-1)


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """``a`` where ``t`` is 0, ``b`` where it is 1; a 2-D ``t`` applies to every channel."""
    t = np.asarray(t, dtype=np.float32)
    return a + (b - a) * (t[..., None] if t.ndim == 2 else t)


def smooth(values: np.ndarray, sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian blur over the two image axes only (channels stay apart)."""
    sy, sx = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    if sy <= 0 and sx <= 0:
        return values
    return ndimage.gaussian_filter(values, (sy, sx) + (0,) * (values.ndim - 2), mode="reflect")


def noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float] = 0.0) -> np.ndarray:
    """Gaussian noise blurred by ``sigma`` pixels and rescaled to unit standard deviation."""
    field = smooth(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / max(float(field.std()), 1e-6)


def uniform(field: np.ndarray) -> np.ndarray:
    """A unit-normal field mapped to [0, 1] through the normal CDF."""
    return (0.5 * (1 + special.erf(field / math.sqrt(2)))).astype(np.float32)


def streaks(rng: np.random.Generator, shape: tuple[int, int], length: float, angle: float) -> np.ndarray:
    """Uniform [0, 1] noise smeared into strokes ``length`` px long at ``angle`` degrees."""
    side = int(math.ceil(math.hypot(*shape))) + 2
    field = noise(rng, (side, side), (0.6, max(length, 0.6)))
    turned = ndimage.rotate(field, angle, reshape=False, order=1, mode="reflect")
    top, left = (side - shape[0]) // 2, (side - shape[1]) // 2
    return uniform(turned[top:top + shape[0], left:left + shape[1]] / max(float(turned.std()), 1e-6))


def pixel_grid(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The (y, x) coordinates of pixel centres."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    return ys + 0.5, xs + 0.5


def ramp(values: np.ndarray, colours: Sequence[Colour]) -> np.ndarray:
    """Colours spread evenly along ``values`` in [0, 1], linearly interpolated."""
    stops = rgb(colours)
    position = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.minimum(position.astype(np.int64), len(stops) - 2)
    return mix(stops[low], stops[low + 1], position - low)


def stretch(values: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Rescale so the ``low`` and ``high`` percentiles become 0 and 1."""
    a, b = np.percentile(values, (low, high))
    return np.clip((values - a) / max(float(b - a), 0.05), 0, 1).astype(np.float32)


def gradients(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel derivatives (d/dy, d/dx) over the image axes, scaled so a unit step gives 1."""
    def derivative(axis: int) -> np.ndarray:
        along = ndimage.correlate1d(values, [-0.5, 0.0, 0.5], axis=axis, mode="reflect")
        return ndimage.correlate1d(along, [0.25, 0.5, 0.25], axis=1 - axis, mode="reflect")

    return derivative(0), derivative(1)


def edge_strength(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """The strongest colour-channel gradient magnitude at every pixel."""
    gy, gx = gradients(smooth(pixels, sigma))
    return np.sqrt(gy * gy + gx * gx).max(axis=-1)


def edge_mask(pixels: np.ndarray, method: str, sigma: float, threshold: float) -> np.ndarray:
    """Boolean edges: ``sobel`` (colour gradients over ``threshold``) or ``canny`` (thin luminance edges)."""
    if method == "canny":
        return canny(luma(pixels), sigma=max(sigma, 0.5), low_threshold=threshold / 2, high_threshold=threshold)
    return edge_strength(pixels, sigma) * min(pixels.shape[:2]) / REFERENCE_SIZE > threshold


def thicken(mask: np.ndarray, width: float) -> np.ndarray:
    """A line coverage in [0, 1]: ``mask`` grown to about ``width`` pixels, edges softened."""
    grown = ndimage.maximum_filter(mask.astype(np.float32), size=max(1, round(width)))
    return np.clip(smooth(grown, 0.5) * 1.5, 0, 1) * min(1.0, width)


def stripes(shape: tuple[int, ...], angle: float, spacing: float, offset: np.ndarray | float = 0.0) -> np.ndarray:
    """Distance in pixels from every pixel to the nearest of parallel lines at ``angle`` degrees."""
    ys, xs = pixel_grid(shape)
    a = math.radians(angle)
    u = (xs * math.sin(a) - ys * math.cos(a) + offset) / spacing
    return np.abs(u - np.round(u)) * spacing


def bayer(shape: tuple[int, ...], cell: int) -> np.ndarray:
    """The 4x4 ordered-dither thresholds in [-0.5, 0.5], each cell ``cell`` pixels wide."""
    tile = np.kron(BAYER_4, np.ones((cell, cell), dtype=np.float32))
    reps = (math.ceil(shape[0] / tile.shape[0]), math.ceil(shape[1] / tile.shape[1]))
    return np.tile(tile, reps)[:shape[0], :shape[1]]


def downsample(pixels: np.ndarray, block: int) -> np.ndarray:
    """Means of ``block`` x ``block`` cells (the last row/column of cells may be partial)."""
    h, w = pixels.shape[:2]
    rows, columns = math.ceil(h / block), math.ceil(w / block)
    padded = np.pad(pixels, ((0, rows * block - h), (0, columns * block - w), (0, 0)), mode="edge")
    return padded.reshape(rows, block, columns, block, 3).mean(axis=(1, 3))


def upsample(cells: np.ndarray, block: int, shape: tuple[int, ...]) -> np.ndarray:
    big = np.repeat(np.repeat(cells, block, axis=0), block, axis=1)
    return big[:shape[0], :shape[1]]


def quantise(pixels: np.ndarray, colours: Sequence[Colour], mode: str, dither: np.ndarray | float) -> np.ndarray:
    """Nearest palette colour in RGB (``rgb``) or in a chroma-weighted space (``chroma``: colours stay
    colourful), or the palette as a ramp by luminance (``luma``)."""
    stops = rgb(colours)
    if mode == "luma":
        order = stops[np.argsort(stops @ LUMA, kind="stable")]
        level = stretch(luma(pixels)) * (len(order) - 1) + dither
        return order[np.clip(np.round(level), 0, len(order) - 1).astype(np.int64)]
    shifted = pixels + (dither[..., None] if np.ndim(dither) == 2 else dither) * 0.5
    space = opponent if mode == "chroma" else np.asarray
    distance = ((space(shifted)[..., None, :] - space(stops)) ** 2).sum(axis=-1)
    return stops[distance.argmin(axis=-1)]


def opponent(colours: np.ndarray) -> np.ndarray:
    """Luminance, red-green and yellow-blue axes, chroma weighted up so colours stay colourful."""
    r, g, b = colours[..., 0], colours[..., 1], colours[..., 2]
    return np.stack([colours @ LUMA, 1.5 * (r - g), 1.5 * ((r + g) / 2 - b)], axis=-1)


def sample(values: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``values`` at the nearest pixel to each (y, x), clamped to the image."""
    rows = np.clip(ys.astype(np.int64), 0, values.shape[0] - 1)
    columns = np.clip(xs.astype(np.int64), 0, values.shape[1] - 1)
    return values[rows, columns]


def screen(darkness: np.ndarray, spacing: float, angle: float) -> np.ndarray:
    """Halftone coverage: a dot per cell of a grid turned by ``angle``, its area following ``darkness``."""
    ys, xs = pixel_grid(darkness.shape)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    u, v = xs * c + ys * s, -xs * s + ys * c
    cu, cv = (np.floor(u / spacing) + 0.5) * spacing, (np.floor(v / spacing) + 0.5) * spacing
    tone = sample(darkness, cu * s + cv * c, cu * c - cv * s)
    radius = spacing * np.interp(tone, DOT_AREAS, DOT_RADII).astype(np.float32)
    return np.clip(radius - np.hypot(u - cu, v - cv) + 0.5, 0, 1)


def dot_area(radius: np.ndarray) -> np.ndarray:
    """The area of a dot of ``radius`` (in cell sides) clipped to its unit cell."""
    over = np.clip(radius, 0.5, None)
    corners = 4 * (over ** 2 * np.arccos(0.5 / over) - 0.5 * np.sqrt(over ** 2 - 0.25))
    return np.pi * radius ** 2 - np.where(radius > 0.5, corners, 0.0)


DOT_RADII = np.linspace(0.0, math.sqrt(0.5), 257)
DOT_AREAS = dot_area(DOT_RADII)  # rises from 0 to 1: inverted with np.interp for the dot radius of a tone


def jittered_sites(rng: Rng, shape: tuple[int, ...], spacing: float, jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """One point per grid cell, moved at random by up to ``jitter`` cells: (ys, xs), each (rows, columns)."""
    rows, columns = math.ceil(shape[0] / spacing) + 1, math.ceil(shape[1] / spacing) + 1
    wobble = rng.uniform(-0.5, 0.5, (2, rows, columns)).astype(np.float32) * jitter
    ys = (np.arange(rows, dtype=np.float32)[:, None] + 0.5 + wobble[0]) * spacing
    xs = (np.arange(columns, dtype=np.float32)[None, :] + 0.5 + wobble[1]) * spacing
    return ys, xs


def neighbour_sites(shape: tuple[int, ...], spacing: float, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the flat index of and distance to the sites of the 3x3 cells around it, each (9, H, W)."""
    py, px = pixel_grid(shape)
    cy, cx = (py // spacing).astype(np.int64), (px // spacing).astype(np.int64)
    rows, columns = ys.shape
    indices, distances = [], []
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            r, c = np.clip(cy + dy, 0, rows - 1), np.clip(cx + dx, 0, columns - 1)
            indices.append(r * columns + c)
            distances.append(np.hypot(py - ys[r, c], px - xs[r, c]))
    return np.stack(indices), np.stack(distances)


# --------------------------------------------------------------------------- parts

PARTS: dict[str, Part] = {}


def part(function: Part) -> Part:
    """Register ``function`` as a style part under its own name."""
    PARTS[function.__name__] = function
    return function


@part
def palette(pixels: Pixels, rng: Rng, *, colours: str, mode: str = "rgb", dither: float = 0.0, cell: float = 1.0) -> Pixels:
    """Every pixel to a colour of the fixed palette ``colours``; ordered dithering of ``cell`` px."""
    return quantise(pixels, PALETTES[colours], mode, bayer(pixels.shape, whole(pixels, cell)) * dither)


@part
def posterize(pixels: Pixels, rng: Rng, *, levels: int = 4, shading: bool = False) -> Pixels:
    """Each channel rounded to ``levels`` values, or (``shading``) only the lightness, keeping hues: cel bands."""
    if not shading:
        return np.round(pixels * (levels - 1)) / (levels - 1)
    lightness = luma(pixels)
    banded = (np.floor(smooth(lightness, scaled(pixels, 1.2)) * levels) + 0.6) / levels
    return pixels * (banded / np.maximum(lightness, 1e-3))[..., None]


@part
def outline(pixels: Pixels, rng: Rng, *, width: float = 1.0, colour: Colour = (20, 18, 16), method: str = "sobel",
            sigma: float = 0.8, threshold: float = 0.12, background: Colour | None = None) -> Pixels:
    """Lines of ``width`` px along the edges; on a flat ``background`` colour when one is given."""
    lines = thicken(edge_mask(pixels, method, scaled(pixels, sigma), threshold), scaled(pixels, width))
    base = pixels if background is None else flat(background, pixels.shape)
    return mix(base, rgb(colour), lines)


def ink_outline(pixels: np.ndarray, width: float) -> np.ndarray:
    """Line coverage of the image's own edges, for parts that replace the image with lines."""
    if width <= 0:
        return np.zeros(pixels.shape[:2], dtype=np.float32)
    return thicken(edge_mask(pixels, "sobel", scaled(pixels, 0.8), 0.12), scaled(pixels, width))


@part
def hatch(pixels: Pixels, rng: Rng, *, angles: Sequence[float] = (45.0,), spacing: float = 4.0, width: float = 1.0,
          ink: Colour = (25, 22, 20), paper: Colour = (245, 236, 212), wash: float = 0.0,
          wobble: float = 0.0, outline_width: float = 0.0) -> Pixels:
    """Cross-hatching: one more set of ``spacing`` px lines for every darker luminance band."""
    lightness = stretch(luma(smooth(pixels, scaled(pixels, 0.8))))
    thresholds = np.linspace(0.72, 0.28, len(angles)) if len(angles) > 1 else [0.55]
    bend = noise(rng, pixels.shape[:2], scaled(pixels, 6)) * scaled(pixels, wobble) if wobble else 0.0
    cover = ink_outline(pixels, outline_width)
    for angle, threshold in zip(angles, thresholds):
        distance = stripes(pixels.shape, angle, scaled(pixels, spacing), bend)
        line = np.clip(scaled(pixels, width) / 2 - distance + 0.5, 0, 1)
        cover = np.maximum(cover, line * np.clip((threshold - lightness) / 0.06, 0, 1))
    base = rgb(paper) * (1 - wash * (1 - lightness))[..., None]
    return mix(base, rgb(ink), cover)


@part
def engrave(pixels: Pixels, rng: Rng, *, angle: float = 0.0, spacing: float = 4.0, ink: Colour = (20, 16, 12),
            paper: Colour = (240, 232, 215), wave: float = 0.0, gain: float = 1.0, outline_width: float = 0.0) -> Pixels:
    """Engraving: parallel lines that swell with darkness and bend ``wave`` px with the lightness."""
    lightness = stretch(luma(smooth(pixels, scaled(pixels, 0.7))))
    gap = scaled(pixels, spacing)
    distance = stripes(pixels.shape, angle, gap, lightness * scaled(pixels, wave) * 2)
    half = np.clip((1 - lightness) * gain, 0, 1) * gap / 2
    cover = np.maximum(np.clip(half - distance + 0.5, 0, 1) * (half > 0.15), ink_outline(pixels, outline_width))
    return mix(flat(paper, pixels.shape), rgb(ink), cover)


@part
def pointillism(pixels: Pixels, rng: Rng, *, spacing: float = 3.5, radius: float = 2.0, jitter: float = 0.8,
                paper: Colour = (242, 236, 220), colour_jitter: float = 0.08) -> Pixels:
    """Round dots of colour sampled from the image on a jittered grid, on ``paper``."""
    gap = scaled(pixels, spacing)
    ys, xs = jittered_sites(rng, pixels.shape, gap, jitter)
    colours = sample(smooth(pixels, gap / 3), ys, xs) + rng.normal(0, colour_jitter, ys.shape + (3,))
    sizes = scaled(pixels, radius) * rng.uniform(0.75, 1.2, ys.shape)
    depth = rng.random(ys.size)
    index, distance = neighbour_sites(pixels.shape, gap, ys, xs)
    cover = np.clip(sizes.reshape(-1)[index] - distance + 0.5, 0, 1)
    top = np.argmax(np.where(cover > 0, depth[index] + 1, 0), axis=0)[None]
    chosen = np.take_along_axis(index, top, 0)[0]
    return mix(flat(paper, pixels.shape), colours.reshape(-1, 3)[chosen], np.take_along_axis(cover, top, 0)[0])


@part
def halftone(pixels: Pixels, rng: Rng, *, spacing: float = 4.0, angle: float = 45.0, mode: str = "mono",
             ink: Colour = (20, 20, 20), paper: Colour = (255, 255, 255)) -> Pixels:
    """Dot screens: one ``ink`` screen (``mono``) or angled cyan, magenta, yellow and black ones (``cmyk``)."""
    gap = scaled(pixels, spacing)
    soft = smooth(pixels, gap / 2.5)
    if mode == "mono":
        return mix(flat(paper, pixels.shape), rgb(ink), screen(1 - luma(soft), gap, angle))
    cmy = 1 - soft
    black = cmy.min(axis=-1) * 0.7
    densities = [*((cmy[..., k] - black) / (1 - black + 1e-6) for k in range(3)), black]
    result = flat(paper, pixels.shape)
    for (colour, ink_angle), density in zip(CMYK_INKS, densities):
        result *= 1 - screen(density, gap, ink_angle + angle - 45)[..., None] * (1 - rgb(colour))
    return result


@part
def benday(pixels: Pixels, rng: Rng, *, spacing: float = 4.0, low: float = 0.45, high: float = 0.97, dot: float = 0.45) -> Pixels:
    """Ben-Day dots: mid-light flat areas become even dots of a stronger colour on white."""
    lightness = luma(pixels)
    band = (lightness > low) & (lightness < high) & (pixels.max(axis=-1) - pixels.min(axis=-1) > 0.08)
    strong = np.clip((pixels - lightness[..., None]) * 1.6 + lightness[..., None] - 0.15, 0, 1)
    dots = screen(np.full(lightness.shape, dot, dtype=np.float32), scaled(pixels, spacing), 45.0)
    return np.where(band[..., None], mix(np.ones_like(pixels), strong, dots), pixels)


@part
def riso(pixels: Pixels, rng: Rng, *, inks: Sequence[Colour] = ((255, 72, 176), (0, 120, 191)),
         paper: Colour = (246, 241, 232), offset: float = 2.0, grain: float = 0.6) -> Pixels:
    """Two-ink risograph: grainy ink layers (first absorbs green, second red), the second misregistered."""
    soft = smooth(pixels, scaled(pixels, 0.6))
    densities = (1 - soft[..., 1]) * 0.95, (1 - soft[..., 0]) * 0.9
    result = flat(paper, pixels.shape)
    for k, (colour, density) in enumerate(zip(inks, densities)):
        speckle = noise(rng, pixels.shape[:2], scaled(pixels, 0.9))
        cover = np.clip((density - 0.18) * 1.6 + grain * 0.2 * speckle, 0, 1)
        shift = scaled(pixels, offset) * k
        cover = ndimage.shift(cover, (shift * 0.6, shift), order=1, mode="nearest")
        result *= 1 - cover[..., None] * (1 - rgb(colour))
    return result


@part
def watercolor(pixels: Pixels, rng: Rng, *, blur: float = 2.0, bleed: float = 2.5, edge: float = 0.5,
               granulation: float = 0.15, paper_white: float = 0.12) -> Pixels:
    """Watercolour washes: blurred, bleeding colour, darker pooled edges, pigment granulation, paper light."""
    h, w = pixels.shape[:2]
    ys, xs = pixel_grid(pixels.shape)
    reach = scaled(pixels, bleed)
    wy, wx = (noise(rng, (h, w), scaled(pixels, 5)) * reach for _ in range(2))
    warped = np.stack([ndimage.map_coordinates(pixels[..., c], [ys - 0.5 + wy, xs - 0.5 + wx], order=1, mode="reflect")
                       for c in range(3)], axis=-1)
    wash = smooth(warped, scaled(pixels, blur))
    pooled = np.abs(wash - smooth(wash, scaled(pixels, blur * 2))).sum(axis=-1)
    pooled = np.clip(pooled / max(float(np.percentile(pooled, 95)), 1e-3), 0, 1)
    density = (1 - wash) * (1 + edge * pooled[..., None])
    fine = noise(rng, (h, w), scaled(pixels, 0.8)) * 0.5 + noise(rng, (h, w), scaled(pixels, 3))
    density = density * (1 + granulation * fine[..., None]) * (1 - paper_white)
    return 1 - density


@part
def pixelate(pixels: Pixels, rng: Rng, *, block: float = 6.0, colours: str | None = None, mode: str = "rgb",
             dither: float = 0.0) -> Pixels:
    """Big square pixels of ``block`` px, optionally quantised (and dithered) to a palette."""
    size = whole(pixels, block)
    cells = downsample(pixels, size)
    if colours is not None:
        cells = quantise(cells, PALETTES[colours], mode, bayer(cells.shape, 1) * dither)
    return upsample(cells, size, pixels.shape)


@part
def kuwahara(pixels: Pixels, rng: Rng, *, radius: float = 3.0) -> Pixels:
    """Oil-paint smoothing: each pixel takes the mean of its least varied quadrant (``radius`` px)."""
    half = max(1, round(scaled(pixels, radius) / 2))
    r, size = 2 * half, 2 * half + 1
    h, w = pixels.shape[:2]
    padded = np.pad(pixels, ((r, r), (r, r), (0, 0)), mode="reflect")
    lightness = luma(padded)
    means = ndimage.uniform_filter(padded, size=(size, size, 1), mode="reflect")
    mean_of_squares = ndimage.uniform_filter(lightness * lightness, size=size, mode="reflect")
    spread = mean_of_squares - ndimage.uniform_filter(lightness, size=size, mode="reflect") ** 2
    corners = [(oy, ox) for oy in (half, 3 * half) for ox in (half, 3 * half)]
    variances = np.stack([spread[oy:oy + h, ox:ox + w] for oy, ox in corners])
    colours = np.stack([means[oy:oy + h, ox:ox + w] for oy, ox in corners])
    best = variances.argmin(axis=0)[None, ..., None]
    return np.take_along_axis(colours, best, 0)[0]


@part
def paper(pixels: Pixels, rng: Rng, *, strength: float = 0.06, fibre: float = 3.0, grain: float = 0.02,
          tint: Colour | None = None) -> Pixels:
    """Multiplicative paper texture: long soft fibres across both axes plus fine grain, optional tint."""
    h, w = pixels.shape[:2]
    long, thin = scaled(pixels, fibre), scaled(pixels, 0.4)
    fibres = noise(rng, (h, w), (thin, long)) + 0.6 * noise(rng, (h, w), (long, thin))
    texture = 1 + strength * fibres / 1.6 + grain * rng.standard_normal((h, w)).astype(np.float32)
    result = pixels * texture[..., None]
    return result if tint is None else result * rgb(tint)


@part
def canvas(pixels: Pixels, rng: Rng, *, spacing: float = 2.5, strength: float = 0.07) -> Pixels:
    """A woven canvas: a multiplicative over-under thread pattern with a little irregularity."""
    ys, xs = pixel_grid(pixels.shape)
    k = 2 * math.pi / scaled(pixels, spacing)
    weave = np.sin(xs * k) * np.sin(ys * k) + 0.3 * noise(rng, pixels.shape[:2], scaled(pixels, 0.5))
    return pixels * (1 + strength * weave)[..., None]


@part
def tone(pixels: Pixels, rng: Rng, *, contrast: float = 1.0, brightness: float = 0.0, gamma: float = 1.0) -> Pixels:
    """Gamma, then contrast about mid-grey, then a brightness offset."""
    return (np.clip(pixels, 0, 1) ** gamma - 0.5) * contrast + 0.5 + brightness


@part
def saturation(pixels: Pixels, rng: Rng, *, amount: float = 1.0) -> Pixels:
    """Colour saturation: 0 gives grey, 1 keeps, above 1 intensifies."""
    lightness = luma(pixels)[..., None]
    return lightness + (pixels - lightness) * amount


@part
def gradient_map(pixels: Pixels, rng: Rng, *, colours: Sequence[Colour], steps: int = 0, amount: float = 1.0) -> Pixels:
    """Luminance (stretched) through a colour ramp: duotone, false colour, tinted monochrome."""
    values = stretch(luma(pixels))
    if steps:
        values = np.minimum(np.floor(values * steps), steps - 1) / max(steps - 1, 1)
    return mix(pixels, ramp(values, colours), amount)


@part
def split_tone(pixels: Pixels, rng: Rng, *, shadows: Colour = (0, 90, 110), highlights: Colour = (255, 190, 90),
               amount: float = 0.25) -> Pixels:
    """Colour grading: push shadows towards one colour and highlights towards another."""
    t = luma(pixels)[..., None]
    return pixels + amount * ((1 - t) * (rgb(shadows) - 0.5) + t * (rgb(highlights) - 0.5))


@part
def vignette(pixels: Pixels, rng: Rng, *, strength: float = 0.5, start: float = 0.45, colour: Colour = (0, 0, 0)) -> Pixels:
    """Corners fading towards ``colour`` beyond ``start`` of the centre-to-corner distance."""
    ys, xs = pixel_grid(pixels.shape)
    h, w = pixels.shape[:2]
    distance = np.hypot((ys / h - 0.5) * 2, (xs / w - 0.5) * 2) / math.sqrt(2)
    return mix(pixels, rgb(colour), strength * np.clip((distance - start) / (1 - start), 0, 1) ** 1.5)


@part
def chromatic_shift(pixels: Pixels, rng: Rng, *, shift: float = 1.5) -> Pixels:
    """Red moved right and blue moved left by ``shift`` px (lens fringes)."""
    offset = scaled(pixels, shift)
    result = pixels.copy()
    for channel, sign in ((0, 1), (2, -1)):
        result[..., channel] = ndimage.shift(pixels[..., channel], (0, sign * offset), order=1, mode="nearest")
    return result


@part
def grain(pixels: Pixels, rng: Rng, *, amount: float = 0.05, size: float = 0.6, colour: bool = False) -> Pixels:
    """Film grain: blurred gaussian noise, the same in all channels unless ``colour``."""
    shape = pixels.shape[:2] + ((3,) if colour else ())
    field = smooth(rng.standard_normal(shape).astype(np.float32), scaled(pixels, size))
    field = field / max(float(field.std()), 1e-6) * amount
    return pixels + (field if colour else field[..., None])


@part
def blur(pixels: Pixels, rng: Rng, *, sigma: float = 1.0) -> Pixels:
    """Gaussian blur of ``sigma`` px."""
    return smooth(pixels, scaled(pixels, sigma))


@part
def sharpen(pixels: Pixels, rng: Rng, *, amount: float = 1.0, sigma: float = 1.0) -> Pixels:
    """Unsharp mask."""
    return pixels + amount * (pixels - smooth(pixels, scaled(pixels, sigma)))


@part
def emboss(pixels: Pixels, rng: Rng, *, strength: float = 2.0, angle: float = 135.0, amount: float = 1.0,
           shade: bool = False) -> Pixels:
    """Relief lit from ``angle`` degrees: grey relief (``amount`` of it) or shading of the colours (``shade``)."""
    gy, gx = gradients(luma(smooth(pixels, scaled(pixels, 0.6))))
    a = math.radians(angle)
    light = (math.cos(a) * gx + math.sin(a) * gy) * strength * 4 * min(pixels.shape[:2]) / REFERENCE_SIZE
    if shade:
        return pixels * (1 + amount * light)[..., None]
    return mix(pixels, grey(0.5 + light), amount)


@part
def glow(pixels: Pixels, rng: Rng, *, sigma: float = 3.0, strength: float = 0.8) -> Pixels:
    """Bloom: a blurred copy added with a screen blend."""
    halo = np.clip(smooth(pixels, scaled(pixels, sigma)) * strength, 0, 1)
    return 1 - (1 - pixels) * (1 - halo)


@part
def neon_edges(pixels: Pixels, rng: Rng, *, gain: float = 4.0, sigma: float = 0.8, floor: float = 0.04) -> Pixels:
    """Edges as glowing lines on black, their hue following the edge direction."""
    soft = smooth(pixels, scaled(pixels, sigma))
    gy, gx = gradients(luma(soft))
    strength = np.clip((edge_strength(soft, 0) - floor) * gain * min(pixels.shape[:2]) / REFERENCE_SIZE, 0, 1)
    hue = (np.arctan2(gy, gx) / math.pi + 1) / 2 * 6
    colours = np.stack([np.clip(np.abs(hue - 3) - 1, 0, 1), np.clip(2 - np.abs(hue - 2), 0, 1),
                        np.clip(2 - np.abs(hue - 4), 0, 1)], axis=-1)
    return colours * strength[..., None]


@part
def cells(pixels: Pixels, rng: Rng, *, spacing: float = 8.0, jitter: float = 0.9, border: float = 1.5,
          border_colour: Colour = (25, 22, 20), shading: float = 0.0) -> Pixels:
    """Voronoi cells of flat mean colour (``spacing`` px) separated by ``border`` px joints."""
    gap = scaled(pixels, spacing)
    ys, xs = jittered_sites(rng, pixels.shape, gap, jitter)
    index, distance = neighbour_sites(pixels.shape, gap, ys, xs)
    label = np.take_along_axis(index, distance.argmin(axis=0)[None], 0)[0]
    counts = np.maximum(np.bincount(label.ravel(), minlength=ys.size), 1)
    means = np.stack([np.bincount(label.ravel(), pixels[..., c].ravel(), ys.size) / counts for c in range(3)], axis=-1)
    flat = means[label].astype(np.float32)
    if shading:
        flat = flat * (1 + shading * (rng.random(ys.size)[label] - 0.5))[..., None]
    joints = np.zeros(label.shape, dtype=bool)
    joints[:, 1:] |= label[:, 1:] != label[:, :-1]
    joints[1:, :] |= label[1:, :] != label[:-1, :]
    return mix(flat, rgb(border_colour), thicken(joints, scaled(pixels, border)))


@part
def pencil(pixels: Pixels, rng: Rng, *, sigma: float = 3.0, darkness: float = 2.0, shading: float = 0.5,
           angle: float = 40.0) -> Pixels:
    """Graphite sketch: a colour-dodge line drawing plus stroke shading in the dark areas."""
    lightness = luma(pixels)
    sketch = np.clip(lightness / np.maximum(smooth(lightness, scaled(pixels, sigma)), 1e-3), 0, 1) ** darkness
    strokes = streaks(rng, lightness.shape, scaled(pixels, 5), angle)
    shade = shading * np.clip(0.75 - stretch(lightness), 0, 1) * (strokes > 0.45)
    return grey(sketch * (1 - shade))


@part
def dry_media(pixels: Pixels, rng: Rng, *, paper: Colour = (250, 248, 242), pressure: float = 0.7, stroke: float = 5.0,
              angle: float = 45.0, gain: float = 2.0) -> Pixels:
    """Chalk, crayon or charcoal: colour laid in strokes; the paper shows through where the tooth stays bare.

    The stronger a colour stands out from ``paper``, the more of the tooth it covers, up to ``pressure``.
    """
    ground = rgb(paper)
    strength = np.clip(np.abs(pixels - ground).max(axis=-1) * gain, 0, 1)
    tooth = uniform(noise(rng, pixels.shape[:2], scaled(pixels, 0.5)))
    texture = 0.6 * streaks(rng, pixels.shape[:2], scaled(pixels, stroke), angle) + 0.4 * tooth
    cover = np.clip((strength * pressure - texture) / 0.12 + 0.5, 0, 1)
    return mix(flat(paper, pixels.shape), pixels, cover)


@part
def glitch(pixels: Pixels, rng: Rng, *, bands: int = 9, shift: float = 12.0, split: float = 3.0) -> Pixels:
    """Digital glitch: colour channels pulled apart and horizontal bands displaced sideways."""
    h = pixels.shape[0]
    result = np.stack([np.roll(pixels[..., c], round(scaled(pixels, split)) * (c - 1), axis=1) for c in range(3)], axis=-1)
    for _ in range(bands):
        top = int(rng.integers(0, h))
        height = int(rng.integers(1, max(2, h // 8)))
        result[top:top + height] = np.roll(result[top:top + height], int(rng.normal(0, scaled(pixels, shift))), axis=1)
    return result


@part
def scanlines(pixels: Pixels, rng: Rng, *, period: float = 3.0, strength: float = 0.35) -> Pixels:
    """Dark horizontal lines every ``period`` px."""
    step = whole(pixels, period, minimum=2)
    rows = (np.arange(pixels.shape[0]) % step) < max(1, step // 3)
    return pixels * (1 - strength * rows)[:, None, None]


@part
def subpixels(pixels: Pixels, rng: Rng, *, period: float = 3.0, strength: float = 0.5) -> Pixels:
    """A screen's vertical red, green and blue phosphor stripes."""
    step = whole(pixels, period, minimum=3)
    stripe = (np.arange(pixels.shape[1]) * 3 // step) % 3
    mask = np.full((pixels.shape[1], 3), 1 - strength, dtype=np.float32)
    mask[np.arange(pixels.shape[1]), stripe] = 1.0
    return pixels * mask[None] * (1 + strength * 0.8)


@part
def grid(pixels: Pixels, rng: Rng, *, spacing: float = 16.0, width: float = 0.6, colour: Colour = (255, 255, 255),
         alpha: float = 0.3) -> Pixels:
    """Ruled grid lines every ``spacing`` px."""
    gap = scaled(pixels, spacing)
    lines = np.minimum(stripes(pixels.shape, 0, gap), stripes(pixels.shape, 90, gap))
    return mix(pixels, rgb(colour), alpha * np.clip(scaled(pixels, width) / 2 - lines + 0.5, 0, 1))


@part
def warhol(pixels: Pixels, rng: Rng, *, colour_sets: Sequence[Sequence[Colour]], steps: int = 3) -> Pixels:
    """A 2x2 grid of half-size copies, each posterised through its own colour set."""
    h, w = pixels.shape[:2]
    small = downsample(pixels, 2)
    tiles = [gradient_map(small, rng, colours=colours, steps=steps) for colours in colour_sets[:4]]
    return np.concatenate([np.concatenate(tiles[:2], axis=1), np.concatenate(tiles[2:4], axis=1)], axis=0)[:h, :w]


# Operations no named recipe uses: they make the style families that style randomisation can keep out of
# training entirely (``styles.randomised``), so an encoder is judged on marks it has never seen.


@part
def solarize(pixels: Pixels, rng: Rng, *, threshold: float = 0.5, amount: float = 1.0) -> Pixels:
    """Sabattier effect: values above ``threshold`` turned back down (``amount`` of the inverted curve)."""
    flipped = np.where(pixels > threshold, threshold - (pixels - threshold) * threshold / max(1 - threshold, 1e-3),
                       pixels)
    return mix(pixels, flipped, amount)


@part
def hue_rotate(pixels: Pixels, rng: Rng, *, degrees: float = 120.0) -> Pixels:
    """Every hue turned ``degrees`` around the grey axis, lightness kept (a rotation in RGB about (1, 1, 1))."""
    angle = math.radians(degrees)
    axis = np.full(3, 1 / math.sqrt(3), dtype=np.float32)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=np.float32)
    rotation = math.cos(angle) * np.eye(3, dtype=np.float32) + math.sin(angle) * cross \
        + (1 - math.cos(angle)) * np.outer(axis, axis)
    return pixels @ rotation.T


@part
def ripple(pixels: Pixels, rng: Rng, *, amplitude: float = 2.0, wavelength: float = 16.0, angle: float = 0.0,
           swirl: float = 0.0) -> Pixels:
    """The picture displaced along sine waves (``amplitude`` px every ``wavelength`` px, travelling at ``angle``
    degrees) and twisted ``swirl`` radians at the centre, fading to none at the corners: glass, water, heat haze."""
    h, w = pixels.shape[:2]
    ys, xs = pixel_grid(pixels.shape)
    theta = math.radians(angle)
    phase = (xs * math.cos(theta) + ys * math.sin(theta)) * 2 * math.pi / max(scaled(pixels, wavelength), 1.0)
    shift = scaled(pixels, amplitude) * np.sin(phase)
    dy, dx = ys - h / 2, xs - w / 2
    radius = np.hypot(dy, dx) / math.hypot(h / 2, w / 2)
    turn = swirl * np.clip(1 - radius, 0, 1) ** 2
    src_y = h / 2 + dy * np.cos(turn) - dx * np.sin(turn) + shift * math.cos(theta)
    src_x = w / 2 + dy * np.sin(turn) + dx * np.cos(turn) - shift * math.sin(theta)
    return np.stack([sample(pixels[..., c], src_y, src_x) for c in range(3)], axis=-1)


# The parts that draw from the generator (``hatch`` only when it wobbles); the others ignore it.
RANDOM_PARTS = frozenset({"hatch", "pointillism", "riso", "watercolor", "paper", "canvas", "grain", "cells",
                          "pencil", "dry_media", "glitch"})


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class StyleRecipe:
    """A named style: a one-line description and the parts it runs, in order, with their params."""

    name: str
    description: str
    steps: tuple[tuple[str, dict[str, Any]], ...]


def recipe(name: str, description: str, *steps: tuple[str, dict[str, Any]]) -> StyleRecipe:
    return StyleRecipe(name, description, tuple(steps))


CREAM: Colour = (245, 236, 212)

_RECIPES: tuple[StyleRecipe, ...] = (
    recipe("ink-hatch", "black ink outlines and cross-hatching on cream paper",
           ("hatch", dict(angles=(45, -45, 0), spacing=4, width=1.1, paper=CREAM, wash=0.15, outline_width=1.3)),
           ("paper", dict(strength=0.04))),
    recipe("sepia-etching", "fine brown engraved lines that swell in the shadows, on yellowed paper",
           ("tone", dict(contrast=1.2)),
           ("engrave", dict(angle=30, spacing=2.6, ink=(92, 56, 30), paper=(236, 220, 184), wave=0.8)),
           ("paper", dict(strength=0.07)), ("vignette", dict(strength=0.35, colour=(140, 105, 60)))),
    recipe("woodcut", "bold black carved wavy lines and solid shadows on off-white paper",
           ("tone", dict(contrast=1.5)),
           ("engrave", dict(angle=0, spacing=6, ink=(14, 12, 10), paper=(240, 234, 220), wave=3, gain=1.3, outline_width=1.6))),
    recipe("pencil", "soft grey pencil sketch with diagonal shading strokes on white paper",
           ("pencil", dict(sigma=3, darkness=2.5, shading=0.45)), ("paper", dict(strength=0.03, grain=0.015))),
    recipe("charcoal", "smudged black charcoal strokes on grey paper",
           ("saturation", dict(amount=0)), ("tone", dict(contrast=1.8, brightness=-0.15)), ("blur", dict(sigma=1.2)),
           ("dry_media", dict(paper=(200, 196, 186), pressure=0.95, stroke=6, angle=80, gain=1.6)),
           ("paper", dict(strength=0.05))),
    recipe("watercolor", "soft colour washes with darker pooled edges and granulation on white paper",
           ("saturation", dict(amount=1.2)), ("tone", dict(gamma=0.8)),
           ("watercolor", dict(blur=1.8, bleed=2.5, edge=0.6, granulation=0.1, paper_white=0.12))),
    recipe("ink-wash", "grey sumi ink washes with dark brush edges on warm rice paper",
           ("saturation", dict(amount=0)), ("tone", dict(gamma=0.6, contrast=1.2)), ("posterize", dict(levels=3)),
           ("watercolor", dict(blur=1.2, bleed=3, edge=1.0, granulation=0.12, paper_white=0.05)),
           ("paper", dict(strength=0.06, fibre=2, tint=(240, 230, 205)))),
    recipe("oil-kuwahara", "thick painterly oil patches in rich colour with canvas weave",
           ("grain", dict(amount=0.06, size=1.5)), ("kuwahara", dict(radius=5)),
           ("saturation", dict(amount=1.35)), ("tone", dict(contrast=1.1)),
           ("emboss", dict(strength=1.5, shade=True, amount=0.35)), ("canvas", dict(spacing=2.5, strength=0.07))),
    recipe("pointillism", "small dots of pure colour side by side on cream paper",
           ("saturation", dict(amount=1.5)), ("pointillism", dict(spacing=3.5, radius=1.9, paper=(242, 236, 220)))),
    recipe("cmyk-halftone", "overlapping cyan, magenta, yellow and black dot screens on white paper",
           ("halftone", dict(mode="cmyk", spacing=4.5))),
    recipe("newsprint", "coarse black halftone dots on grey-yellow newsprint",
           ("tone", dict(brightness=0.06)),
           ("halftone", dict(mode="mono", spacing=5.5, angle=45, ink=(30, 30, 32), paper=(222, 215, 192))),
           ("paper", dict(strength=0.05, grain=0.03))),
    recipe("risograph", "grainy, slightly misregistered pink and blue two-ink print",
           ("riso", dict(offset=2.0, grain=0.7)), ("paper", dict(strength=0.03))),
    recipe("pop-art", "flat primary colours, thick black outlines and Ben-Day dots",
           ("saturation", dict(amount=1.6)), ("kuwahara", dict(radius=2)), ("palette", dict(colours="popart", mode="chroma")),
           ("outline", dict(width=2.2, colour=(10, 10, 15), threshold=0.2)), ("benday", dict(spacing=4.5))),
    recipe("warhol", "a 2x2 grid of flat posterised copies in clashing colours",
           ("warhol", dict(steps=3, colour_sets=(
               ((30, 20, 90), (255, 40, 140), (255, 230, 40)),
               ((0, 90, 70), (255, 120, 0), (160, 240, 255)),
               ((120, 0, 30), (40, 200, 90), (255, 210, 230)),
               ((20, 20, 20), (0, 160, 255), (255, 255, 120)))))),
    recipe("gameboy", "chunky pixels in four shades of green",
           ("pixelate", dict(block=4, colours="gameboy", mode="luma", dither=0.35))),
    recipe("cga", "blocky dithered pixels in cyan, magenta, black and white",
           ("pixelate", dict(block=3, colours="cga", dither=0.6))),
    recipe("pixel-art", "big bright pixels in the 16-colour PICO-8 palette",
           ("saturation", dict(amount=1.4)), ("pixelate", dict(block=6, colours="pico8", mode="chroma"))),
    recipe("1-bit", "black and white ordered dithering like an old Mac screen",
           ("palette", dict(colours="bw", mode="luma", dither=0.9, cell=1))),
    recipe("blueprint", "white technical line drawing and a ruled grid on deep blue paper",
           ("outline", dict(method="canny", sigma=1.2, threshold=0.15, width=1.0, colour=(235, 242, 255),
                            background=(22, 62, 140))),
           ("grid", dict(spacing=16, width=0.7, alpha=0.28)), ("paper", dict(strength=0.05))),
    recipe("cyanotype", "Prussian-blue photographic print with white highlights on textured paper",
           ("tone", dict(contrast=1.15)),
           ("gradient_map", dict(colours=((10, 30, 72), (28, 78, 140), (120, 160, 200), (238, 240, 240)))),
           ("paper", dict(strength=0.1, fibre=4))),
    recipe("neon-edges", "glowing rainbow edges on a black background",
           ("neon_edges", dict(gain=5, sigma=0.8)), ("glow", dict(sigma=2.5, strength=1.2))),
    recipe("stained-glass", "jewel-coloured glass cells with thick dark lead lines",
           ("saturation", dict(amount=1.8)), ("tone", dict(contrast=1.25)),
           ("cells", dict(spacing=10, jitter=0.95, border=2.2, border_colour=(28, 24, 22), shading=0.25)),
           ("grain", dict(amount=0.03, size=1.5, colour=True))),
    recipe("mosaic", "small square stone tiles separated by pale grout",
           ("cells", dict(spacing=6, jitter=0.35, border=0.9, border_colour=(205, 200, 190), shading=0.2)),
           ("grain", dict(amount=0.03, size=0.5))),
    recipe("cel-shade", "flat anime-like cel shading in vivid colour with thin dark outlines",
           ("kuwahara", dict(radius=2)), ("saturation", dict(amount=1.45)), ("posterize", dict(levels=3, shading=True)),
           ("outline", dict(width=1.0, colour=(45, 30, 50), threshold=0.25))),
    recipe("ukiyo-e", "flat indigo, vermilion and ochre woodblock colours with outlines on beige paper",
           ("kuwahara", dict(radius=2)), ("palette", dict(colours="ukiyoe", mode="chroma")),
           ("outline", dict(width=1.2, colour=(35, 40, 60), threshold=0.2)),
           ("paper", dict(strength=0.05, fibre=4, tint=(250, 240, 220)))),
    recipe("thermal", "heat-camera false colour from black through purple and orange to white",
           ("blur", dict(sigma=1.0)),
           ("gradient_map", dict(colours=((0, 0, 0), (40, 0, 120), (190, 0, 120), (255, 110, 0), (255, 230, 60),
                                          (255, 255, 255))))),
    recipe("night-vision", "grainy green phosphor monochrome with scanlines and dark corners",
           ("gradient_map", dict(colours=((0, 12, 0), (30, 170, 50), (190, 255, 190)))),
           ("grain", dict(amount=0.1, size=0.7)), ("scanlines", dict(period=3, strength=0.3)),
           ("vignette", dict(strength=0.9, start=0.35))),
    recipe("vintage-photo", "faded brown sepia photograph with soft focus, grain and dark corners",
           ("blur", dict(sigma=0.8)), ("gradient_map", dict(colours=PALETTES["sepia"], amount=0.9)),
           ("tone", dict(contrast=0.8, brightness=0.04)), ("grain", dict(amount=0.05)),
           ("vignette", dict(strength=0.6, colour=(40, 26, 16)))),
    recipe("glitch", "colour channels pulled apart and horizontal bands torn sideways",
           ("saturation", dict(amount=1.3)), ("glitch", dict(bands=9, shift=14, split=3)),
           ("scanlines", dict(period=2, strength=0.15))),
    recipe("pastel-chalk", "soft pale chalk strokes on dark charcoal-grey paper",
           ("saturation", dict(amount=0.8)), ("tone", dict(gamma=0.55, brightness=0.08)),
           ("dry_media", dict(paper=(48, 48, 56), pressure=0.75, stroke=5, angle=60, gain=1.4)),
           ("paper", dict(strength=0.05))),
    recipe("crayon", "waxy saturated crayon strokes with white paper showing through",
           ("saturation", dict(amount=1.6)), ("tone", dict(contrast=1.1)),
           ("dry_media", dict(paper=(252, 252, 250), pressure=0.8, stroke=3, angle=-30, gain=1.5)),
           ("outline", dict(width=0.8, colour=(60, 50, 50), threshold=0.3))),
    recipe("relief", "grey embossed metal relief",
           ("emboss", dict(strength=3, angle=135)),
           ("gradient_map", dict(colours=((50, 50, 58), (150, 150, 158), (225, 225, 230)))),
           ("sharpen", dict(amount=0.5))),
    recipe("vaporwave", "pink, purple and cyan gradient with scanlines and colour fringes",
           ("gradient_map", dict(colours=((45, 0, 90), (255, 60, 170), (80, 235, 255)))),
           ("chromatic_shift", dict(shift=2)), ("scanlines", dict(period=4, strength=0.2))),
    recipe("duotone", "two-ink posterised duotone in navy and orange",
           ("tone", dict(contrast=1.3)),
           ("gradient_map", dict(colours=((20, 30, 90), (250, 130, 50), (255, 240, 215)), steps=5))),
    recipe("lomo", "oversaturated cross-processed colours with a heavy dark vignette",
           ("saturation", dict(amount=1.7)), ("split_tone", dict(shadows=(0, 120, 140), highlights=(255, 220, 80), amount=0.35)),
           ("tone", dict(contrast=1.35)), ("vignette", dict(strength=0.85, start=0.3))),
    recipe("crt", "glowing CRT screen with red-green-blue phosphor stripes and scanlines",
           ("pixelate", dict(block=3)), ("subpixels", dict(period=3, strength=0.6)),
           ("scanlines", dict(period=3, strength=0.45)), ("glow", dict(sigma=2, strength=0.5)),
           ("vignette", dict(strength=0.5, start=0.5))),
)

STYLES: dict[str, StyleRecipe] = {r.name: r for r in _RECIPES}


# --------------------------------------------------------------------------- applying a style


def check_style(style: str) -> StyleRecipe:
    """The recipe of ``style``; an unknown name is a one-line error listing the choices."""
    if style not in STYLES:
        raise StyleBoostError(f"unknown style {style!r}; choose from {', '.join(STYLES)}")
    return STYLES[style]


def style_rng(style: str, seed: int) -> np.random.Generator:
    """The generator of one styled image: from the seed and the style name (stable across runs)."""
    if seed < 0:
        raise StyleBoostError(f"style seed must be 0 or more, got {seed}")
    return np.random.default_rng([seed, zlib.crc32(style.encode())])


def render(pixels: np.ndarray, style: StyleRecipe, rng: np.random.Generator) -> np.ndarray:
    """Run the steps of ``style`` on a float32 (H, W, 3) array in [0, 1]."""
    for name, params in style.steps:
        pixels = np.clip(PARTS[name](pixels, rng, **params), 0, 1).astype(np.float32, copy=False)
    return pixels


def apply_style(image: Image.Image, style: str, seed: int = 0) -> Image.Image:
    """``image`` re-drawn in ``style`` (RGB, same size); the same arguments give the same bytes."""
    return apply_recipe(image, check_style(style), seed)


def apply_recipe(image: Image.Image, style: StyleRecipe, seed: int = 0) -> Image.Image:
    """``image`` re-drawn by any recipe (a named style's or a drawn one), its randomness from (seed, name)."""
    if min(image.size) < MIN_SIZE:
        raise StyleBoostError(
            f"image of {image.width}x{image.height} px is too small to stylize; use at least {MIN_SIZE} px a side")
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    result = render(pixels, style, style_rng(style.name, seed))
    return Image.fromarray(np.rint(result * 255).astype(np.uint8), "RGB")
