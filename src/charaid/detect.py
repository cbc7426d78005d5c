"""Anime face detectors, harmonised to one box convention.

Every backend returns boxes in the *canonical* convention used by the demo ground truth: a square
whose side is the width of the face shape, centred a little below the face centre (where both
detectors centre their boxes). Each backend's box is rescaled about its centre by the ratio
measured between its box and the face width: the LBP cascade's box is ~1.35 face widths,
animeface's ~0.98.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from charaid.boxes import Box, rescale
from charaid.errors import CharaidError

BOX_SCALE = {"lbp": 1.35, "animeface": 0.98}


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


class LbpDetector:
    """nagadomi's lbpcascade_animeface (the seed blog's detector) through OpenCV."""

    def __init__(self, cascade: str | Path, scale_factor: float, min_neighbors: int, min_size: int):
        path = Path(cascade)
        if not path.is_file():
            raise CharaidError(
                f"{path}: cascade file not found (detect_faces.cascade; see README to get "
                "lbpcascade_animeface.xml, or use backend animeface)"
            )
        try:
            self.cascade = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError):
            self.cascade = None
        if self.cascade is None or self.cascade.empty():
            raise CharaidError(f"{path}: not a valid OpenCV cascade file")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        rects, _, weights = self.cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
            outputRejectLevels=True,
        )
        found = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=False):
            box = rescale((float(x), float(y), float(w), float(h)), 1 / BOX_SCALE["lbp"])
            found.append(Detection(box, float(weight)))
        return found


class AnimefaceDetector:
    """The `animeface` package (nagadomi's imager::AnimeFace), which ships its own model."""

    def __init__(self, min_score: float, min_size: int):
        import animeface  # imported here: workers that use lbp never pay for it

        self._detect = animeface.detect
        self.min_score = min_score
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> list[Detection]:
        from PIL import Image

        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        found = []
        for face in self._detect(pil):
            pos = face.face.pos
            if face.likelihood < self.min_score or min(pos.width, pos.height) < self.min_size:
                continue
            box = (float(pos.x), float(pos.y), float(pos.width), float(pos.height))
            found.append(Detection(rescale(box, 1 / BOX_SCALE["animeface"]), face.likelihood))
        return found


def make_detector(params: dict) -> Detector:
    """The detector named by `detect_faces.backend`, configured from the same section."""
    backend = params["backend"]
    if backend == "lbp":
        return LbpDetector(
            params["cascade"], params["scale_factor"], params["min_neighbors"], params["min_size"]
        )
    if backend == "animeface":
        return AnimefaceDetector(params["min_score"], params["min_size"])
    raise CharaidError(f"params.yaml: detect_faces.backend {backend!r}; allowed: animeface, lbp")
