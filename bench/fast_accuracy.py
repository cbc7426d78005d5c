"""Does the fast path learn the same model? Raw Chainer vs charaid.fastops on the demo dataset.

Trains the `train` stage's model twice per seed (train.fast false, then true; same params,
same data: data/dataset and data/split from `dvc repro`) and prints test accuracy for each and
the difference in points. Run from the repository root after `dvc repro`:

    python bench/fast_accuracy.py --seeds 0,1 [--epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from charaid.config import load_section
from charaid.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, help="default: params.yaml train.epochs")
    parser.add_argument("--dataset", default="data/dataset")
    parser.add_argument("--split", default="data/split")
    args = parser.parse_args()
    base = load_section("train")
    if args.epochs:
        base = replace(base, epochs=args.epochs)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        accuracy = {}
        for fast in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                for sub in ("model", "metrics", "work"):
                    (out / sub).mkdir()
                result = train(
                    replace(base, seed=seed, fast=fast),
                    Path(args.dataset),
                    Path(args.split),
                    out / "model",
                    out / "metrics",
                    out / "work",
                )
            accuracy[fast] = (result["test_accuracy"], result["images_per_second"])
        rows.append((seed, accuracy))
    head = ("seed", "raw acc", "fast acc", "diff pt", "raw img/s", "fast img/s")
    print("\n" + " ".join(f"{h:>10}" for h in head))
    for seed, acc in rows:
        diff = 100 * (acc[True][0] - acc[False][0])
        print(
            f"{seed:>10} {acc[False][0]:>10.4f} {acc[True][0]:>10.4f} {diff:>+10.2f} "
            f"{acc[False][1]:>10.1f} {acc[True][1]:>10.1f}"
        )
    diffs = [100 * (a[True][0] - a[False][0]) for _, a in rows]
    print(f"epochs {base.epochs}, mean difference {statistics.mean(diffs):+.2f} points")


if __name__ == "__main__":
    main()
