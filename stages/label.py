"""Stage label: labelled dataset from demo ground truth or labeled folders (params: label)."""

from pathlib import Path

from charaid.config import load_params
from charaid.labels import build_dataset
from charaid.stage import run


def main() -> None:
    p = load_params()
    summary = build_dataset(
        p["label"], p["detect_faces"]["crop_size"], Path("data/faces"), Path("data/dataset")
    )
    print(f"label: {summary['faces']} faces: {summary['classes']}")


if __name__ == "__main__":
    run(main)
