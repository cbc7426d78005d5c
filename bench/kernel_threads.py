"""fastops' own thread split vs BLAS's threads, on each model's training step.

Two copies of each model train side by side in one process, interleaved round by round:
`fastops.set_num_threads(1)` (the kernels run in the calling thread; OpenBLAS splits each GEMM
over its own threads) and `set_num_threads(N)` (the default: every kernel splits its work over N
threads, each running single-threaded BLAS). Prints training images/s, median and min..max over
rounds, and the ratio. Run from the repository root:

    python bench/kernel_threads.py                        # seed_cnn 50 px and bn_cnn 64 px
    python bench/kernel_threads.py --models bn_cnn --rounds 8
"""

from __future__ import annotations

# first: importing charaid picks OpenBLAS's kernels for this CPU (charaid.blas_core), which
# only works before numpy loads
import charaid  # noqa: F401

# isort: split

import argparse
import statistics
import time

import chainer.links as L
import numpy as np

from charaid import fastops
from charaid.models import build_model

SIZES = {"seed_cnn": 50, "bn_cnn": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="seed_cnn,bn_cnn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=8, help="updates per round")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=fastops.default_num_threads())
    args = parser.parse_args()
    fastops.tune_allocator()
    rng = np.random.default_rng(0)
    settings = (1, args.threads)
    print(
        f"{'model':<10} {'px':>3} {'kernel threads':>15} {'img/s':>7} {'min..max':>12} {'ratio':>6}"
    )
    for name in args.models.split(","):
        size = SIZES[name]
        x = rng.random((args.batch, 3, size, size), dtype=np.float32)
        t = rng.integers(0, args.classes, args.batch).astype(np.int32)
        runs = {}
        for n in settings:
            np.random.seed(0)
            model = L.Classifier(build_model(name, args.classes, fast=True))
            optimizer = fastops.FastAdam()
            optimizer.setup(model)
            runs[n] = (model, optimizer, [])
        for _ in range(args.rounds):
            for n, (model, optimizer, speeds) in runs.items():
                fastops.set_num_threads(n)
                optimizer.update(model, x, t)  # first update after a switch: thread start-up
                start = time.perf_counter()
                for _ in range(args.iters):
                    optimizer.update(model, x, t)
                speeds.append(args.iters * args.batch / (time.perf_counter() - start))
        base = statistics.median(runs[1][2])
        for n, (_, _, speeds) in runs.items():
            med = statistics.median(speeds)
            span = f"{min(speeds):.0f}..{max(speeds):.0f}"
            print(f"{name:<10} {size:>3} {n:>15} {med:>7.0f} {span:>12} {med / base:>6.2f}")
    fastops.set_num_threads(None)


if __name__ == "__main__":
    main()
