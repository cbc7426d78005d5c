"""Anime face detectors, harmonised to one box convention, with the preprocessing that helps.

Every backend returns boxes in the *canonical* convention used by the demo ground truth: a square
whose side is the width of the face shape, centred a little below the face centre (where both
detectors centre their boxes). Each backend's box is rescaled about its centre by the ratio
measured between its box and the face width: the LBP cascade's box is ~1.35 face widths,
animeface's ~0.98.

`make_detector` builds what the stages run (`FaceDetector`): the frame is prepared for each
backend (CLAHE on the luminance of dark frames; for animeface also an unsharp mask), given a
border so that faces cut by the frame edge fit a window, searched by one backend or both
(`ensemble`), optionally once more at a second scale, and the boxes of one face are fused; a box
inside a much larger one (a part of that face) is dropped.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from charaid.boxes import Box, Detection, covered, iou, rescale
from charaid.config import DetectFacesParams
from charaid.errors import CharaidError

BOX_SCALE = {"lbp": 1.35, "animeface": 0.98}

# ----------------------------------------------------------------------------- preprocessing


def mean_luma(image: np.ndarray) -> float:
    """Mean grey level (0-255), on a small copy: only the overall brightness matters."""
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return float(gray.mean())


def grey_world(image: np.ndarray, max_gain: float = 4.0) -> np.ndarray:
    """Grey-world white balance: scale each colour channel so that the three means are equal.

    Night and mood scenes are often washed in one colour (blue moonlight, orange sunset), and
    skin in that light no longer looks like the skin the detectors learned. Gains are capped so
    that a nearly empty channel is not blown up into noise.
    """
    if image.ndim != 3:
        return image
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA)
    means = small.reshape(-1, 3).mean(axis=0) + 1.0
    gains = np.clip(means.mean() / means, 1 / max_gain, max_gain)
    return cv2.transform(image, np.diag(gains).astype(np.float32))


def clahe_luma(image: np.ndarray, clip: float) -> np.ndarray:
    """CLAHE on the L channel only: local contrast comes back, hair and skin keep their hues."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def unsharp(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp mask: image + amount * (image - blurred)."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


@dataclass(frozen=True)
class Enhance:
    """The frame the detectors see.

    Both detectors look for dark line art around large eyes: at night that art sinks into the
    shadows (CLAHE brings it back; bright frames are left alone, where it only costs time), and
    in soft or blurred frames its edges are smeared (an unsharp mask restores them for
    animeface; the LBP cascade finds fewer faces with it).
    """

    white_balance: bool = False
    dark_level: float = 0.0
    clahe_clip: float = 2.0
    sharpen: float = 0.0
    sharpen_sigma: float = 2.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.white_balance:
            image = grey_world(image)
        if self.dark_level and mean_luma(image) < self.dark_level:
            image = clahe_luma(image, self.clahe_clip)
        if self.sharpen:
            image = unsharp(image, self.sharpen, self.sharpen_sigma)
        return image


# ----------------------------------------------------------------------------- backends


class LbpDetector:
    """nagadomi's lbpcascade_animeface (the seed blog's detector) through OpenCV."""

    name = "lbp"

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

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Faces in `image`, a copy of the frame resized by `scale`; boxes in frame pixels."""
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        side = max(1, round(self.min_size * scale))  # min_size counts frame pixels
        rects, _, weights = self.cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        found = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=False):
            box = tuple(float(v) / scale for v in (x, y, w, h))
            found.append(Detection(rescale(box, 1 / BOX_SCALE["lbp"]), float(weight)))
        return found


def _centre(part) -> tuple[float, float]:
    pos = part.pos
    return pos.x + pos.width / 2, pos.y + pos.height / 2


def looks_like_text(face) -> bool:
    """A burned-in subtitle glyph: pure-white 'skin' outlined by pure-black 'hair'.

    Anime skin is tinted; real anime (a subtitled clip) gave animeface's only false positives
    on one such glyph, while no face of the demo or of that clip has both colours.
    """
    skin, hair = face.skin.color, face.hair.color
    return min(skin.r, skin.g, skin.b) >= 240 and max(hair.r, hair.g, hair.b) <= 48


def _animeface_reseed() -> Callable[[int], None]:
    """`nv_srand` of animeface's native library: its per-face analysis (k-means for the skin
    and hair colours that `reject_text` reads) draws from one process-wide generator, so
    without a reseed per frame a face's colours depend on which frames the process saw before,
    and the worker pool's scheduling made `detect_faces` differ from run to run."""
    import animeface

    libs = Path(animeface.__file__).resolve().parent.parent / "animeface.libs"
    found = sorted(libs.glob("libnvxs*.so*"))
    if not found:  # another build of the package: nothing to reseed, nothing known to vary
        return lambda seed: None
    srand = ctypes.CDLL(str(found[0])).nv_srand  # the copy _nvxs already loaded
    srand.argtypes, srand.restype = [ctypes.c_ulong], None
    return srand


class AnimefaceDetector:
    """The `animeface` package (nagadomi's imager::AnimeFace), which ships its own model."""

    name = "animeface"

    def __init__(
        self, min_score: float, min_size: int, eye_span: float = 0.0, reject_text: bool = False
    ):
        import animeface  # imported here: workers that use lbp never pay for it

        self._detect = animeface.detect
        self._reseed = _animeface_reseed()
        self.min_score = min_score
        self.min_size = min_size
        self.eye_span = eye_span
        self.reject_text = reject_text

    def _box(self, face) -> Box:
        pos = face.face.pos
        side = float(pos.width)
        if self.eye_span:
            # Around glasses animeface's box hugs the frames (~0.7 face widths); the distance
            # between the eyes, ~0.47 face widths on every other face, gives the size back.
            (lx, _), (rx, _) = _centre(face.left_eye), _centre(face.right_eye)
            side = max(side, abs(rx - lx) / self.eye_span * BOX_SCALE["animeface"])
        box = (float(pos.x), float(pos.y), float(pos.width), float(pos.height))
        return rescale(box, side / pos.width / BOX_SCALE["animeface"])

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Faces in `image`, a copy of the frame resized by `scale`; boxes in frame pixels."""
        from PIL import Image

        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        found = []
        self._reseed(0)
        for face in self._detect(pil):
            pos = face.face.pos
            small = min(pos.width, pos.height) < self.min_size * scale  # min_size: frame pixels
            if small or face.likelihood < self.min_score:
                continue
            if self.reject_text and looks_like_text(face):
                continue
            box = tuple(v / scale for v in self._box(face))
            found.append(Detection(box, float(face.likelihood)))
        return found


# ----------------------------------------------------------------------------- fusion


def fuse(found: Sequence[tuple[str, Detection]], min_iou: float, backends: int) -> list[Detection]:
    """Weighted box fusion of (backend, detection) pairs from several backends or passes.

    Greedy, best score first: a detection joins the first cluster whose fused box it overlaps
    by `min_iou`, the fused box being the mean of its members. Backend scores are not on one
    scale, so a fused face scores the share of backends that found it (1.0 = all of them) when
    there are several, else its best member's score.
    """
    order = sorted(range(len(found)), key=lambda i: -found[i][1].score)
    clusters: list[list[int]] = []
    boxes: list[Box] = []
    for i in order:
        box = found[i][1].box
        k = next((k for k, b in enumerate(boxes) if iou(b, box) >= min_iou), None)
        if k is None:
            clusters.append([i])
            boxes.append(box)
        else:
            clusters[k].append(i)
            members = np.array([found[j][1].box for j in clusters[k]])
            boxes[k] = tuple(float(v) for v in members.mean(axis=0))
    fused = []
    for members, box in zip(clusters, boxes, strict=True):
        if backends > 1:
            score = len({found[j][0] for j in members}) / backends
        else:
            score = max(found[j][1].score for j in members)
        fused.append(Detection(box, score))
    return fused


def drop_nested(
    found: Sequence[Detection], cover: float = 0.8, ratio: float = 1.5
) -> list[Detection]:
    """Drop each box that lies mostly (`cover` of its area) inside a box `ratio` times its side
    or more: it is a part of that face, not a face. animeface takes the eyes of a face with
    glasses or closed eyes for a small face of their own, and a second search scale then finds
    the whole face too; boxes so different in size never reach `merge_iou` (a box of half the
    side inside another has an IoU of 0.25)."""
    return [
        d
        for d in found
        if not any(o.box[2] >= ratio * d.box[2] and covered(d.box, o.box) >= cover for o in found)
    ]


class Backend(Protocol):
    name: str

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]: ...


class FaceDetector:
    """What the stages run: prepare the frame, search it with each backend at each scale, fuse."""

    def __init__(
        self,
        backends: Sequence[tuple[Backend, Enhance]],
        extra_scale: float = 0.0,
        merge_iou: float = 0.4,
        pad: float = 0.0,
    ):
        self.backends = list(backends)  # each with its own preprocessing
        self.scales = (1.0, extra_scale) if extra_scale and extra_scale != 1 else (1.0,)
        self.merge_iou = merge_iou
        self.pad = pad

    def _search(self, backend, image: np.ndarray, scale: float) -> list[Detection]:
        """Both detectors only try windows inside the picture, so a face cut by the frame edge
        (close-ups) is never a whole window: a border of replicated edge pixels, `pad` times the
        short side, lets the window overhang the frame as the face does."""
        p = round(self.pad * min(image.shape[:2]))
        if not p:
            return backend.detect(image, scale)
        padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_REPLICATE)
        shift = p / scale  # in frame pixels
        return [
            Detection((d.box[0] - shift, d.box[1] - shift, d.box[2], d.box[3]), d.score)
            for d in backend.detect(padded, scale)
        ]

    def detect(self, image: np.ndarray) -> list[Detection]:
        found: list[tuple[str, Detection]] = []
        for backend, enhance in self.backends:
            frame = enhance(image)
            for scale in self.scales:
                resized = frame
                if scale != 1:
                    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
                    resized = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=interp)
                found += [(backend.name, d) for d in self._search(backend, resized, scale)]
        if len(self.scales) == 1 and len(self.backends) == 1:
            return drop_nested([d for _, d in found])
        return drop_nested(fuse(found, self.merge_iou, len(self.backends)))


def make_detector(p: DetectFacesParams) -> FaceDetector:
    """The detector named by `detect_faces.backend`, configured from the same section."""
    backend = p.backend
    if backend == "learned":
        from charaid.detector.backend import LearnedDetector

        # the net learned jittered colours and whole pictures: no preprocessing, no border,
        # one pass (it finds faces from ~4% of the picture's long side up)
        learned = LearnedDetector(p.detector, p.detector_min_score, p.min_size)
        return FaceDetector([(learned, Enhance())], 0.0, p.merge_iou, 0.0)
    if backend == "onnx":
        from charaid.detector.yolo_onnx import OnnxDetector

        # a YOLO export letterboxes the whole frame itself: no preprocessing, no border, one
        # pass; it keeps faces at detector_min_score, as the learned backend does
        onnx = OnnxDetector(p.onnx, p.detector_min_score, p.min_size)
        return FaceDetector([(onnx, Enhance())], 0.0, p.merge_iou, 0.0)
    members: list[tuple[AnimefaceDetector | LbpDetector, Enhance]] = []
    both = {  # the preprocessing every backend gets
        "white_balance": p.white_balance,
        "dark_level": p.dark_level,
        "clahe_clip": p.clahe_clip,
    }
    if backend in ("animeface", "ensemble"):
        detector = AnimefaceDetector(p.min_score, p.min_size, p.eye_span, p.reject_text)
        members.append(
            (detector, Enhance(**both, sharpen=p.sharpen, sharpen_sigma=p.sharpen_sigma))
        )
    if backend in ("lbp", "ensemble"):
        detector = LbpDetector(p.cascade, p.scale_factor, p.min_neighbors, p.min_size)
        # no unsharp mask: it changes the local binary patterns (demo recall 1.000 -> 0.964)
        members.append((detector, Enhance(**both)))
    if not members:  # config.py refuses such a file; a section built in code might not
        raise ValueError(f"unknown detect_faces.backend {backend!r}")
    return FaceDetector(members, p.extra_scale, p.merge_iou, p.pad)
