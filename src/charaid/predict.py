"""Recognise faces with a trained model: classify crops, or detect then classify a picture."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import chainer
import chainer.functions as F
import numpy as np
from chainer import serializers

from charaid.boxes import Box, square_crop
from charaid.detect import Detector
from charaid.errors import CharaidError
from charaid.models import build_model
from charaid.train import to_input
from charaid.visualize import UNKNOWN


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
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.classes: list[str] = self.meta["classes"]
        self.input_size: int = self.meta["input_size"]
        use_fast = self.meta.get("fast", True) if fast is None else fast
        self.model = build_model(self.meta["model"], len(self.classes), fast=use_fast)
        try:
            serializers.load_npz(str(npz_path), self.model)
        except (KeyError, ValueError) as exc:
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

    def recognize(self, image: np.ndarray, detector: Detector, margin: float,
                  threshold: float, top_k: int = 3) -> list[Face]:
        """Detect faces in a BGR picture and name each."""
        dets = sorted(detector.detect(image), key=lambda d: (d.box[0], d.box[1]))
        if not dets:
            return []
        crops = np.stack([square_crop(image, d.box, margin, self.input_size)[0] for d in dets])
        faces = []
        for det, probs in zip(dets, self.probabilities(crops), strict=True):
            name, top = self.name(probs, threshold, top_k)
            faces.append(Face(det.box, name, top[0][1], top))
        return faces
