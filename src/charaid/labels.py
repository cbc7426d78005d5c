"""label: turn face crops into a labelled dataset.

Two sources:
- `truth`: the demo's ground truth; a detected face takes the label of the truth face it overlaps
  (IoU >= min_iou). Named cast keep their names, extras become the "other" class, and faces from
  the other show are kept apart (role `othershow`) for the rejection check, never trained on.
- `folders`: a user's `data/labeled/<character>/` folders of pictures (any size; resized).

The output is one array file (fast to load, one object for DVC) plus a CSV and a contact sheet.
"""

from __future__ import annotations

import csv
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

from charaid.atomic import atomic_dir, npz_bytes
from charaid.boxes import match
from charaid.errors import CharaidError
from charaid.faces import face_boxes, load_crops
from charaid.frames import read_index
from charaid.media import IMAGE_EXTS, image_problem, read_image, write_image
from charaid.visualize import contact_sheet

FIELDS = ["id", "label", "role", "source"]
OTHERSHOW = "othershow"


def read_truth(truth_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """Truth rows grouped by (video, frame)."""
    if not truth_dir.is_dir():
        raise CharaidError(f"{truth_dir}: ground-truth folder not found (label.path)")
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted(truth_dir.glob("*.csv")):
        for row in read_index(path):
            grouped[(path.stem, str(row["frame"]))].append(row)
    if not grouped:
        raise CharaidError(f"{truth_dir}: no ground-truth CSV files")
    return grouped


def labels_from_truth(faces_dir: Path, truth_dir: Path, min_iou: float, other: str) -> list[dict]:
    """One row per detected face that matches a truth face; unmatched detections are dropped."""
    index = faces_dir / "index.csv"
    if not index.is_file():
        raise CharaidError(f"{index}: missing; run the detect_faces stage first")
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


def build_dataset(params: dict, crop_size: int, faces_dir: Path, out_dir: Path) -> dict:
    """Write `out_dir/crops.npz` (images, ids), `labels.csv` and `contact_sheet.png`."""
    path = Path(params["path"])
    if params["from"] == "truth":
        rows = labels_from_truth(faces_dir, path, params["min_iou"], params["other_class"])
        crops = load_crops(faces_dir, [{"crop": r["id"]} for r in rows])
        images = list(crops)
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
    with atomic_dir(out_dir) as tmp:
        ids = np.array([r["id"] for r in rows])
        (tmp / "crops.npz").write_bytes(npz_bytes({"images": stack, "ids": ids}))
        with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        groups: dict[str, list[np.ndarray]] = defaultdict(list)
        for row, img in zip(rows, stack, strict=True):
            groups[row["label"]].append(img)
        write_image(tmp / "contact_sheet.png", contact_sheet(dict(sorted(groups.items()))))
    return {"faces": len(rows), "classes": dict(sorted(counts.items()))}


def load_dataset(dataset_dir: Path) -> tuple[np.ndarray, list[dict]]:
    """Images (N, S, S, 3) uint8 BGR and label rows, in the same order."""
    npz, csv_path = dataset_dir / "crops.npz", dataset_dir / "labels.csv"
    if not npz.is_file() or not csv_path.is_file():
        raise CharaidError(f"{dataset_dir}: dataset missing; run the label stage first")
    try:
        with np.load(npz) as data:
            images = data["images"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CharaidError(f"{npz}: damaged ({exc}); rerun the label stage") from None
    return images, read_index(csv_path)
