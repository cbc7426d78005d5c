"""Stage train: fit the Chainer classifier (params: train).

`train.processes: N` > 1 re-runs this script under `mpiexec -n N`; launched by mpiexec directly
(`mpiexec -n 2 python stages/train.py`), it trains with however many processes mpiexec started.
"""

import sys
from pathlib import Path

from charaid.config import load_section
from charaid.distributed import Workers, launched_size, relaunch
from charaid.stage import run
from charaid.train import train


def main() -> None:
    params = load_section("train")
    if params.processes > 1 and launched_size() == 1:
        sys.exit(relaunch(params.processes, __file__))
    workers = Workers.connect()
    result = train(
        params,
        Path("data/dataset"),
        Path("data/split"),
        Path("models"),
        Path("metrics"),
        Path("data/.train_snapshots"),
        workers,
    )
    if workers.is_root:
        print(
            f"train: test accuracy {result['test_accuracy']:.4f} in {result['seconds']} s "
            f"({result['images_per_second']} images/s, {workers.size} process"
            f"{'es' if workers.size > 1 else ''})"
        )


if __name__ == "__main__":
    run(main)
