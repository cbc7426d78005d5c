"""Recognise faces with a trained model: classify crops, or detect then classify a picture."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import chainer
import chainer.functions as F
import cv2
import numpy as np
from chainer import serializers

from charaid.boxes import Box, square_crop
from charaid.detect import Detection, Detector
from charaid.errors import CharaidError
from charaid.models import build_model
from charaid.train import to_input
from charaid.visualize import UNKNOWN

DETECT_MAX_SIDE = 1920  # pixels; larger pictures are searched for faces at this size


@dataclass(frozen=True)
class Face:
    box: Box
    name: str  # the top class, or "unknown" under the threshold
    probability: float
    top: list[tuple[str, float]]


class Recognizer:
    """A trained classifier and its class names, loaded once."""

    def __init__(self, model_dir: str | Path, fast: bool | None = None) -> None:
        model_dir = Path(model_dir)
        meta_path, npz_path = model_dir / "model.json", model_dir / "model.npz"
        if not meta_path.is_file() or not npz_path.is_file():
            raise CharaidError(f"{model_dir}: no trained model (model.npz + model.json); run train")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.classes: list[str] = list(self.meta["classes"])
            self.input_size: int = int(self.meta["input_size"])
            self.meta["model"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CharaidError(f"{meta_path}: damaged ({exc}); rerun train") from None
        use_fast = self.meta.get("fast", True) if fast is None else fast
        try:
            self.model = build_model(self.meta["model"], len(self.classes), fast=use_fast)
        except ValueError as exc:  # a model.json from a newer or another charaid
            raise CharaidError(f"{meta_path}: {exc}; rerun train") from None
        try:
            serializers.load_npz(str(npz_path), self.model)
        except (KeyError, ValueError, OSError, EOFError) as exc:
            raise CharaidError(f"{npz_path}: does not match model.json ({exc})") from None

    def probabilities(self, crops: np.ndarray, batch: int = 256) -> np.ndarray:
        """Softmax probabilities (N, classes) for uint8 BGR crops of the model's input size."""
        out = [np.zeros((0, len(self.classes)), np.float32)]
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            for i in range(0, len(crops), batch):
                logits = self.model(to_input(crops[i : i + batch]))
                out.append(F.softmax(logits).array)
        return np.concatenate(out)

    def name(self, probs: np.ndarray, threshold: float, top_k: int = 3) -> tuple[str, list]:
        """Top name (or unknown below `threshold`) and the top-k (name, probability) list."""
        order = np.argsort(-probs, kind="stable")[:top_k]
        top = [(self.classes[i], round(float(probs[i]), 4)) for i in order]
        return (top[0][0] if top[0][1] >= threshold else UNKNOWN), top

    def faces(
        self, dets: Sequence[Detection], probs: np.ndarray, threshold: float, top_k: int = 3
    ) -> list[Face]:
        """Named faces from detections and their class probabilities (same order)."""
        faces = []
        for det, row in zip(dets, probs, strict=True):
            name, top = self.name(row, threshold, top_k)
            faces.append(Face(det.box, name, top[0][1], top))
        return faces

    def recognize(
        self, image: np.ndarray, detector: Detector, margin: float, threshold: float, top_k: int = 3
    ) -> list[Face]:
        """Detect faces in a BGR picture and name each."""
        return self.recognize_many([image], detector, margin, threshold, top_k)[0]

    def recognize_many(
        self,
        images: Sequence[np.ndarray],
        detector: Detector,
        margin: float,
        threshold: float,
        top_k: int = 3,
    ) -> list[list[Face]]:
        """Detect faces in many pictures, then name all of them in one batched forward pass."""
        return Predictor(self, detector, margin, threshold, top_k).predict_many(images)


def detect_sorted(
    detector: Detector, image: np.ndarray, max_side: int = DETECT_MAX_SIDE
) -> list[Detection]:
    """Detections left to right (face order does not depend on the backend).

    A picture larger than `max_side` is searched on a downscaled copy (boxes scaled back):
    animeface misses faces much over ~400 px, e.g. every face of a 4K frame.
    """
    scale = max_side / max(image.shape[:2]) if max_side else 1.0
    if scale < 1.0:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = [
            Detection(tuple(v / scale for v in d.box), d.score) for d in detector.detect(small)
        ]
    else:
        found = detector.detect(image)
    return sorted(found, key=lambda d: (d.box[0], d.box[1]))


def crop_faces(
    image: np.ndarray, dets: Sequence[Detection], margin: float, size: int
) -> np.ndarray:
    """The model's input crops (N, size, size, 3) for the detections of one picture."""
    if not dets:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([square_crop(image, d.box, margin, size)[0] for d in dets])


def concat(crops: Sequence[np.ndarray], size: int) -> np.ndarray:
    return np.concatenate(crops) if crops else np.zeros((0, size, size, 3), np.uint8)


def split_rows(array: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Cut a stacked array back into consecutive pieces of the given lengths."""
    return np.split(array, np.cumsum(counts)[:-1]) if counts else []


def face_record(face: Face) -> dict:
    """A face as JSON: box, name, probability and the top-k candidates (CLI and API alike)."""
    return {
        "box": [round(float(v), 1) for v in face.box],
        "name": face.name,
        "probability": face.probability,
        "top": [{"name": n, "probability": p} for n, p in face.top],
    }


class Predictor:
    """Model + detector + settings, loaded once; safe to share between threads.

    The detector (animeface is C code not known to be thread-safe) and the Chainer model each sit
    behind their own lock, so one request can detect while another classifies.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        detector: Detector,
        margin: float,
        threshold: float,
        top_k: int = 3,
    ) -> None:
        self.recognizer, self.detector = recognizer, detector
        self.margin, self.threshold, self.top_k = margin, threshold, top_k
        self._detect_lock, self._model_lock = threading.Lock(), threading.Lock()

    @classmethod
    def load(cls, model_dir: str | Path, params: dict) -> Predictor:
        """From a model folder and validated params (detect_faces and predict sections)."""
        from charaid.detect import make_detector

        detect, predict = params["detect_faces"], params["predict"]
        return cls(
            Recognizer(model_dir),
            make_detector(detect),
            detect["margin"],
            predict["unknown_threshold"],
            predict["top_k"],
        )

    @property
    def classes(self) -> list[str]:
        return self.recognizer.classes

    def predict_many(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces of each picture; one forward pass for all the faces of all the pictures."""
        rec = self.recognizer
        dets, crops = [], []
        for image in images:
            with self._detect_lock:
                found = detect_sorted(self.detector, image)
            dets.append(found)
            crops.append(crop_faces(image, found, self.margin, rec.input_size))
        with self._model_lock:
            probs = rec.probabilities(concat(crops, rec.input_size))
        pieces = split_rows(probs, [len(d) for d in dets])
        return [
            rec.faces(d, p, self.threshold, self.top_k) for d, p in zip(dets, pieces, strict=True)
        ]

    def predict(self, image: np.ndarray) -> list[Face]:
        return self.predict_many([image])[0]
