"""Faces pasted onto backgrounds (Cut-Paste-Learn): more faces, in more places, at more sizes.

A crop is pasted at a given square on the background with one of three blends: `hard` (the
crop as it is), `feathered` (its border fades out, so no sharp seam tells the net where to look)
or `poisson` (OpenCV's seamless clone: the crop takes on the background's light). The face box
is the crop's own face box carried to the pasted square.
"""

from __future__ import annotations

import cv2
import numpy as np

from charaid.boxes import Box

BLENDS = ("hard", "feathered", "poisson")


def face_in_crop(side: int, face: float) -> Box:
    """The face box of a square crop of `side` whose face fills `face` of it, centred."""
    s = side * face
    return ((side - s) / 2, (side - s) / 2, s, s)


def carry(box: Box, scale: float, dx: float, dy: float, flip_width: float | None = None) -> Box:
    """`box` after the picture is scaled by `scale`, moved by (dx, dy) and, with `flip_width`,
    mirrored left-right in a picture that wide (after the move)."""
    x, y, w, h = (v * scale for v in box)
    x, y = x + dx, y + dy
    if flip_width is not None:
        x = flip_width - x - w
    return (x, y, w, h)


def _feather(side: int) -> np.ndarray:
    """Alpha (side, side, 1): 1 inside, falling to 0 over the outer eighth of the crop."""
    ramp = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / max(1, side / 8)
    ramp = np.clip(ramp, 0, 1).astype(np.float32)
    return np.minimum.outer(ramp, ramp)[..., None]


def paste(
    background: np.ndarray, crop: np.ndarray, x: int, y: int, side: int, blend: str = "hard"
) -> np.ndarray:
    """A copy of `background` with `crop` resized to `side` and pasted with its top-left corner
    at (x, y); the parts outside the background are cut off."""
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    out = background.copy()
    height, width = out.shape[:2]
    piece = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + side, width), min(y + side, height)
    if x0 >= x1 or y0 >= y1:
        return out
    part = piece[y0 - y : y1 - y, x0 - x : x1 - x]
    if blend == "poisson" and (x0, y0, x1, y1) == (x, y, x + side, y + side) and side >= 8:
        # seamlessClone wants the whole source inside the destination, away from its border
        inner = x > 0 and y > 0 and x1 < width and y1 < height
        if inner:
            mask = np.full(piece.shape[:2], 255, np.uint8)
            centre = (x + side // 2, y + side // 2)
            return cv2.seamlessClone(piece, out, mask, centre, cv2.NORMAL_CLONE)
    if blend == "hard":
        out[y0:y1, x0:x1] = part
        return out
    alpha = _feather(side)[y0 - y : y1 - y, x0 - x : x1 - x]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (alpha * part + (1 - alpha) * region).astype(np.uint8)
    return out
