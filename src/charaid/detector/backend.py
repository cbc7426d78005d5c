"""The `learned` backend of detect_faces: FaceNet's weights from `models/detector/`, run on a frame.

The frame is resized so that its long side is the input size the detector was trained for,
padded to a multiple of 64 and run once; boxes come back in frame pixels. The folder holds
`detector.npz` (weights) and `detector.json` (architecture and input size), written by the
`train_detector` stage.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
from chainer import serializers

from charaid.atomic import write_json, write_npz
from charaid.detector.folded import fold
from charaid.detector.heatmap import decode, sigmoid
from charaid.detector.net import ALIGN, HEAT, SIZE, FaceNet
from charaid.detector.threshold import threshold
from charaid.errors import CharaidError

WEIGHTS, META = "detector.npz", "detector.json"
KIND = "charaid-facenet"


def save(model: FaceNet, folder: Path, input_size: int, extra: dict | None = None) -> None:
    """Weights and description, each written whole (temp file, then rename)."""
    weights = serializers.DictionarySerializer()  # what save_npz writes, without timestamps
    weights.save(model)
    write_npz(folder / WEIGHTS, weights.target)
    write_json(
        folder / META, {"kind": KIND, "input_size": input_size, **model.describe(), **(extra or {})}
    )


UNTRAINED = (
    "train_detector had nothing to learn from: list YOLO folders in train_detector.scenes, "
    "ground truth in train_detector.truth or set train_detector.pseudo: animeface, and run "
    "`dvc repro train_detector`; or set detect_faces.backend to animeface"
)


def save_untrained(folder: Path) -> None:
    """A detector folder that only says no detector could be trained, and why."""
    for stale in (folder / WEIGHTS, folder / META):
        stale.unlink(missing_ok=True)
    write_json(folder / META, {"kind": KIND, "trained": False})


def load(folder: str | Path, fast: bool = True) -> tuple[FaceNet, dict]:
    """(model, description) from a detector folder; one clear error for a missing or wrong one."""
    folder = Path(folder)
    meta_path, weights_path = folder / META, folder / WEIGHTS
    if not meta_path.is_file():
        raise CharaidError(
            f"{folder}: no trained detector ({META} and {WEIGHTS}); run `dvc repro "
            "train_detector`, or set detect_faces.backend to animeface"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise CharaidError(f"{meta_path}: not a charaid face detector description")
    if meta.get("trained") is False:
        raise CharaidError(f"{folder}: no detector was trained: {UNTRAINED}")
    if not weights_path.is_file():
        raise CharaidError(f"{weights_path}: missing; run `dvc repro train_detector`")
    model = FaceNet(tuple(meta["widths"]), meta["neck"], fast=fast)
    try:
        serializers.load_npz(str(weights_path), model)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise CharaidError(f"{weights_path}: not the weights of this detector ({e})") from None
    return model, meta


def letterbox(image: np.ndarray, input_size: int) -> tuple[np.ndarray, float]:
    """(1, 3, H, W) float32 input with the long side at `input_size`, zero-padded right and down
    to multiples of 64, and the resize factor."""
    height, width = image.shape[:2]
    scale = input_size / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (w, h), interpolation=interp)
    pw, ph = -(-w // ALIGN) * ALIGN, -(-h // ALIGN) * ALIGN
    x = np.zeros((1, 3, ph, pw), np.float32)
    x[0, :, :h, :w] = resized.transpose(2, 0, 1) * np.float32(1 / 255)
    return x, scale


def head_maps(run, x: np.ndarray, mirror: bool) -> np.ndarray:
    """Raw head maps (4, h, w) of one letterboxed input (1, 3, H, W), from `run` (a folded
    FaceNet). With `mirror`, the input and its mirror image go through as one batch of two and
    their face-centre probabilities and log sides are averaged, the mirror's flipped back
    (CenterNet's flip test); the centre offsets are the input's own. H and W are multiples of
    the stride, so the flipped maps line up cell for cell."""
    if not mirror:
        return run(x)[0]
    both = run(np.concatenate([x, x[..., ::-1]]))
    maps, flipped = both[0].copy(), both[1][..., ::-1]
    heat = (sigmoid(maps[HEAT]) + sigmoid(flipped[HEAT])) / 2
    heat = np.clip(heat, 1e-6, 1 - 1e-6)
    maps[HEAT] = np.log(heat / (1 - heat))  # back to a logit: decode takes raw maps
    maps[SIZE] = (maps[SIZE] + flipped[SIZE]) / 2
    return maps


class LearnedDetector:
    """charaid's own CNN (`charaid.detector`), trained by the train_detector stage."""

    name = "learned"

    def __init__(self, folder: str | Path, min_score: float | str, min_size: int) -> None:
        model, self.meta = load(folder)
        self.net = fold(model)  # batch norm folded into the convolutions: inference only
        self.input_size = int(self.meta["input_size"])
        self.min_score = threshold(min_score, self.meta)
        self.min_size = min_size
        self.mirror = bool(self.meta.get("mirror", False))  # train_detector.mirror

    def maps(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Raw head maps (4, h, w) of one BGR picture, and its resize factor."""
        x, scale = letterbox(image, self.input_size)
        return head_maps(self.net, x, self.mirror), scale

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list:
        """Faces in `image` (a copy of the frame resized by `scale`); boxes in frame pixels."""
        from charaid.boxes import Detection

        maps, factor = self.maps(image)
        found = decode(maps, self.min_score, factor * scale)
        return [Detection(box, s) for box, s in found if box[2] >= self.min_size]
