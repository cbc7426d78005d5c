"""FaceNet's targets and outputs: faces <-> maps at stride 4 (CenterNet's encoding).

A face (square box, side s, centre c) is a Gaussian bump on the heat map peaking at 1 in the cell
holding c, with a spread that grows with the face (TTFNet's 0.54 * side / 6, at least one cell),
the log of s in cells, and c's offset inside its cell. Decoding keeps each heat-map peak (a cell
not beaten by its 3x3 neighbours) above a score and turns it back into a box; greedy non-maximum
suppression drops what is left of duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence

import chainer
import chainer.functions as F
import cv2
import numpy as np

from charaid.boxes import Box, iou
from charaid.detector.net import HEAT, OFFSET_X, OFFSET_Y, SIZE, STRIDE
from charaid.detector.threshold import Cut

REGRESS_FROM = 0.3  # cells whose bump for a face is at least this regress that face's side
# The least spread of a bump, in cells. Hand-drawn boxes put a small face's centre a cell or so
# off, so a sharper bump punishes the cell next to the marked one as background and the net
# learns low, hedged peaks there: icartoonface (half its faces under 10% of the frame), R / P
# 0.442 / 0.732 -> 0.510 / 0.666 at IoU 0.5 with 1.0 against 0.5 (docs/measurements.md)
MIN_SPREAD = 1.0


def encode(boxes: Sequence[Box], height: int, width: int) -> dict[str, np.ndarray]:
    """Targets for a (height x width) input.

    - `heat` (h, w) in [0, 1]: a bump per face, 1 at its centre cell;
    - `centre`, `offset`: each face's centre cell (flat index) and the centre's position in it
      (x, y in [0, 1));
    - `where`, `size`, `weight`: the cells that regress a face's side (flat index), its log
      side in cells and the face's bump there. Every cell near a centre regresses the side, not
      only the centre (TTFNet): many more training signals per face, so the side head learns
      in far fewer steps; a cell near two faces regresses the smaller.
    """
    h, w = height // STRIDE, width // STRIDE
    heat = np.zeros((h, w), np.float32)
    owner = np.full((h, w), -1, np.int64)
    bumps = np.zeros((h, w), np.float32)
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    faces = []
    for x0, y0, bw, bh in boxes:
        side = float(np.sqrt(bw * bh)) / STRIDE
        cx, cy = (x0 + bw / 2) / STRIDE, (y0 + bh / 2) / STRIDE
        ix, iy = int(np.floor(cx)), int(np.floor(cy))
        if 0 <= ix < w and 0 <= iy < h and side > 0:
            faces.append((side, cx, cy, ix, iy))  # a centre outside: not this input's face
    faces.sort(reverse=True)  # large faces first: a cell near two faces ends with the smaller
    for k, (side, _, _, ix, iy) in enumerate(faces):
        sigma = max(0.54 * side / 6, MIN_SPREAD)
        bump = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
        np.maximum(heat, bump, out=heat)
        mine = bump >= REGRESS_FROM
        owner[mine], bumps[mine] = k, bump[mine]
    where = np.flatnonzero(owner >= 0)
    sides = np.log(np.array([f[0] for f in faces], np.float32))
    return {
        "heat": heat,
        "centre": np.array([f[4] * w + f[3] for f in faces], np.int32),
        "offset": np.array([(f[1] - f[3], f[2] - f[4]) for f in faces], np.float32).reshape(-1, 2),
        "where": where.astype(np.int32),
        "size": sides[owner.ravel()[where]] if len(faces) else np.zeros(0, np.float32),
        "weight": bumps.ravel()[where],
    }


def collate(targets: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batch: heat (N, h, w); flat indexes into (N * h * w) with their values."""
    cells = targets[0]["heat"].size

    def cat(key: str) -> np.ndarray:
        return np.concatenate([t[key] for t in targets])

    return {
        "heat": np.stack([t["heat"] for t in targets]),
        "centre": np.concatenate([t["centre"] + i * cells for i, t in enumerate(targets)]),
        "offset": cat("offset").reshape(-1, 2).astype(np.float32),
        "where": np.concatenate([t["where"] + i * cells for i, t in enumerate(targets)]),
        "size": cat("size").astype(np.float32),
        "weight": cat("weight").astype(np.float32),
    }


def loss(maps: chainer.Variable, batch: dict[str, np.ndarray]) -> tuple[chainer.Variable, dict]:
    """CenterNet's penalty-reduced focal loss on the heat map and L1 on the centre offsets (each
    divided by the number of faces), and L1 on the log side at the regression cells weighted by
    their bump (divided by the weights' sum)."""
    logit = maps[:, HEAT]
    heat = batch["heat"]
    faces = max(1, len(batch["centre"]))
    p = F.sigmoid(logit)
    peak = (heat >= 1.0).astype(np.float32)  # the centre cells
    log_p, log_q = -F.softplus(-logit), -F.softplus(logit)
    pos = -F.sum(peak * log_p * (1 - p) ** 2)
    neg = -F.sum((1 - peak) * ((1 - heat) ** 4) * log_q * p**2)
    heat_loss = (pos + neg) / faces

    def at(channel: int, cells: np.ndarray) -> chainer.Variable:
        return F.embed_id(cells, F.reshape(maps[:, channel], (-1, 1)))[:, 0]

    if len(batch["centre"]):
        off, centre = batch["offset"], batch["centre"]
        off_err = F.absolute(at(OFFSET_X, centre) - off[:, 0])
        off_err += F.absolute(at(OFFSET_Y, centre) - off[:, 1])
        off_loss = F.sum(off_err) / faces
        weight = batch["weight"]
        size_err = F.absolute(at(SIZE, batch["where"]) - batch["size"])
        size_loss = F.sum(weight * size_err) / float(weight.sum())
    else:
        size_loss = off_loss = chainer.Variable(np.zeros((), np.float32))  # a batch of no faces
    total = heat_loss + size_loss + off_loss
    return total, {"heat": heat_loss, "size": size_loss, "offset": off_loss}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def decode(
    maps: np.ndarray, min_score: float | Cut, scale: float = 1.0, max_faces: int = 100
) -> list[tuple[Box, float]]:
    """Faces of one picture's raw head maps (4, h, w): (box, score) with boxes in input pixels
    divided by `scale` (the factor the picture was resized by), best first, duplicates dropped.
    A face is kept when it scores at least `min_score`, or its size band's cut in a `Cut`.

    A face's side is the mean of the log sides around its peak (3 x 3 cells, weighted by the
    heat map): every cell near a centre learned the side, and their mean errs less than the
    peak alone (demo, held-out episodes: 0.86 -> 0.94 of faces found at IoU 0.5)."""
    cut = min_score if isinstance(min_score, Cut) else Cut.uniform(min_score)
    heat = sigmoid(maps[HEAT])
    peaks = (heat == cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat >= cut.lowest)
    iy, ix = np.nonzero(peaks)
    order = np.argsort(-heat[iy, ix], kind="stable")
    h, w = heat.shape
    found = []
    for k in order:
        y, x = iy[k], ix[k]
        near = np.s_[max(0, y - 1) : min(h, y + 2), max(0, x - 1) : min(w, x + 2)]
        log_side = float((heat[near] * maps[SIZE][near]).sum() / heat[near].sum())
        side = float(np.exp(np.clip(log_side, -4, 8))) * STRIDE  # input pixels
        if heat[y, x] < cut.at(side):
            continue
        if len(found) == max_faces:
            break
        side /= scale
        cx = (x + float(maps[OFFSET_X, y, x])) * STRIDE / scale
        cy = (y + float(maps[OFFSET_Y, y, x])) * STRIDE / scale
        found.append(((cx - side / 2, cy - side / 2, side, side), float(heat[y, x])))
    return nms(found, 0.4)


def nms(found: list[tuple[Box, float]], max_iou: float) -> list[tuple[Box, float]]:
    """Greedy non-maximum suppression over (box, score), best score first."""
    kept: list[tuple[Box, float]] = []
    for box, score in sorted(found, key=lambda f: -f[1]):
        if all(iou(box, k[0]) < max_iou for k in kept):
            kept.append((box, score))
    return kept
