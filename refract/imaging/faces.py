"""Finding faces: detection, smiles, and the head-and-shoulders crop ``stylize`` uses.

Faces come from OpenCV's frontal-face Haar cascade (bundled with opencv-python-headless 4.x;
OpenCV 5 dropped the cascades), each confirmed by the ``alt2`` frontal cascade. On the test
photos this gives exactly one face in astronaut.png (about x=177 y=66 w=95 h=95) and none
in coffee.png or chelsea.png. A ``CascadeClassifier`` is not documented as thread-safe and
workers run tasks in a thread pool, so every thread gets its own classifier instances.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from refract.core.material import ImageBlob
from refract.imaging.pixels import ImageInput, encode_jpeg, shrink, to_bgr

# Detection runs on a copy no larger than this: visitor photos can be 12 MP, the cascade
# gains nothing from that and slows down quadratically.
_DETECT_MAX_SIDE = 1280
# A face this share of the photo's short side or more is found by the quick first search.
_LARGE_FACE = 0.15

_local = threading.local()


@dataclass(frozen=True)
class FaceBox:
    """A detected face, in pixels of the original image."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        """The box's area in pixels."""
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        """The box's centre ``(x, y)``."""
        return self.x + self.w / 2, self.y + self.h / 2


def _classifier(name: str) -> cv2.CascadeClassifier:
    cache: dict[str, cv2.CascadeClassifier] | None = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    if name not in cache:
        clf = cv2.CascadeClassifier(cv2.data.haarcascades + name)  # type: ignore[attr-defined]
        if clf.empty():
            raise RuntimeError(f"OpenCV cascade {name} is missing (opencv-python-headless<5)")
        cache[name] = clf
    return cache[name]


def detect_on_bgr(bgr: np.ndarray, *, min_fraction: float = 0.05) -> list[FaceBox]:
    """Frontal faces in an OpenCV BGR array, largest first; none smaller than
    ``min_fraction`` of the short side (the default: too small to restyle or describe)."""
    gray, scale = shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), _DETECT_MAX_SIDE)
    min_side = max(24, round(min_fraction * min(gray.shape[:2])))
    found = _classifier("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    boxes = [
        FaceBox(round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for (x, y, w, h) in found
        if _confirmed(gray, int(x), int(y), int(w), int(h))
    ]
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


def _confirmed(gray: np.ndarray, x: int, y: int, w: int, h: int) -> bool:
    # A second, differently trained cascade must also see a face there: the default one
    # alone fires on some textures (fabric folds, upscaled noise).
    pad = w // 4
    roi = gray[max(0, y - pad) : y + h + pad, max(0, x - pad) : x + w + pad]
    found = _classifier("haarcascade_frontalface_alt2.xml").detectMultiScale(
        roi, scaleFactor=1.1, minNeighbors=3, minSize=(w * 2 // 3, h * 2 // 3)
    )
    return len(found) > 0


def detect_faces(image: ImageInput) -> list[FaceBox]:
    """Frontal faces in the image, largest first (empty when there are none)."""
    return detect_on_bgr(to_bgr(image))


def is_smiling(gray: np.ndarray, face: FaceBox) -> bool:
    """Whether the face in ``gray`` (the full grey image) smiles."""
    # The smile cascade is noisy, so it only looks at the lower half of a found face and
    # needs many neighbours to agree.
    roi = gray[face.y + face.h // 2 : face.y + face.h, face.x : face.x + face.w]
    if roi.size == 0:
        return False
    scale = min(1.0, 200 / max(1, face.w))
    if scale < 1.0:
        roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    width = roi.shape[1]
    found = _classifier("haarcascade_smile.xml").detectMultiScale(
        roi, scaleFactor=1.1, minNeighbors=20, minSize=(max(8, width // 4), max(4, width // 10))
    )
    return len(found) > 0


def portrait_box(
    face: FaceBox, width: int, height: int, *, margin: float = 1.5
) -> tuple[int, int, int]:
    """A head-and-shoulders square ``(x0, y0, side)`` for ``face`` in a ``width`` x
    ``height`` image: ``margin`` x the face's size added on each side, the face in the
    upper third (the rest of the square goes to neck, shoulders and chest), shrunk to
    fit and shifted inside the image where it would cross an edge."""
    side = min(round(max(face.w, face.h) * (1 + 2 * margin)), width, height)
    cx, cy = face.center
    x0 = int(min(max(round(cx - side / 2), 0), width - side))
    y0 = int(min(max(round(cy - side * 0.36), 0), height - side))
    return x0, y0, side


def crop_largest_face(image_bytes: bytes, *, margin: float = 1.5) -> ImageBlob | None:
    """The largest face framed head and shoulders, as a square JPEG (see
    :func:`portrait_box`); ``None`` when no face is found.

    A tight box around the face would cut off the hair, the clothes and whatever the
    visitor wears or holds, which is what makes a portrait theirs. The crop goes to the
    model as it is: a JPEG is encoded in ~1 ms where a PNG takes ~4, and is a sixth of
    the size to send (~50 against ~300 KB for a 400-pixel crop).
    """
    bgr = to_bgr(image_bytes)
    # Only the largest face is wanted: a search for large faces alone (a few times
    # cheaper: most of the cascade's windows are the small ones) finds it whenever it is
    # large, as a visitor's face at the booth is; only if none is, the small ones.
    faces = detect_on_bgr(bgr, min_fraction=_LARGE_FACE) or detect_on_bgr(bgr)
    if not faces:
        return None
    height, width = bgr.shape[:2]
    x0, y0, side = portrait_box(faces[0], width, height, margin=margin)
    return ImageBlob(encode_jpeg(bgr[y0 : y0 + side, x0 : x0 + side]), "image/jpeg")
