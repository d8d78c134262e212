"""Measuring an image without a model: light, colour, faces, text-like regions, sharpness.

The local backend describes thumbnails and photos from these numbers; they are measured on
a copy of at most 640 pixels a side, so they do not depend on the upload's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from refract.imaging.faces import FaceBox, detect_on_bgr, is_smiling
from refract.imaging.pixels import ImageInput, load_rgb, shrink

# The statistics are resolution-independent: they are measured on a copy of this size.
_STATS_MAX_SIDE = 640


@dataclass(frozen=True)
class DominantColor:
    """One of the image's main colours and the share of pixels near it."""

    hex: str
    name: str
    share: float


@dataclass(frozen=True)
class ImageStats:
    """What can be measured about an image without a model.

    ``brightness`` and ``contrast`` are the mean and standard deviation of luma (0-1);
    ``saturation`` the mean HSV saturation (0-1); ``warmth`` the mean of (R - B) (-1..1,
    positive is warm); ``sharpness`` the variance of the Laplacian on a 640-px copy;
    ``smiles`` is aligned with ``faces``; ``sky_share`` is the share of the top third that
    is sky-coloured (light blue or bright overcast white) and ``green_share`` the share of
    foliage-green pixels: cues for an outdoor guess.
    """

    width: int
    height: int
    brightness: float
    contrast: float
    saturation: float
    warmth: float
    dominant_colors: list[DominantColor]
    faces: list[FaceBox]
    smiles: list[bool]
    text_regions: int
    sharpness: float
    sky_share: float
    green_share: float


def color_name(r: int, g: int, b: int) -> str:
    """A plain colour word for an RGB colour (hue bands in HSV; greys by lightness)."""
    hue, sat, val = _hsv(r, g, b)
    if val < 0.18:
        return "black"
    if sat < 0.18 or (sat < 0.3 and val < 0.35):
        # An off-white backdrop (value 0.75-0.85) reads as white, not light grey.
        if val > 0.75:
            return "white"
        return "light grey" if val > 0.6 else "grey" if val > 0.35 else "dark grey"
    warm = hue < 45 or hue >= 345
    if warm and sat < 0.35:
        return "beige" if val >= 0.55 else "brown"
    if warm and (val < 0.55 or (hue >= 15 and val < 0.68 and sat < 0.6)):
        return "brown"
    # Orange starts at 11 degrees, not 15: a saturated red-orange such as a spacesuit's
    # (hue 11-14) is "orange" to anyone describing it, while pure reds sit at 0-10.
    bands = (
        (11, "red"),
        (40, "orange"),
        (70, "yellow"),
        (160, "green"),
        (195, "teal"),
        (255, "blue"),
        (290, "purple"),
        (335, "pink"),
        (360, "red"),
    )
    name = next(name for limit, name in bands if hue < limit)
    return f"dark {name}" if val < 0.35 else name


def _hsv(r: int, g: int, b: int) -> tuple[float, float, float]:
    hi, lo = max(r, g, b) / 255.0, min(r, g, b) / 255.0
    sat = 0.0 if hi == 0 else (hi - lo) / hi
    if hi == lo:
        return 0.0, sat, hi
    rf, gf, bf = r / 255.0, g / 255.0, b / 255.0
    span = hi - lo
    if hi == rf:
        hue = ((gf - bf) / span) % 6
    elif hi == gf:
        hue = (bf - rf) / span + 2
    else:
        hue = (rf - gf) / span + 4
    return hue * 60.0, sat, hi


def _names(rgb: np.ndarray) -> np.ndarray:
    """:func:`color_name` for every pixel of an RGB array (same rules, vectorised)."""
    flat = rgb.reshape(-1, 3)
    # Few distinct colours in a 160-px copy: name each once.
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    names = np.array([color_name(int(r), int(g), int(b)) for r, g, b in unique])
    return names[inverse.reshape(-1)]


def _dominant_colors(rgb: Image.Image, count: int = 6) -> list[DominantColor]:
    """The main colours by name, with the share of the picture each covers.

    Each pixel is named (:func:`color_name`); the names are ranked by their pixels
    weighted by ``1 + 2 x saturation``, since a saturated area is what a person calls the
    photo's colour (the astronaut's orange suit) more than a grey backdrop of the same
    size, and black (shadows, mostly) counts half. ``share`` is the plain share of pixels;
    the hex is the mean colour of the pixels of that name, so it is a colour really in the
    photo.
    """
    small = rgb.copy()
    small.thumbnail((160, 160))
    pixels = np.asarray(small, dtype=np.uint8).reshape(-1, 3)
    # Coarse steps of 4 keep the naming cheap without changing any name that matters.
    names = _names((pixels // 4) * 4 + 2)
    hi = pixels.max(axis=1).astype(np.float64)
    lo = pixels.min(axis=1).astype(np.float64)
    saturation = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1), 0.0)
    weights = 1.0 + 2.0 * saturation
    # Shadows are not a colour anyone names a photo by: black counts half.
    weights[names == "black"] *= 0.5
    ranked = []
    for name in np.unique(names):
        mask = names == name
        r, g, b = (int(v) for v in pixels[mask].mean(axis=0).round())
        share = round(float(mask.mean()), 3)
        colour = DominantColor(f"#{r:02x}{g:02x}{b:02x}", str(name), share)
        ranked.append((-float(weights[mask].sum()), colour.name, colour))
    return [colour for _, _, colour in sorted(ranked)[:count]]


def _stroke_like(points: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
    mask = np.zeros((h + 2, w + 2), np.uint8)
    mask[points[:, 1] - y + 1, points[:, 0] - x + 1] = 255
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    # 2 * area / perimeter approximates stroke width; letters are thin for their size.
    stroke = 2 * len(points) / max(perimeter, 1.0)
    return stroke <= 0.3 * min(w, h) or (
        len(points) >= 0.95 * w * h and min(w, h) <= 0.35 * max(w, h)
    )


def count_text_regions(gray: np.ndarray) -> int:
    """How many word-like regions the image has (a heuristic, not OCR).

    MSER finds stable blobs; the ones shaped like pen strokes (thin for their size) are
    painted into a mask, closed with a small horizontal kernel so that letters (and the
    parts of a Hangul syllable) join into words, and a joined region counts when it holds at
    least three strokes of even width, is at least 1.5x wider than tall, is partly (12-70%)
    inked and does not touch the border (overlay text has margins; photo edges fool MSER).
    """
    gray, _ = shrink(gray, _STATS_MAX_SIDE)
    height, width = gray.shape
    if min(height, width) < 16:
        return 0
    area = height * width
    mser = cv2.MSER_create(5, max(8, area // 40000), area // 50)  # type: ignore[attr-defined]
    regions, boxes = mser.detectRegions(gray)
    mask = np.zeros((height, width), np.uint8)
    for (x, y, w, h), points in zip(boxes, regions, strict=True):
        if max(w, h) < height * 0.008 or h > height * 0.3 or w > width * 0.3:
            continue
        if _stroke_like(points, int(x), int(y), int(w), int(h)):
            mask[points[:, 1], points[:, 0]] = 255
    kernel = cv2.getStructuringElement(
        cv2.MORPH_RECT, (max(3, int(height * 0.035)), max(1, int(height * 0.012)))
    )
    joined = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined)
    found = 0
    for x, y, w, h, _area in stats[1:count]:
        if not (height * 0.02 <= h <= height * 0.3 and w >= 1.5 * h):
            continue
        if x == 0 or y == 0 or x + w >= width or y + h >= height:
            continue
        ink = (mask[y : y + h, x : x + w] > 0).astype(np.uint8)
        strokes = cv2.connectedComponents(ink)[0] - 1
        if strokes >= 3 and 0.12 <= float(ink.mean()) <= 0.7 and _even_strokes(ink):
            found += 1
    return found


def _even_strokes(ink: np.ndarray) -> bool:
    # Printed letters have a near-constant stroke width; fur, foliage and texture do not.
    # Stroke half-widths are read off the distance transform's ridge (its local maxima).
    dist = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    ridge = (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8))) & (ink > 0)
    widths = dist[ridge]
    return widths.size > 0 and float(widths.std() / widths.mean()) <= 0.8


def _outdoor_cues(hsv: np.ndarray) -> tuple[float, float]:
    hue, sat, val = (hsv[:, :, i].astype(np.float32) for i in range(3))
    top = slice(0, max(1, hsv.shape[0] // 3))
    # OpenCV hue runs 0-180: sky blue is about 95-130, foliage green about 35-85.
    blue_sky = (hue[top] >= 95) & (hue[top] <= 130) & (sat[top] >= 40) & (val[top] >= 120)
    overcast = (sat[top] < 25) & (val[top] >= 215)
    sky = float((blue_sky | overcast).mean())
    green = float(((hue >= 35) & (hue <= 85) & (sat >= 60) & (val >= 40)).mean())
    return round(sky, 4), round(green, 4)


def image_stats(image: ImageInput) -> ImageStats:
    """Brightness, contrast, colours, faces, text-like regions and sharpness of an image."""
    rgb = load_rgb(image)
    bgr = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
    faces = detect_on_bgr(bgr)
    full_gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    smiles = [is_smiling(full_gray, face) for face in faces]
    small_bgr = bgr
    scale = min(1.0, _STATS_MAX_SIDE / max(bgr.shape[:2]))
    if scale < 1.0:
        small_bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2GRAY)
    luma = gray.astype(np.float32) / 255.0
    hsv = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2HSV)
    channels = small_bgr.astype(np.float32) / 255.0
    sky, green = _outdoor_cues(hsv)
    return ImageStats(
        width=rgb.width,
        height=rgb.height,
        brightness=round(float(luma.mean()), 4),
        contrast=round(float(luma.std()), 4),
        saturation=round(float(hsv[:, :, 1].mean()) / 255.0, 4),
        warmth=round(float((channels[:, :, 2] - channels[:, :, 0]).mean()), 4),
        dominant_colors=_dominant_colors(rgb),
        faces=faces,
        smiles=smiles,
        text_regions=count_text_regions(gray),
        sharpness=round(float(cv2.Laplacian(gray, cv2.CV_64F).var()), 2),
        sky_share=sky,
        green_share=green,
    )
