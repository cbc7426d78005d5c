"""Stage split: train/test manifests with per-class holdouts of crops, shots or whole episodes
(params: split)."""

from pathlib import Path

from charaid.config import load_section
from charaid.dataset import load_dataset
from charaid.split import split_rows, write_split
from charaid.stage import run


def main() -> None:
    p = load_section("split")
    images, rows = load_dataset(Path("data/dataset"))
    parts = split_rows(rows, p.test_per_class, p.seed, p.by, images)
    counts = write_split(parts, Path("data/split"))
    print(f"split (by {p.by}): {counts}")


if __name__ == "__main__":
    run(main)
