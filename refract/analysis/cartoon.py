"""The offline ``stylize``: a flat-shaded cartoon of a portrait, drawn with OpenCV.

Steps, each chosen against the blotches a per-pixel posterisation leaves on hair and skin:

1. edge-preserving smoothing: mean shift (``pyrMeanShiftFiltering``) joins each colour
   region into a flat area while keeping the edges between regions, then a bilateral pass;
2. colour quantisation: the smoothed picture reduced to a small palette by median cut
   (deterministic, unlike k-means with OpenCV's global RNG), and the label map cleaned
   with a median filter so no region is smaller than a few pixels;
3. shading: the flat colour, a little of the smooth lightness kept for volume, chroma
   raised and a soft key light from the top left;
4. ink: clean dark outlines from Canny edges on the smoothed picture, short fragments
   dropped, thickened by one pixel and anti-aliased.

The output keeps the input's aspect ratio (a square portrait stays square; a group is
wider), its long side ``size`` pixels.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from refract.imaging.pixels import ImageInput, encode_png, to_bgr

PALETTE_COLOURS = 16
CHROMA_BOOST = 1.25
FLAT_SHARE = 0.6


def _resize(bgr: np.ndarray, size: int) -> np.ndarray:
    height, width = bgr.shape[:2]
    scale = size / max(height, width)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    return cv2.resize(bgr, target, interpolation=interpolation)


def _smooth(bgr: np.ndarray) -> np.ndarray:
    radius = max(8, round(max(bgr.shape[:2]) / 40))
    flat = cv2.pyrMeanShiftFiltering(bgr, radius, 36)
    for _ in range(2):
        flat = cv2.bilateralFilter(flat, 9, 45, 9)
    return flat


def _quantise(smooth: np.ndarray) -> np.ndarray:
    rgb = Image.fromarray(cv2.cvtColor(smooth, cv2.COLOR_BGR2RGB))
    quant = rgb.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT)
    labels = cv2.medianBlur(np.asarray(quant, dtype=np.uint8), 7)
    palette = np.array(quant.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    flat: np.ndarray = cv2.cvtColor(palette[labels], cv2.COLOR_RGB2BGR)
    return flat


def _shade(flat: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    # Hard palette steps band smooth gradients (hair, cheeks); a share of the smoothed
    # picture under the flat colour keeps the steps soft while the areas stay flat.
    lab = cv2.cvtColor(flat, cv2.COLOR_BGR2LAB).astype(np.float32)
    soft = cv2.cvtColor(smooth, cv2.COLOR_BGR2LAB).astype(np.float32)
    lab = FLAT_SHARE * lab + (1 - FLAT_SHARE) * soft
    height, width = flat.shape[:2]
    lab[..., 1:] = 128.0 + (lab[..., 1:] - 128.0) * CHROMA_BOOST
    shaded = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy, xx = yy / max(height, width), xx / max(height, width)
    key_light: np.ndarray = 1.06 - 0.18 * np.sqrt((xx - 0.35) ** 2 + (yy - 0.3) ** 2)
    lit: np.ndarray = shaded.astype(np.float32) * key_light[..., None]
    return lit


def _ink(smooth: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(smooth, cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(gray, 50, 140)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges, connectivity=8)
    keep = np.zeros(count, dtype=bool)
    # Short fragments are texture (fabric, hair strands), not outlines.
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(12, max(gray.shape) // 25)
    lines = keep[labels].astype(np.uint8)
    lines = cv2.dilate(lines, np.ones((2, 2), np.uint8))
    return cv2.GaussianBlur(lines.astype(np.float32), (3, 3), 0)


def cartoonize(image: ImageInput, *, size: int = 512) -> bytes:
    """A PNG cartoon of the image, its long side ``size`` px (aspect ratio kept)."""
    bgr = _resize(to_bgr(image), size)
    smooth = _smooth(bgr)
    shaded = _shade(_quantise(smooth), smooth)
    ink = _ink(smooth)
    out = np.clip(shaded * (1.0 - 0.8 * ink[..., None]), 0, 255)
    return encode_png(out.astype(np.uint8))
