"""The hand-annotated real frames (tests/data/night_scene_boxes), cut from the shared clip."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2

from tests.conftest import CASCADE, SAKURASOU

__all__ = ["ANNOTATIONS", "CASCADE", "annotated_sakurasou"]

ANNOTATIONS = Path(__file__).parent / "data" / "night_scene_boxes"


def annotated_sakurasou(out: Path) -> Path:
    """A YOLO folder `out/sakurasou` of the annotated frames (PNG) with their box files."""
    wanted = {int(p.stem.removeprefix("frame")): p for p in ANNOTATIONS.glob("frame*.txt")}
    folder = out / "sakurasou"
    folder.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(SAKURASOU))
    index = 0
    try:
        while wanted and index <= max(wanted):
            if index in wanted:
                ok, frame = capture.read()
                if not ok:
                    break
                cv2.imwrite(str(folder / f"frame{index:04d}.png"), frame)
                shutil.copy(wanted.pop(index), folder / f"frame{index:04d}.txt")
            elif not capture.grab():
                break
            index += 1
    finally:
        capture.release()
    if wanted:
        raise RuntimeError(f"{SAKURASOU}: frames {sorted(wanted)} could not be decoded")
    return folder
