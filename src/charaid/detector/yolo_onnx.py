"""The `onnx` backend of detect_faces: a YOLO-family face detector exported to ONNX (YOLOv8 and
its successors' output layout), run by OpenCV's DNN module (no extra runtime).

The frame is letterboxed the way ultralytics trains and exports these models (long side at the
input size, centred, padded with grey 114), given as RGB / 255 in NCHW, and the single output
(1, 4 + classes, anchors) is decoded: per anchor cx, cy, w, h in input pixels, then one score per
class (already a probability; YOLOv8 has no objectness). A face scores its best class. Boxes at
`min_score` or above are carried back to frame pixels, de-duplicated by NMS (IoU 0.45) and made
charaid's square boxes: the side is sqrt(w * h) about the box centre, as for YOLO ground truth
(`charaid.yolo.yolo_box`).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from charaid.detector.threshold import threshold
from charaid.errors import CharaidError

PAD_VALUE = 114  # the grey ultralytics letterboxes with
NMS_IOU = 0.45
KEY = "detect_faces.onnx"


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, int, int]:
    """`image` resized to fit `size` x `size` with its aspect ratio kept, centred on grey 114;
    with the resize factor and the left and top padding (input pixels)."""
    height, width = image.shape[:2]
    r = min(size / height, size / width)
    w, h = round(width * r), round(height * r)
    if (w, h) != (width, height):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - w) / 2, (size - h) / 2
    left, right = round(dw - 0.1), round(dw + 0.1)  # as ultralytics' LetterBox splits an odd pad
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    padded = cv2.copyMakeBorder(
        image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return padded, r, left, top


class OnnxDetector:
    """A YOLO-family (YOLOv8 layout) face detector in an .onnx file, through cv2.dnn."""

    name = "onnx"

    def __init__(
        self, path: str | Path, min_score: float | str, min_size: int, input_size: int = 640
    ):
        if not str(path):
            raise CharaidError(
                f"{KEY} is empty: name a YOLO face detector exported to ONNX (e.g. YOLOv8), "
                "or set detect_faces.backend to another backend"
            )
        self.path = Path(path)
        if not self.path.is_file():
            raise CharaidError(
                f"{KEY}: {self.path} not found; download one with `dvc import-url <url> "
                f"{self.path}`, or set detect_faces.backend to another backend"
            )
        try:
            self.net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error:
            self.net = None
        if self.net is None or self.net.empty():
            raise CharaidError(
                f"{KEY}: {self.path} is not an ONNX model OpenCV can read; download it again "
                "or re-export it (e.g. `yolo export format=onnx opset=12`)"
            )
        self.min_score = threshold(min_score, {}).lowest  # an export carries no cut of ours
        self.min_size = min_size
        self.input_size = input_size
        # run once on a blank input: a model of another layout stops here, not on the first frame
        self._output(np.zeros((1, 3, input_size, input_size), np.float32))

    def _output(self, blob: np.ndarray) -> np.ndarray:
        """The (4 + classes, anchors) output of one input blob; an error for another layout."""
        try:
            self.net.setInput(blob)
            out = self.net.forward()
        except cv2.error:
            raise CharaidError(
                f"{KEY}: {self.path} does not run on a {self.input_size} x {self.input_size} "
                "RGB input; export the detector for that size (e.g. `yolo export format=onnx "
                f"imgsz={self.input_size}`)"
            ) from None
        shape = tuple(out.shape)
        if len(shape) != 3 or shape[0] != 1 or shape[1] < 5 or shape[1] > shape[2]:
            raise CharaidError(
                f"{KEY}: {self.path} gives an output shaped {shape}, not YOLOv8's (1, 4 + "
                "classes, anchors); export a YOLOv8-family detector (YOLOv5 and older add an "
                "objectness column and are not supported)"
            )
        return out[0]

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list:
        """Faces in `image` (a copy of the frame resized by `scale`); boxes in frame pixels."""
        from charaid.boxes import Detection

        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        padded, r, left, top = letterbox(image, self.input_size)
        blob = cv2.dnn.blobFromImage(padded, 1 / 255, swapRB=True)  # RGB, NCHW, float32
        out = self._output(blob).astype(np.float64)
        scores = out[4:].max(axis=0)
        cx, cy, w, h = out[:4]
        keep = (scores >= self.min_score) & (w > 0) & (h > 0)
        if not keep.any():
            return []
        factor = r * scale  # input pixels per frame pixel
        cx = (cx[keep] - left) / factor
        cy = (cy[keep] - top) / factor
        w, h, scores = w[keep] / factor, h[keep] / factor, scores[keep]
        rects = [
            (float(x - bw / 2), float(y - bh / 2), float(bw), float(bh))
            for x, y, bw, bh in zip(cx, cy, w, h, strict=True)
        ]
        # every box left scores min_score or more; NMSBoxes keeps only scores strictly above a
        # threshold >= 0, so it gets them shifted to 1 and up (NMS only needs their order)
        ranks = (scores - self.min_score + 1.0).tolist()
        kept = cv2.dnn.NMSBoxes(rects, ranks, 0.0, NMS_IOU)
        found = []
        for i in np.ravel(kept):
            side = math.sqrt(w[i] * h[i])
            if side < self.min_size:
                continue
            box = (float(cx[i] - side / 2), float(cy[i] - side / 2), side, side)
            found.append(Detection(box, float(scores[i])))
        return found
