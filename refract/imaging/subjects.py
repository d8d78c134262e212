"""Who is in a photo when no usable frontal face is: ``stylize``'s fallback subject.

:func:`find_subject` looks, in order, for

1. a usable frontal face (:func:`~refract.imaging.faces.detect_on_bgr`): ``"face"``;
2. faces the frontal search misses: small frontal faces (a group shot from afar, down to
   16 px, each confirmed by a second cascade), tilted heads (the frontal cascade run on
   copies rotated by up to 45 degrees; a head counts only when two neighbouring angles
   agree on it, since one angle alone fires on textures) and profile faces (the profile
   cascade on the photo and its mirror image): ``"person"`` for one, ``"group"`` for more;
3. nobody: ``"none"``.

Body detectors were tried and left out on purpose: the upper-body Haar cascade fires on a
coffee cup in ``coffee.png`` and the HOG people detector on the astronaut's suit, so a
"person" from them would be a guess presented as a finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from refract.imaging.faces import FaceBox, _classifier, _confirmed, detect_on_bgr
from refract.imaging.pixels import ImageInput, shrink, to_bgr

SubjectKind = Literal["face", "person", "group", "none"]

# Small faces are searched at the frontal detector's own resolution; the rotated and
# profile searches (seven passes) on a smaller copy, where heads are not small.
_SMALL_MAX_SIDE = 1280
_SEARCH_MAX_SIDE = 960
_SMALL_FACE_PX = 16
_ANGLES = (-45, -30, -15, 15, 30, 45)


@dataclass(frozen=True)
class Subject:
    """What ``stylize`` restyles: its kind, the heads found (largest first) and how."""

    kind: SubjectKind
    heads: tuple[FaceBox, ...] = ()
    method: str = ""

    @property
    def people(self) -> int:
        """How many people were found."""
        return len(self.heads)


def _rotated(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    # The canvas grows so that nothing is cut off; the matrix maps original -> rotated.
    height, width = gray.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += new_w / 2 - width / 2
    matrix[1, 2] += new_h / 2 - height / 2
    return cv2.warpAffine(gray, matrix, (new_w, new_h)), matrix


def _tilted_heads(bgr: np.ndarray) -> list[FaceBox]:
    height, width = bgr.shape[:2]
    hits: list[tuple[float, float, float, float]] = []  # (angle, cx, cy, side)
    for turn in _ANGLES:
        rotated, matrix = _rotated(bgr, turn)
        back = cv2.invertAffineTransform(matrix)
        for face in detect_on_bgr(rotated):
            cx, cy = face.center
            x, y = back @ np.array([cx, cy, 1.0])
            if 0 <= x < width and 0 <= y < height:
                hits.append((float(turn), float(x), float(y), float(face.w)))
    heads: list[FaceBox] = []
    for angle, x, y, side in hits:
        agree = [
            h
            for h in hits
            if h[0] != angle
            and abs(h[0] - angle) <= 15
            and np.hypot(h[1] - x, h[2] - y) < 0.5 * side
        ]
        if agree:
            half = side / 2
            heads.append(FaceBox(round(x - half), round(y - half), round(side), round(side)))
    return heads


def _small_faces(gray: np.ndarray) -> list[FaceBox]:
    found = _classifier("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(_SMALL_FACE_PX, _SMALL_FACE_PX)
    )
    return [
        FaceBox(int(x), int(y), int(w), int(h))
        for (x, y, w, h) in found
        if _confirmed(gray, int(x), int(y), int(w), int(h))
    ]


def _profile_faces(gray: np.ndarray) -> list[FaceBox]:
    # The cascade knows faces turned one way; the mirror image finds the other way.
    cascade = _classifier("haarcascade_profileface.xml")
    side = max(24, round(0.08 * min(gray.shape[:2])))
    width = gray.shape[1]
    boxes = [
        FaceBox(int(x), int(y), int(w), int(h))
        for (x, y, w, h) in cascade.detectMultiScale(gray, 1.1, 10, minSize=(side, side))
    ]
    mirrored = cascade.detectMultiScale(cv2.flip(gray, 1), 1.1, 10, minSize=(side, side))
    boxes += [FaceBox(int(width - x - w), int(y), int(w), int(h)) for (x, y, w, h) in mirrored]
    return boxes


def _overlaps(a: FaceBox, b: FaceBox) -> bool:
    (ax, ay), (bx, by) = a.center, b.center
    return abs(ax - bx) < 0.5 * max(a.w, b.w) and abs(ay - by) < 0.5 * max(a.h, b.h)


def _distinct(boxes: list[FaceBox]) -> list[FaceBox]:
    kept: list[FaceBox] = []
    for box in boxes:
        if not any(_overlaps(box, other) or _contains(box, other) for other in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (-b.area, b.x, b.y))


def _contains(outer: FaceBox, inner: FaceBox) -> bool:
    cx, cy = inner.center
    return outer.x <= cx <= outer.x + outer.w and outer.y <= cy <= outer.y + outer.h


def _scaled(box: FaceBox, scale: float) -> FaceBox:
    return FaceBox(
        round(box.x / scale), round(box.y / scale), round(box.w / scale), round(box.h / scale)
    )


def find_subject(image: ImageInput) -> Subject:
    """The photo's subject for ``stylize`` (see the module docstring)."""
    bgr = to_bgr(image)
    faces = detect_on_bgr(bgr)
    if faces:
        return Subject("face", tuple(faces), "frontal face")
    full = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    found: list[tuple[str, FaceBox]] = []
    gray, scale = shrink(full, _SMALL_MAX_SIDE)
    found += [("small faces", _scaled(b, scale)) for b in _small_faces(gray)]
    gray, scale = shrink(full, _SEARCH_MAX_SIDE)
    tilted = _tilted_heads(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    found += [("tilted face", _scaled(b, scale)) for b in tilted]
    found += [("profile face", _scaled(b, scale)) for b in _profile_faces(gray)]
    # First found, first kept: a frontal face is surer than a tilted one, and that than
    # a profile, which often spans a whole distant group.
    heads = _distinct([box for _, box in found])
    if not heads:
        return Subject("none")
    methods = sorted({method for method, box in found if box in heads})
    scaled = tuple(heads)
    return Subject("person" if len(scaled) == 1 else "group", scaled, ", ".join(methods))


def people_region(heads: tuple[FaceBox, ...], width: int, height: int) -> tuple[int, int, int, int]:
    """A box ``(x0, y0, x1, y1)`` around the people: their heads, shoulders and upper
    bodies (a head's height above, three below, one and a half either side), grown
    towards a square where the photo allows and clamped to it."""
    size = max(h.h for h in heads)
    x0 = min(h.x for h in heads) - 1.5 * size
    x1 = max(h.x + h.w for h in heads) + 1.5 * size
    y0 = min(h.y for h in heads) - 0.8 * size
    y1 = max(h.y + h.h for h in heads) + 3.0 * size
    # Grow the short side towards a square: the portrait is shown square on the card.
    w, h = x1 - x0, y1 - y0
    if w > h:
        y0, y1 = y0 - (w - h) * 0.3, y1 + (w - h) * 0.7
    else:
        x0, x1 = x0 - (h - w) / 2, x1 + (h - w) / 2
    box = (max(0, round(x0)), max(0, round(y0)), min(width, round(x1)), min(height, round(y1)))
    return box
