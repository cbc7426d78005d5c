"""Boxes as (x, y, w, h) in pixels: IoU, greedy matching, square crops with margin; and what
every face detector returns (`Detection`) and is (`Detector`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]: ...


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 for disjoint or empty boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


def covered(a: Box, b: Box) -> float:
    """The share of `a`'s area that lies inside `b` (0 for an empty `a`)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0 or aw * ah <= 0:
        return 0.0
    return float(iw * ih / (aw * ah))


def match(preds: Sequence[Box], truths: Sequence[Box], min_iou: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, highest IoU first; pairs (pred index, truth index)."""
    pairs = []
    for i, p in enumerate(preds):
        for j, t in enumerate(truths):
            v = iou(p, t)
            if v >= min_iou:
                pairs.append((v, i, j))
    pairs.sort(key=lambda item: (-item[0], item[1], item[2]))
    used_p: set[int] = set()
    used_t: set[int] = set()
    result = []
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            result.append((i, j))
    return sorted(result)


def rescale(box: Box, factor: float) -> Box:
    """Scale a box about its centre."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return (cx - w * factor / 2, cy - h * factor / 2, w * factor, h * factor)


def square_crop(image: np.ndarray, box: Box, margin: float, size: int) -> tuple[np.ndarray, Box]:
    """A square crop around `box` grown by `margin` per side, resized to size x size.

    Parts outside the frame are filled by replicating the border, so a face at the edge keeps
    its place in the crop. Returns the crop and the (unclipped) crop box.
    """
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    H, W = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + s - W, y0 + s - H)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    region = image[y0 + pad : y0 + pad + s, x0 + pad : x0 + pad + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp), (x0, y0, s, s)
