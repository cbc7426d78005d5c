"""Stage train_detector: fit charaid's own face detector (params: train_detector)."""

from pathlib import Path

from charaid.config import load_section
from charaid.stage import run
from charaid.train_detector import train_detector


def main() -> None:
    result = train_detector(
        load_section("train_detector"),
        Path("data/frames"),
        Path("models/detector"),
        Path("metrics"),
        Path("data/.detector_snapshots"),
        load_section("detect_faces"),  # the classical backend's settings, for pseudo-boxes
    )
    print(
        f"train_detector: {result['train_pictures']} pictures, {result['epochs']} epochs in "
        f"{result['seconds']} s; validation recall {result['val_recall']}, precision "
        f"{result['val_precision']} (IoU 0.5)"
    )


if __name__ == "__main__":
    run(main)
