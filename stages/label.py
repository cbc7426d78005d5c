"""Stage label: labelled dataset from demo ground truth, labeled folders or annotated scenes
(params: label; detect_faces, whose detector and crops `from: scenes` uses)."""

from pathlib import Path

from charaid.config import load_params
from charaid.labels import build_dataset
from charaid.stage import run


def main() -> None:
    p = load_params()
    detect = p.detect_faces
    summary = build_dataset(
        p.label, detect.crop_size, Path("data/faces"), Path("data/dataset"), detect
    )
    line = f"label: {summary['faces']} faces: {summary['classes']}"
    if "detected" in summary:
        line += f" ({summary['detected']} cut at a detection, the rest at their box)"
    print(line)


if __name__ == "__main__":
    run(main)
