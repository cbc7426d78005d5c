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

from charaid.boxes import Box, Detection, Detector, square_crop
from charaid.config import Params, PredictParams
from charaid.errors import CharaidError
from charaid.models import build_model, resize_crops, to_input
from charaid.openset import GALLERY, Gallery, K, features_of
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

    def __init__(
        self,
        model_dir: str | Path,
        fast: bool | None = None,
        unknown_method: str = "softmax",
        unknown_quantile: float = 0.02,
        unknown_k: int = K,
    ) -> None:
        """`unknown_method`: softmax (top probability under the threshold given to `name`) or
        knn (feature-space similarity to the training faces, see `charaid.openset`)."""
        model_dir = Path(model_dir)
        meta_path, npz_path = model_dir / "model.json", model_dir / "model.npz"
        if not meta_path.is_file() or not npz_path.is_file():
            raise CharaidError(
                f"{model_dir}: no trained model (model.npz + model.json); run `dvc repro train`"
            )
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.classes: list[str] = list(self.meta["classes"])
            self.input_size: int = int(self.meta["input_size"])
            self.meta["model"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CharaidError(f"{meta_path}: damaged ({exc}); run `dvc repro train`") from None
        use_fast = self.meta.get("fast", True) if fast is None else fast
        try:
            self.model = build_model(self.meta["model"], len(self.classes), fast=use_fast)
        except ValueError as exc:  # a model.json from a newer or another charaid
            raise CharaidError(f"{meta_path}: {exc}; run `dvc repro train`") from None
        try:
            serializers.load_npz(str(npz_path), self.model)
        except (KeyError, ValueError, OSError, EOFError) as exc:
            raise CharaidError(f"{npz_path}: does not match model.json ({exc})") from None
        self.one_vs_rest: str = self.meta.get("one_vs_rest", "")
        # trained on mirrored crops (train.augment): named from the mean of both views
        self.mirror: bool = bool(self.meta.get("mirror", False))
        self.method = unknown_method
        self.gallery = (
            Gallery(model_dir / GALLERY, unknown_quantile, unknown_k)
            if unknown_method == "knn"
            else None
        )

    @classmethod
    def from_params(cls, model_dir: str | Path, predict: PredictParams) -> Recognizer:
        """With the open-set settings of params.yaml's predict section."""
        return cls(
            model_dir,
            unknown_method=predict.unknown_method,
            unknown_quantile=predict.unknown_quantile,
            unknown_k=predict.unknown_k,
        )

    def outputs(self, crops: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Softmax probabilities (N, classes) and features (N, D; (0, 0) for no crops) of uint8
        BGR crops (resized to the model's input size if need be), in one pass of the network."""
        crops = resize_crops(crops, self.input_size) if len(crops) else crops
        out = [np.zeros((0, len(self.classes)), np.float32)]
        feats = []
        for i in range(0, len(crops), batch):
            h = features_of(self.model, to_input(crops[i : i + batch]), batch, self.mirror)
            with chainer.using_config("train", False), chainer.no_backprop_mode():
                out.append(F.softmax(self.model.head(h)).array)
            feats.append(h)
        no_faces = np.zeros((0, 0), np.float32)
        return np.concatenate(out), (np.concatenate(feats) if feats else no_faces)

    def open_set_scores(self, feats: np.ndarray) -> np.ndarray | None:
        """Each face's open-set score from its features; None with the softmax check."""
        if self.gallery is None or not len(feats):
            return None
        return self.gallery.scores(feats)

    def probabilities(self, crops: np.ndarray, batch: int = 256, scores: bool = False):
        """Softmax probabilities (N, classes) for uint8 BGR crops (resized to the model's input
        size if need be); with `scores`, also each face's open-set score (None for softmax)."""
        probs, feats = self.outputs(crops, batch)
        return (probs, self.open_set_scores(feats)) if scores else probs

    def name(
        self, probs: np.ndarray, threshold: float, top_k: int = 3, score: float | None = None
    ) -> tuple[str, list]:
        """Top name (or unknown) and the top-k (name, probability) list.

        Unknown: with the knn method, `score` under the calibrated threshold; with softmax, the
        top probability under `threshold`.
        """
        order = np.argsort(-probs, kind="stable")[:top_k]
        top = [(self.classes[i], round(float(probs[i]), 4)) for i in order]
        if self.gallery is not None and score is not None:
            known = score >= self.gallery.threshold
        else:
            known = top[0][1] >= threshold
        return (top[0][0] if known else UNKNOWN), top

    def faces(
        self,
        dets: Sequence[Detection],
        probs: np.ndarray,
        threshold: float,
        top_k: int = 3,
        scores: np.ndarray | None = None,
    ) -> list[Face]:
        """Named faces from detections and their class probabilities (same order)."""
        faces = []
        for i, (det, row) in enumerate(zip(dets, probs, strict=True)):
            name, top = self.name(row, threshold, top_k, None if scores is None else scores[i])
            faces.append(Face(det.box, name, top[0][1], top))
        return faces

    def name_crops(
        self,
        crops: Sequence[np.ndarray],
        dets: Sequence[Sequence[Detection]],
        threshold: float,
        top_k: int = 3,
    ) -> list[list[Face]]:
        """Named faces of each picture from its crops (`crop_faces`) and detections: one
        forward pass for the faces of all the pictures (predict and detect-eval alike)."""
        probs, scores = self.probabilities(concat(crops, self.input_size), scores=True)
        counts = [len(d) for d in dets]
        pieces = split_by_counts(probs, counts)
        score_pieces = split_by_counts(scores, counts) if scores is not None else [None] * len(dets)
        return [
            self.faces(d, p, threshold, top_k, s)
            for d, p, s in zip(dets, pieces, score_pieces, strict=True)
        ]

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


def split_by_counts(array: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
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
    def load(cls, model_dir: str | Path, params: Params) -> Predictor:
        """From a model folder and validated params (detect_faces and predict sections)."""
        from charaid.detect import make_detector

        detect, predict = params.detect_faces, params.predict
        return cls(
            Recognizer.from_params(model_dir, predict),
            make_detector(detect),
            detect.margin,
            predict.unknown_threshold,
            predict.top_k,
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
            return rec.name_crops(crops, dets, self.threshold, self.top_k)

    def predict(self, image: np.ndarray) -> list[Face]:
        return self.predict_many([image])[0]
