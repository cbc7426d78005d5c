"""data/faces on disk, as detect_faces writes it: `index.csv` (one row per face: crop key, video,
frame, box, score, crop square) and `crops/<video>.npz` (every crop of a video, by key), read
by label, evaluate, export-crops and the label helper without the detector."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from charaid.errors import CharaidError

CROPS_DIR = "crops"


def crop_file(faces_dir: str | Path, video: str) -> Path:
    """The array file holding all crops of one video."""
    return Path(faces_dir) / CROPS_DIR / f"{video}.npz"


def crop_key(video: str, frame: str, k: int) -> str:
    """A crop's key (index.csv `crop`, dataset ids): `<video>/<frame>_<k>`; the video names
    the array file, so a key alone is enough to find the crop."""
    return f"{video}/{frame}_{k}"


def face_boxes(rows: list[dict]) -> dict[tuple[str, str], list[tuple[int, tuple]]]:
    """Group index rows by (video, frame): [(row number, box)]."""
    grouped: dict[tuple[str, str], list[tuple[int, tuple]]] = {}
    for i, row in enumerate(rows):
        box = (float(row["x"]), float(row["y"]), float(row["w"]), float(row["h"]))
        grouped.setdefault((row["video"], str(row["frame"])), []).append((i, box))
    return grouped


def read_crop_file(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise CharaidError(f"{path}: crop file missing; run `dvc repro detect_faces`")
    try:
        with np.load(path) as data:
            crops, keys = data["crops"], data["keys"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise CharaidError(
            f"{path}: crop file cannot be read ({e}); run `dvc repro detect_faces`"
        ) from e
    return dict(zip(keys.tolist(), crops, strict=True))


def load_crops(faces_dir: Path, rows: list[dict]) -> np.ndarray:
    """All crops of `rows` (their `crop` key) stacked as uint8 (N, S, S, 3) BGR."""
    faces_dir = Path(faces_dir)
    files: dict[str, dict[str, np.ndarray]] = {}
    images = []
    for row in rows:
        key = row["crop"]
        video = key.rpartition("/")[0]
        if video not in files:
            files[video] = read_crop_file(crop_file(faces_dir, video))
        if key not in files[video]:
            raise CharaidError(
                f"{crop_file(faces_dir, video)}: no crop {key!r}; run `dvc repro detect_faces`"
            )
        images.append(files[video][key])
    return np.stack(images) if images else np.zeros((0, 1, 1, 3), np.uint8)
