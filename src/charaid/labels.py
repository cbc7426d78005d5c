"""label: turn face crops into a labelled dataset.

Three sources:
- `truth`: the demo's ground truth; a detected face takes the label of the truth face it overlaps
  (IoU >= min_iou). Named cast keep their names, extras become the "other" class, and faces from
  the other show are kept apart (role `othershow`) for the rejection check, never trained on.
- `folders`: a user's `data/labeled/<character>/` folders of pictures (any size; resized).
- `scenes`: a YOLO folder of annotated pictures whose `classes.txt` names the characters. The
  configured detector (detect_faces params) runs on the pictures; a named box it found (IoU >=
  min_iou) gives the detection's crop, cut as detect_faces and predict cut theirs (role
  `detected`), else the crop is cut around the box itself, read as a square of the same area
  (role `box`). Boxes of class `unknown` are the other class.

The output is one array file (fast to load, one object for DVC) plus a CSV and a contact sheet.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from charaid.boxes import Box, match, square_crop
from charaid.config import DetectFacesParams, LabelParams
from charaid.crops import face_boxes, load_crops
from charaid.dataset import OTHERSHOW, write_dataset
from charaid.detect_faces import CroppedFace, find_faces
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.media import IMAGE_EXTS, image_problem, list_media, read_image
from charaid.truth import read_truth
from charaid.yolo import CLASSES_FILE, classes_file, find_classes, read_labeled_folder

UNKNOWN_CLASS = "unknown"  # the YOLO class of faces outside the named cast (scenes)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def labels_from_truth(faces_dir: Path, truth_dir: Path, min_iou: float, other: str) -> list[dict]:
    """One row per detected face that matches a truth face; unmatched detections are dropped."""
    index = faces_dir / "index.csv"
    if not index.is_file():
        raise CharaidError(f"{index}: missing; run `dvc repro detect_faces` first")
    rows = read_index(index)
    truth = read_truth(truth_dir)
    labelled = []
    for key, dets in face_boxes(rows).items():
        faces = truth.get(key, [])
        boxes = [tuple(float(f[k]) for k in "xywh") for f in faces]
        for i, j in match([b for _, b in dets], boxes, min_iou):
            row, face = rows[dets[i][0]], faces[j]
            role = face["role"]
            label = face["character"] if role == "cast" else other
            if role == OTHERSHOW:
                label = f"{OTHERSHOW}:{face['character']}"
            labelled.append(
                {
                    "id": row["crop"],
                    "label": label,
                    "role": role,
                    "source": f"{row['video']}#{row['frame']}",
                }
            )
    return labelled


def scan_folders(root: Path) -> dict[str, list[Path]]:
    """Pictures per class folder; hidden and non-picture files are skipped with a warning."""
    if not root.is_dir():
        raise CharaidError(f"{root}: labeled folder not found (label.path)")
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or any(p.startswith(".") for p in path.relative_to(root).parts):
                continue
            if path.suffix.lower() not in IMAGE_EXTS:
                print(f"warning: {path}: not a picture, skipped", file=sys.stderr)
                continue
            files.append(path)
        if not files:
            raise CharaidError(f"{folder}: class folder has no pictures; add some or remove it")
        classes[folder.name] = files
    if not classes:
        raise CharaidError(f"{root}: no class folders (expected {root}/<character>/*.jpg)")
    return classes


def scene_classes(folder: Path) -> list[str]:
    """The character names of a scene folder's classes.txt, each checked."""
    path = classes_file(folder)
    if path is None:
        raise CharaidError(
            f"{folder}: no {CLASSES_FILE} here or up to three folders above (label.path); write "
            "the character names one per line, in class-id order (`unknown` for other faces)"
        )
    names = find_classes(folder) or []
    for name in names:
        if not NAME.fullmatch(name):
            plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
            plain = re.sub(r"[^A-Za-z0-9_.-]+", "_", plain).strip("_.-") or "character"
            raise CharaidError(
                f"{path}: class name {name!r} has spaces or non-ASCII letters; rename it "
                f"(ASCII letters, digits, '_', '-' or '.', e.g. {plain!r})"
            )
    if len(names) < 2:
        raise CharaidError(
            f"{path}: one class, {names[0]!r}: the boxes name no characters; label.from: scenes "
            "needs one class per character (and `unknown` for other faces)"
        )
    return names


def scene_crops(
    picture: Path,
    faces: list[tuple[int, Box]],
    found: list[CroppedFace],
    min_iou: float,
    margin: float,
    size: int,
) -> list[tuple[np.ndarray, str]]:
    """(crop, role) per named box of one picture: the crop of the detection that matches it
    (IoU >= min_iou, greedy one-to-one), else one cut around the box the same way."""
    dets = [det.box for det, _, _ in found]
    pairs = {j: i for i, j in match(dets, [box for _, box in faces], min_iou)}
    image = read_image(picture) if len(pairs) < len(faces) else None
    out = []
    for j, (_, box) in enumerate(faces):
        if j in pairs:
            out.append((found[pairs[j]][1], "detected"))
        else:
            out.append((square_crop(image, box, margin, size)[0], "box"))
    return out


def labels_from_scenes(
    folder: Path, detect: DetectFacesParams, min_iou: float, other: str
) -> tuple[list[dict], list[np.ndarray]]:
    """Rows and crops of every named box of a YOLO scene folder; `detect` is the detect_faces
    section (backend, margin, crop_size, workers...)."""
    if not folder.is_dir():
        raise CharaidError(f"{folder}: scene folder not found (label.path)")
    names = scene_classes(folder)
    if not list_media(folder, IMAGE_EXTS):
        raise CharaidError(
            f"{folder}: no pictures in this scene folder (label.path); point it at the pictures "
            "of a YOLO folder (with a <picture>.txt beside each, or images/ + labels/ twins)"
        )
    pictures = read_labeled_folder(folder)  # every box file checked before any detection
    for picture, size, _ in pictures:
        if size is None:
            print(f"warning: {picture}: {image_problem(picture)}, skipped", file=sys.stderr)
    boxed = [(picture, faces) for picture, size, faces in pictures if size and faces]
    if not boxed:
        raise CharaidError(
            f"{folder}: none of its {len(pictures)} pictures has a readable picture and a named "
            "box (label.path); annotate some faces"
        )
    found = find_faces([str(p) for p, _ in boxed], detect)
    rows, images = [], []
    for picture, faces in boxed:
        dets = found[str(picture)]
        if dets is None:
            print(f"warning: {picture}: {image_problem(picture)}, skipped", file=sys.stderr)
            continue
        crops = scene_crops(picture, faces, dets, min_iou, detect.margin, detect.crop_size)
        rel = picture.relative_to(folder).as_posix()
        for j, ((cls, _), (crop, role)) in enumerate(zip(faces, crops, strict=True)):
            rows.append(
                {
                    "id": f"{rel}#{j}",
                    "label": other if names[cls] == UNKNOWN_CLASS else names[cls],
                    "role": role,
                    "source": str(picture),
                }
            )
            images.append(crop)
    return rows, images


def build_dataset(
    params: LabelParams,
    crop_size: int,
    faces_dir: Path,
    out_dir: Path,
    detect: DetectFacesParams | None = None,
) -> dict:
    """Write `out_dir/crops.npz` (images, ids), `labels.csv` and `contact_sheet.png`.

    `detect` (the detect_faces section) is needed for `from: scenes`, whose crops it cuts."""
    path = Path(params.path)
    if params.from_ == "truth":
        rows = labels_from_truth(faces_dir, path, params.min_iou, params.other_class)
        crops = load_crops(faces_dir, [{"crop": r["id"]} for r in rows])
        images = list(crops)
    elif params.from_ == "scenes":
        if detect is None:
            raise ValueError("label.from scenes needs the detect_faces params")
        detect = dataclasses.replace(detect, crop_size=crop_size)
        rows, images = labels_from_scenes(path, detect, params.min_iou, params.other_class)
    else:
        rows, images, unreadable = [], [], []
        for name, files in scan_folders(path).items():
            before = len(rows)
            for file in files:
                image = read_image(file)
                if image is None:
                    unreadable.append(f"{file}: {image_problem(file)}")
                    continue
                rows.append(
                    {
                        "id": str(file.relative_to(path)),
                        "label": name,
                        "role": "folder",
                        "source": str(file),
                    }
                )
                images.append(image)
            if len(rows) == before:
                raise CharaidError(
                    f"{path / name}: class folder has no readable pictures ({unreadable[-1]}); "
                    "add some or remove it"
                )
        for problem in unreadable:
            print(f"warning: {problem}, skipped", file=sys.stderr)
    if not rows:
        raise CharaidError(f"{path}: no labelled faces found")
    stack = np.stack(
        [
            cv2.resize(img, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
            if img.shape[:2] != (crop_size, crop_size)
            else img
            for img in images
        ]
    )
    counts = Counter(r["label"] for r in rows)
    write_dataset(out_dir, rows, stack)
    summary = {"faces": len(rows), "classes": dict(sorted(counts.items()))}
    if params.from_ == "scenes":
        summary["detected"] = sum(r["role"] == "detected" for r in rows)
    return summary
