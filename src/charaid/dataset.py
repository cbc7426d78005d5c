"""data/dataset on disk: the labelled crops `label` writes and `split`, `train` and `evaluate`
read: `crops.npz` (images, ids; one object for DVC, fast to load), `labels.csv` (id, label,
role, source) and `contact_sheet.png` (a row of crops per class, to look at)."""

from __future__ import annotations

import csv
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from charaid.atomic import atomic_dir, npz_bytes
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.media import write_image
from charaid.visualize import contact_sheet

FIELDS = ["id", "label", "role", "source"]
OTHERSHOW = "othershow"  # role and label prefix of the other show's faces: tested, never trained
SCENE_ROLES = ("detected", "box")  # where a scene crop was cut: a matching detection, the box


def write_dataset(out_dir: Path, rows: list[dict], images: np.ndarray) -> None:
    """The three files, all at once (a temporary folder renamed into place)."""
    with atomic_dir(out_dir) as tmp:
        ids = np.array([r["id"] for r in rows])
        (tmp / "crops.npz").write_bytes(npz_bytes({"images": images, "ids": ids}))
        with open(tmp / "labels.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        groups: dict[str, list[np.ndarray]] = defaultdict(list)
        for row, img in zip(rows, images, strict=True):
            groups[row["label"]].append(img)
        write_image(tmp / "contact_sheet.png", contact_sheet(dict(sorted(groups.items()))))


def load_dataset(dataset_dir: Path) -> tuple[np.ndarray, list[dict]]:
    """Images (N, S, S, 3) uint8 BGR and label rows, in the same order."""
    npz, csv_path = dataset_dir / "crops.npz", dataset_dir / "labels.csv"
    if not npz.is_file() or not csv_path.is_file():
        raise CharaidError(f"{dataset_dir}: dataset missing; run `dvc repro label` first")
    try:
        with np.load(npz) as data:
            images = data["images"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CharaidError(f"{npz}: damaged ({exc}); run `dvc repro label`") from None
    return images, read_index(csv_path)
