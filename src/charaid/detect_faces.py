"""detect_faces: find faces in every extracted frame and cut square crops.

Frames are independent, so they are spread over a process pool; each worker limits OpenCV to one
thread so the processes do not fight over the cores.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from charaid.atomic import atomic_dir, npz_bytes
from charaid.boxes import Detection, square_crop
from charaid.config import DetectFacesParams
from charaid.crops import CROPS_DIR, crop_file, crop_key, load_crops
from charaid.detect import make_detector
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.media import read_image, write_image
from charaid.workers import FAILED, watchdog_map

INDEX_FIELDS = [
    "crop",
    "video",
    "frame",
    "x",
    "y",
    "w",
    "h",
    "score",
    "crop_x",
    "crop_y",
    "crop_side",
]

_worker: dict = {}

CroppedFace = tuple[Detection, np.ndarray, tuple[int, int, int]]


def _init_worker(params: DetectFacesParams) -> None:
    cv2.setNumThreads(1)
    if params.backend == "learned":  # one core per worker: its kernels and BLAS alike
        import threadpoolctl

        from charaid import fastops

        fastops.set_num_threads(1)
        _worker["blas"] = threadpoolctl.threadpool_limits(1, user_api="blas")
    _worker["detector"] = make_detector(params)
    _worker["margin"] = params.margin
    _worker["size"] = params.crop_size


def _faces_in(path: str) -> tuple[str, list[CroppedFace] | None]:
    """Detect and crop in the worker, so each frame is decoded once and only crops travel back."""
    image = read_image(path)
    if image is None:
        return path, None
    # Sort so crop numbering does not depend on the detector's output order.
    found = sorted(_worker["detector"].detect(image), key=lambda d: (d.box[0], d.box[1]))
    faces = []
    for det in found:
        crop, (cx, cy, side, _) = square_crop(image, det.box, _worker["margin"], _worker["size"])
        faces.append((det, crop, (cx, cy, side)))
    return path, faces


def worker_count(params: DetectFacesParams) -> int:
    """`workers: 0` means one process per core."""
    return params.workers or os.cpu_count() or 1


FRAME_TIMEOUT = 60.0  # seconds; a frame normally takes well under one


def find_faces(
    paths: list[str], params: DetectFacesParams, desc: str = "detect_faces"
) -> dict[str, list[CroppedFace] | None]:
    """Faces per frame path (None where a frame could not be read), with a progress bar (`desc`).

    Frames go to worker processes under a watchdog (see charaid.workers): a detector that hangs
    on a frame is restarted and the frame retried once, then skipped with a warning.
    """
    detector = make_detector(params)  # fail fast, in this process, on a bad backend or cascade
    # OpenCV's cascade has no hidden state that hangs (animeface has): frames can be detected
    # here, unguarded, while the workers start, one OpenCV thread like theirs.
    names = {backend.name for backend, _ in detector.backends}
    # the learned detector's libraries and kernels load once, in the fork server
    preload = ["charaid.detector.preload"] if "learned" in names else []
    warmup = None
    if "animeface" not in names:
        warmup = _faces_in
        _worker.update(detector=detector, margin=params.margin, size=params.crop_size)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    results: dict[str, list[CroppedFace] | None] = {}
    try:
        with tqdm(total=len(paths), desc=desc, unit="frame") as bar:
            for path, found in watchdog_map(
                _faces_in,
                paths,
                worker_count(params),
                FRAME_TIMEOUT,
                _init_worker,
                (params,),
                warmup,
                preload,
            ):
                if found is FAILED:
                    print(
                        f"warning: {path}: detector hung twice on this frame, skipped",
                        file=sys.stderr,
                    )
                    found = (path, [])
                results[path] = found[1]
                bar.update()
    finally:
        cv2.setNumThreads(threads)
    return results


def detect_faces(frames_dir: str | Path, out_dir: str | Path, params: DetectFacesParams) -> dict:
    """Write `out_dir/crops/<video>.npz` (crops, keys) and `out_dir/index.csv`.

    One array file per video instead of one picture per crop: DVC hashes, stats and transfers
    files one by one, and tens of thousands of tiny crops made every step slow (README,
    "Sharing data and models"). `charaid export-crops` writes them out as pictures to sort.
    """
    frames_dir, out_dir = Path(frames_dir), Path(out_dir)
    index_path = frames_dir / "index.csv"
    if not index_path.is_file():
        raise CharaidError(f"{index_path}: missing; run `dvc repro extract_frames` first")
    frames = read_index(index_path)
    paths = [str(frames_dir / row["path"]) for row in frames]
    found = find_faces(paths, params)
    rows = []
    per_video: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for row, path in zip(frames, paths, strict=True):
        faces = found[path]
        if faces is None:
            raise CharaidError(f"{path}: frame cannot be read; run `dvc repro extract_frames`")
        for k, (det, crop, (cx, cy, side)) in enumerate(faces):
            key = crop_key(row["video"], row["frame"], k)
            keys, crops = per_video.setdefault(row["video"], ([], []))
            keys.append(key)
            crops.append(crop)
            x, y, w, h = (round(v, 1) for v in det.box)
            rows.append(
                {
                    "crop": key,
                    "video": row["video"],
                    "frame": row["frame"],
                    "x": x,
                    "y": y,
                    "w": w,
                    "h": h,
                    "score": round(det.score, 4),
                    "crop_x": cx,
                    "crop_y": cy,
                    "crop_side": side,
                }
            )
    with atomic_dir(out_dir) as tmp:
        (tmp / CROPS_DIR).mkdir()
        for video, (keys, crops) in sorted(per_video.items()):
            # built in memory (charaid.atomic.npz_bytes): same crops -> same bytes -> same DVC
            # hash, and a full disk fails one write, with no half-closed zip left to complain
            arrays = {"crops": np.stack(crops), "keys": np.array(keys)}
            crop_file(tmp, video).write_bytes(npz_bytes(arrays))
        with open(tmp / "index.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=INDEX_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return {
        "frames": len(frames),
        "faces": len(rows),
        "frames_with_faces": sum(1 for v in found.values() if v),
    }


def export_crops(faces_dir: str | Path, out_dir: str | Path) -> int:
    """Write every crop as `out_dir/<video>/<frame>_<k>.png`, for a person to sort into
    `data/labeled/<character>/`; returns the count."""
    faces_dir = Path(faces_dir)
    index = faces_dir / "index.csv"
    if not index.is_file():
        raise CharaidError(
            f"{index}: missing; run `dvc repro detect_faces` first, or name the folder it wrote"
        )
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        # Never replace a folder that may hold a person's sorting work.
        raise CharaidError(f"{out_dir}: exists and is not empty; choose a new folder (--out)")
    rows = read_index(index)
    crops = load_crops(faces_dir, rows)
    with atomic_dir(out_dir) as tmp:
        for row, crop in zip(rows, crops, strict=True):
            path = tmp / f"{row['crop']}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image(path, crop)
    return len(rows)
