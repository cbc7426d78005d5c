"""Pseudo-boxes: a classical backend's confident faces on a user's own frames, as training boxes
for the learned detector, so a show nobody has boxed can still train one (the classical
backends bootstrap, the learned detector then detects).

A frame is used only when the backend found at least one face there and every face it found
scores `min_score` or more: a face it was unsure of, learned as background, would teach the
detector to miss such faces; and a frame where it found nothing may hold faces it missed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from charaid.config import DetectFacesParams
from charaid.detector.scenes import Scene, stretch
from charaid.errors import CharaidError
from charaid.frames import read_index


def pseudo_scenes(
    frames_dir: Path,
    skip_videos: set[str],
    detect: DetectFacesParams,
    backend: str,
    min_score: float,
) -> list[Scene]:
    """Frames of `frames_dir` (extract_frames' index) outside `skip_videos`, with the faces
    `backend` (detect_faces' settings for it) found there, where all of them are confident."""
    from charaid.detect_faces import find_faces

    index = frames_dir / "index.csv"
    if not index.is_file():
        raise CharaidError(f"{index}: missing; run `dvc repro extract_frames` first")
    rows = [r for r in read_index(index) if r["video"] not in skip_videos]
    paths = [str(frames_dir / r["path"]) for r in rows]
    detect = replace(detect, backend=backend)
    found = find_faces(paths, detect, "train_detector: pseudo-boxes") if paths else {}
    scenes = []
    for row, path in zip(rows, paths, strict=True):
        faces = found[path]
        if faces and min(det.score for det, _, _ in faces) >= min_score:
            boxes = tuple(tuple(float(v) for v in det.box) for det, _, _ in faces)
            scenes.append(Scene(Path(path), boxes, Path(row["path"]).as_posix(), stretch(row)))
    return scenes
