"""Find and read the videos and pictures a user points the pipeline at."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

# FFmpeg inside OpenCV logs damaged streams to stderr; charaid reports them itself, by file name.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402  (after the log level, which OpenCV reads when it opens a video)
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from charaid.errors import CharaidError  # noqa: E402

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


MAX_PIXELS = 100_000_000  # larger pictures are refused from their header, before decoding


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence C libraries (libpng, libjpeg) that print to fd 2 while decoding a damaged file.

    Only around a decode in single-threaded code: the fd is process-wide.
    """
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


BOMB = (-1, -1)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the header alone (Pillow decodes no pixels); None if unknown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                return im.size
        except Image.DecompressionBombError:
            return BOMB  # Pillow's own guard: far over our limit, whatever the exact size
        except Exception:  # Pillow does not know every format OpenCV decodes
            return None


def too_large(size: tuple[int, int] | None) -> bool:
    return size is not None and (size == BOMB or size[0] * size[1] > MAX_PIXELS)


def image_problem(path: str | Path) -> str:
    """Why `read_image` returned None for this file, in a few words."""
    size = header_size(path)
    limit = f"over the {MAX_PIXELS // 1_000_000} MP limit"
    if size == BOMB:
        claimed = 2 * Image.MAX_IMAGE_PIXELS // 10**6
        return f"picture too large (its header claims over {claimed} MP), {limit}"
    if too_large(size):
        return f"picture is {size[0]}x{size[1]}, {limit}"
    return "not a readable picture (empty, damaged, truncated or not a picture)"


def read_image(path: str | Path) -> np.ndarray | None:
    """A picture as 8-bit BGR, or None if it cannot be decoded (any depth/channels accepted).

    `image_problem(path)` says why. A header claiming over MAX_PIXELS is refused undecoded.
    """
    if too_large(header_size(path)):
        return None
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    with quiet_native_stderr():
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


def encode_image(path: str | Path, image: np.ndarray, quality: int = 95) -> bytes:
    """The file bytes of `image` in the format `path`'s extension names."""
    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in {".jpg", ".jpeg"} else []
    try:
        ok, buf = cv2.imencode(path.suffix, image, params)
    except cv2.error:  # no encoder for this extension
        ok = False
    if not ok:
        raise CharaidError(f"{path}: could not encode image")
    return buf.tobytes()


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Encode by extension and write (no atomicity: callers write into a temp folder)."""
    Path(path).write_bytes(encode_image(path, image, quality))
