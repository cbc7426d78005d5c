"""Shared fixtures: the real-data folder beside the project, small synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CASCADE = SHARED / "lbpcascade_animeface.xml"
SAKURASOU = SHARED / "videos" / "sakurasou-1080p.mp4"


def need_shared(path: Path) -> None:
    """Skip, with the reason, when the real test data beside the project is absent."""
    if not path.exists():
        pytest.skip(f"real test data not found: {path} (../shared/data is absent)")


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def moving_square_frames(n: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    """Frames whose content changes enough every frame not to count as duplicates."""
    frames = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 30, np.uint8)
        x = (i * 37) % (size[0] - 40)
        y = (i * 23) % (size[1] - 40)
        cv2.rectangle(img, (x, y), (x + 40, y + 40), (40 * (i % 6), 255 - 20 * (i % 10), 200), -1)
        cv2.circle(img, ((x * 3) % size[0], (y * 5) % size[1]), 15, (255, 255, 255), -1)
        frames.append(img)
    return frames


@pytest.fixture
def sample_params() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())
