"""extract_frames: sample frames from videos, skipping near-duplicates.

Skipped frames are only grabbed (demuxed), not decoded, so sampling 1 in N costs little more
than reading the container. Pictures in the input folder pass through as one-frame "videos".
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from charaid.atomic import atomic_dir
from charaid.errors import CharaidError
from charaid.media import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    image_problem,
    list_media,
    read_image,
    write_image,
)

INDEX_FIELDS = ["video", "frame", "time", "path"]
PICTURES = "images"  # the index's video for pictures given as pictures (no time, no shots)


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash: robust to compression and small brightness changes.

    A bilinear 72x64 sample first, then the 9x8 area average: a direct INTER_AREA reduction
    reads every pixel and cost more than decoding the frame (3.5 vs 2 ms at 720p).
    """
    sample = cv2.resize(image, (72, 64), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(sample, (9, 8), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class Sampling:
    every_n_frames: int = 2
    fps: float = 0.0
    dedup_distance: int = 3
    max_frames: int = 0

    def step(self, video_fps: float) -> int:
        """Frames to advance between samples."""
        if self.fps > 0 and video_fps > 0:
            return max(1, round(video_fps / self.fps))
        return self.every_n_frames


def iter_video(path: Path, sampling: Sampling) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame number, seconds, BGR image) of each kept frame, as it is decoded: one frame in
    memory at a time. Yields nothing if nothing decodes."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return
    try:
        video_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        step = sampling.step(video_fps)
        kept = 0
        last_hash: int | None = None
        index = 0
        size: tuple[int, int] | None = None
        older = newer = None  # the last two decoded frames
        while cap.grab():  # skipped frames are grabbed, never decoded into pixels
            if index % step == 0:
                # Decode into the frame before last when nobody else holds it any more (only
                # `older` and getrefcount's argument refer to it; a caller that kept it, or a
                # view of it, adds a reference): a fresh 2.7 MB array per 720p frame costs its
                # page faults, ~15% of decoding a simple episode.
                reuse = older is not None and sys.getrefcount(older) == 2
                ok, frame = cap.retrieve(older if reuse else None)
                if ok and frame is not None:
                    older, newer = newer, frame
                    # A stream whose resolution changes mid-way keeps the first size.
                    if size is None:
                        size = frame.shape[1], frame.shape[0]
                    elif (frame.shape[1], frame.shape[0]) != size:
                        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                    h = dhash(frame) if sampling.dedup_distance >= 0 else None  # -1: keep all
                    distance = sampling.dedup_distance
                    if h is None or last_hash is None or hamming(h, last_hash) > distance:
                        seconds = index / video_fps if video_fps > 0 else 0.0
                        yield index, round(seconds, 3), frame
                        kept += 1
                        last_hash = h
                        if sampling.max_frames and kept >= sampling.max_frames:
                            return
            index += 1
    finally:
        cap.release()


def extract_frames(input_dir: str | Path, out_dir: str | Path, sampling: Sampling) -> dict:
    """Write kept frames as `out_dir/<video>/<frame>.jpg` and `out_dir/index.csv`."""
    videos = list_media(input_dir, VIDEO_EXTS)
    images = list_media(input_dir, IMAGE_EXTS)
    if not videos and not images:
        raise CharaidError(f"{input_dir}: no videos or pictures found")
    rows: list[dict] = []
    skipped: list[str] = []
    problems: list[str] = []  # reported once we know whether anything decoded
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for path in tqdm(videos, desc="extract_frames", unit="video"):
            name = path.stem
            (tmp / name).mkdir(parents=True, exist_ok=True)
            before = len(rows)
            for index, seconds, frame in iter_video(path, sampling):  # streamed to disk
                rel = f"{name}/{index:06d}.jpg"
                write_image(tmp / rel, frame)
                rows.append({"video": name, "frame": index, "time": seconds, "path": rel})
            if len(rows) == before:
                if not any((tmp / name).iterdir()):
                    (tmp / name).rmdir()
                skipped.append(path.name)
                problems.append(f"{path}: no decodable frames (empty, truncated or not a video)")
        for path in images:
            image = read_image(path)
            if image is None:
                skipped.append(path.name)
                problems.append(f"{path}: {image_problem(path)}")
                continue
            rel = f"{PICTURES}/{path.stem}.jpg"
            (tmp / PICTURES).mkdir(exist_ok=True)
            write_image(tmp / rel, image)
            rows.append({"video": PICTURES, "frame": path.stem, "time": 0.0, "path": rel})
        if not rows:
            # one line for the whole failure: the first problem, and how many more
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise CharaidError(
                f"none of the inputs could be decoded: {problems[0]}{more}; fix or remove it"
            )
        for problem in problems:
            print(f"warning: {problem}, skipped", file=sys.stderr)
        write_index(tmp / "index.csv", rows)
    return {"frames": len(rows), "videos": len(videos), "skipped": skipped}


def write_index(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def read_index(path: str | Path) -> list[dict]:
    """Rows of a CSV index or manifest; a missing one names the stage that writes it."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise CharaidError(f"{path}: missing; run the stage that writes it (dvc repro)") from None
