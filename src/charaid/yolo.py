"""YOLO-annotated picture folders: the format of annotated scenes (detect-eval, train_detector).

One `<picture stem>.txt` beside each picture (or in the `labels/` twin of an `images/` folder),
one line `class cx cy w h` per face, normalised to the picture size; a picture without a box file
has no faces (YOLO's convention). `classes.txt` (in the folder or up to three folders above it)
names the classes, one per line.

Boxes are whatever the annotator drew, usually a rectangle from hairline or brows to chin.
charaid's detectors give squares, so each box is read as a square of the same area (side
sqrt(w * h)) about its own centre.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from charaid.boxes import Box
from charaid.errors import CharaidError
from charaid.media import IMAGE_EXTS, list_media

CLASSES_FILE = "classes.txt"
EDGE = 0.02  # how far (in picture sides) a box may stick out of its picture: rounding slack


def yolo_box(cx: float, cy: float, w: float, h: float, width: int, height: int) -> Box:
    """A normalised YOLO box as a canonical square: same centre, same area."""
    side = math.sqrt(w * width * h * height)
    return (cx * width - side / 2, cy * height - side / 2, side, side)


def classes_file(folder: Path) -> Path | None:
    """`classes.txt` in `folder` or up to three folders above it."""
    for where in [folder, *list(folder.resolve().parents)[:3]]:
        if (where / CLASSES_FILE).is_file():
            return where / CLASSES_FILE
    return None


def find_classes(folder: Path) -> list[str] | None:
    """The class names of `classes.txt` in `folder` or up to three folders above it."""
    path = classes_file(folder)
    if path is None:
        return None
    names = [n.strip() for n in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise CharaidError(f"{path}: empty; write one class name per line")
    return names


def read_boxes(
    path: Path, width: int, height: int, classes: int | None = None
) -> list[tuple[int, Box]]:
    """(class id, square box in pixels) of each line of a YOLO box file for a `width` x
    `height` picture. A malformed line, a class id beyond `classes`, or a box outside the
    picture stops with the file and line."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            if len(fields) < 5:
                raise ValueError
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:5])
            if w <= 0 or h <= 0 or cls < 0:
                raise ValueError
        except ValueError:
            raise CharaidError(
                f"{where}: expected 'class cx cy w h' (class a whole number >= 0, the rest "
                "normalised to the picture, w and h > 0)"
            ) from None
        if classes is not None and cls >= classes:
            raise CharaidError(
                f"{where}: class {cls}, but {CLASSES_FILE} names {classes} "
                f"(ids 0..{classes - 1}); fix the id or add the class"
            )
        low, high = -EDGE, 1 + EDGE
        if cx - w / 2 < low or cy - h / 2 < low or cx + w / 2 > high or cy + h / 2 > high:
            raise CharaidError(
                f"{where}: box outside the picture (cx cy w h must be normalised to 0..1; "
                "pixel coordinates?)"
            )
        found.append((cls, yolo_box(cx, cy, w, h, width, height)))
    return found


def read_yolo(path: Path, width: int, height: int) -> list[Box]:
    """Face boxes of one YOLO box file, whatever their class."""
    return [box for _, box in read_boxes(path, width, height)]


def box_file(picture: Path) -> Path | None:
    """The YOLO box file of a picture: beside it, or in the `labels/` twin of `images/`."""
    beside = picture.with_suffix(".txt")
    if beside.is_file():
        return beside
    parts = list(picture.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        twin = Path(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
        if twin.is_file():
            return twin
    return None


def yolo_pictures(folder: str | Path) -> list[tuple[Path, Path | None]]:
    """(picture, box file or None) for every picture under `folder`; an error if there are no
    pictures or none has a box file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CharaidError(f"{folder}: no such folder (expected pictures with YOLO .txt files)")
    pictures = list_media(folder, IMAGE_EXTS)
    if not pictures:
        raise CharaidError(f"{folder}: no pictures found (expected pictures with YOLO .txt files)")
    pairs = [(p, box_file(p)) for p in pictures]
    missing = sum(1 for _, b in pairs if b is None)
    if missing == len(pairs):
        raise CharaidError(
            f"{folder}: none of the {len(pairs)} pictures has a YOLO box file "
            "(<picture>.txt beside it, one line 'class cx cy w h' per face)"
        )
    if missing:
        print(
            f"warning: {missing} of {len(pairs)} pictures have no box file: taken as pictures "
            "without faces (YOLO's convention)",
            file=sys.stderr,
        )
    return pairs


def picture_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the picture's header, None if it is not a readable picture."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError):
        return None


def read_labeled_folder(
    folder: str | Path,
) -> list[tuple[Path, tuple[int, int] | None, list[tuple[int, Box]]]]:
    """Every picture of a YOLO folder with its size and (class id, face box) pairs, all box
    files checked first (so that a bad line stops before any work is done). Unreadable
    pictures get size None and no boxes."""
    folder = Path(folder)
    pairs = yolo_pictures(folder)
    classes = find_classes(folder)
    count = len(classes) if classes else None
    out = []
    for picture, boxes in pairs:
        size = picture_size(picture)
        out.append((picture, size, read_boxes(boxes, *size, count) if boxes and size else []))
    return out


def read_folder(folder: str | Path) -> list[tuple[Path, tuple[int, int] | None, list[Box]]]:
    """`read_labeled_folder` without the class ids: every box a face."""
    return [(p, size, [b for _, b in faces]) for p, size, faces in read_labeled_folder(folder)]
