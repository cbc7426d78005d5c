"""Pictures for people: one colour per character, labelled boxes, contact sheets of crops."""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from charaid.boxes import Box, match, square_crop
from charaid.media import read_image

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


def contact_sheet(
    groups: dict[str, Sequence[np.ndarray]],
    per_row: int = 16,
    captions: dict[str, str] | None = None,
) -> np.ndarray:
    """One row per class: its name, a caption (default: the crop count), and up to `per_row`
    crops."""
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
        cv2.putText(sheet, name, (14, y + side // 2), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(
            sheet,
            (captions or {}).get(name, f"{len(images)} crops"),
            (14, y + side // 2 + 20),
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


TRUTH_COLOR, DETECTION_COLOR = (60, 190, 60), (40, 40, 230)  # BGR: green, red
LEGEND_BAND = 56  # px above an error sheet: its title and the box colours' meaning


def _in_context(image: np.ndarray, box: Box, truths, preds, side: int) -> np.ndarray:
    """A square of twice `box`'s side around it, with every truth and detection box drawn."""
    crop, (x0, y0, s, _) = square_crop(image, box, 0.5, side)
    k = side / s
    for boxes, color in ((truths, TRUTH_COLOR), (preds, DETECTION_COLOR)):
        for x, y, w, h in boxes:
            p0 = (int((x - x0) * k), int((y - y0) * k))
            p1 = (int((x + w - x0) * k), int((y + h - y0) * k))
            cv2.rectangle(crop, p0, p1, color, 2)
    return crop


def error_sheet(
    frames: Iterable[tuple[Path, Sequence[Box], Sequence[Box]]],
    min_iou: float,
    per_row: int = 12,
    side: int = 96,
) -> np.ndarray:
    """Where a face detector fails, to look at rather than count: a row of missed faces and a
    row of false detections, each in its frame's context with the truth boxes (green) and the
    detections (red) drawn. `frames` gives (picture, detections, truths); a face is found
    when a detection overlaps it by `min_iou` (as in the scores). Rows show the first
    `per_row` cases in frame order, and count them all."""
    missed: list[np.ndarray] = []
    false: list[np.ndarray] = []
    n_missed = n_false = 0
    for path, preds, truths in frames:
        pairs = match(preds, truths, min_iou)
        found, hits = {j for _, j in pairs}, {i for i, _ in pairs}
        lost = [t for j, t in enumerate(truths) if j not in found]
        extra = [p for i, p in enumerate(preds) if i not in hits]
        n_missed, n_false = n_missed + len(lost), n_false + len(extra)
        lost, extra = lost[: per_row - len(missed)], extra[: per_row - len(false)]
        if not lost and not extra:
            continue  # only frames with a case still to show are decoded
        image = read_image(path)
        if image is None:
            continue
        missed += [_in_context(image, b, truths, preds, side) for b in lost]
        false += [_in_context(image, b, truths, preds, side) for b in extra]
    rows = {"missed faces": (missed, n_missed), "false detections": (false, n_false)}
    shown = {name: crops for name, (crops, n) in rows.items() if n}  # no empty rows
    captions = {name: f"{n} in all" for name, (_, n) in rows.items()}
    none = [name for name, (_, n) in rows.items() if not n]
    title = f"Detection errors at IoU {min_iou:g}" + (
        f" (no {' and no '.join(none)})" if none else ""
    )
    sheet = (
        contact_sheet(shown, per_row, captions) if shown else np.full((8, 640, 3), 255, np.uint8)
    )
    return with_legend(sheet, title)


def with_legend(sheet: np.ndarray, title: str) -> np.ndarray:
    """`sheet` under a band with its title and what the box colours mean."""
    band = np.full((LEGEND_BAND, max(sheet.shape[1], 640), 3), 255, np.uint8)
    cv2.putText(band, title, (14, 22), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    x = 14
    for color, text in ((TRUTH_COLOR, "truth face"), (DETECTION_COLOR, "detection")):
        cv2.rectangle(band, (x, 34), (x + 26, 50), color, 2)
        cv2.putText(band, text, (x + 34, 48), _FONT, 0.5, (60, 60, 60), 1, cv2.LINE_AA)
        x += 34 + cv2.getTextSize(text, _FONT, 0.5, 1)[0][0] + 30
    body = np.full((sheet.shape[0], band.shape[1], 3), 255, np.uint8)
    body[:, : sheet.shape[1]] = sheet
    return np.vstack([band, body])
