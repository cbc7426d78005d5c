"""Stage split: stratified train/test manifests with per-class holdouts (params: split)."""

from pathlib import Path

from charaid.config import load_section
from charaid.labels import load_dataset
from charaid.split import split_rows, write_split
from charaid.stage import run


def main() -> None:
    p = load_section("split")
    _, rows = load_dataset(Path("data/dataset"))
    counts = write_split(split_rows(rows, p["test_per_class"], p["seed"]), Path("data/split"))
    print(f"split: {counts}")


if __name__ == "__main__":
    run(main)
