"""Stage train: fit the Chainer classifier (params: train)."""

from pathlib import Path

from charaid.config import load_section
from charaid.stage import run
from charaid.train import train


def main() -> None:
    result = train(
        load_section("train"),
        Path("data/dataset"),
        Path("data/split"),
        Path("models"),
        Path("metrics"),
        Path("data/.train_snapshots"),
    )
    print(
        f"train: test accuracy {result['test_accuracy']:.4f} in {result['seconds']} s "
        f"({result['images_per_second']} images/s)"
    )


if __name__ == "__main__":
    run(main)
