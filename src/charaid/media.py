"""Find and read the videos and pictures a user points the pipeline at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from charaid.errors import CharaidError

VIDEO_EXTS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def list_media(folder: str | Path, exts: set[str]) -> list[Path]:
    """Files under `folder` with one of `exts`, sorted, skipping hidden files and folders."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CharaidError(f"{folder}: no such folder (check the path in params.yaml)")
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in exts:
            found.append(path)
    return found


def read_image(path: str | Path) -> np.ndarray | None:
    """A picture as 8-bit BGR, or None if it cannot be decoded (any depth/channels accepted)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Encode by extension and write (no atomicity: callers write into a temp folder)."""
    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in {".jpg", ".jpeg"} else []
    ok, buf = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise CharaidError(f"{path}: could not encode image")
    buf.tofile(str(path))
