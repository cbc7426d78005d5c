"""Pictures for people: one colour per character, labelled boxes, contact sheets of crops."""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Sequence

import cv2
import numpy as np

from charaid.boxes import Box

UNKNOWN = "unknown"
_FONT = cv2.FONT_HERSHEY_SIMPLEX


# Well-separated colours (BGR) for a model's classes, in class order.
PALETTE = [
    (60, 76, 231),
    (113, 204, 46),
    (219, 152, 52),
    (15, 196, 241),
    (182, 89, 155),
    (34, 126, 230),
    (156, 188, 26),
    (203, 192, 255),
    (0, 84, 211),
    (160, 222, 255),
    (133, 0, 128),
    (255, 255, 0),
]


def class_color(name: str, classes: Sequence[str] = ()) -> tuple[int, int, int]:
    """A fixed BGR colour per class: by position among the model's `classes` (distinct), else
    derived from the name (stable across runs, but two names may look alike)."""
    if name == UNKNOWN:
        return (160, 160, 160)
    if name in classes and len(classes) <= len(PALETTE):
        return PALETTE[list(classes).index(name)]
    hue = int(hashlib.md5(name.encode("utf-8")).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_label(image: np.ndarray, text: str, x: int, y: int, color: tuple, scale: float) -> None:
    """Text on a filled tag whose top-left is (x, y), kept inside the image."""
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    H, W = image.shape[:2]
    x = int(min(max(0, x), max(0, W - tw - 4)))
    y = int(min(max(0, y), max(0, H - th - base - 4)))
    cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 4), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, y + th + 2), _FONT, scale, ink, thickness, cv2.LINE_AA)


def draw_faces(
    image: np.ndarray, faces: Sequence[tuple[Box, str, float]], classes: Sequence[str] = ()
) -> np.ndarray:
    """A copy of `image` with a box and `name 0.93` on each face, legible at any image size."""
    out = image.copy()
    H, W = out.shape[:2]
    scale = max(0.4, min(W, H) / 900)
    for (x, y, w, h), name, prob in faces:
        color = class_color(name, classes)
        p0, p1 = (int(x), int(y)), (int(x + w), int(y + h))
        cv2.rectangle(out, p0, p1, color, max(2, int(round(scale * 3))))
        label = f"{name} {prob:.2f}"
        (_, th), base = cv2.getTextSize(label, _FONT, scale, max(1, int(round(scale * 2))))
        above = int(y) - th - base - 4
        draw_label(out, label, int(x), above if above >= 0 else int(y + h), color, scale)
    return out


def contact_sheet(groups: dict[str, Sequence[np.ndarray]], per_row: int = 16) -> np.ndarray:
    """One row per class: its name, count, and up to `per_row` crops."""
    if not groups:
        return np.full((40, 200, 3), 255, np.uint8)
    side = (
        max(img.shape[0] for imgs in groups.values() for img in imgs[:1])
        if any(len(v) for v in groups.values())
        else 50
    )
    label_w = 180
    sheet = np.full(
        (len(groups) * (side + 8) + 8, label_w + per_row * (side + 4) + 4, 3), 255, np.uint8
    )
    for r, (name, images) in enumerate(groups.items()):
        y = 8 + r * (side + 8)
        cv2.putText(sheet, name, (6, y + side // 2), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(
            sheet,
            f"{len(images)} crops",
            (6, y + side // 2 + 20),
            _FONT,
            0.45,
            (90, 90, 90),
            1,
            cv2.LINE_AA,
        )
        cv2.rectangle(sheet, (2, y), (8, y + side), class_color(name), -1)
        for c, img in enumerate(images[:per_row]):
            x = label_w + c * (side + 4)
            sheet[y : y + side, x : x + side] = cv2.resize(img, (side, side))
    return sheet
