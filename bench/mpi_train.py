"""Data-parallel training speed: the train stage in 1 process vs `mpiexec -n 2` (ChainerMN).

Builds a small training project from the demo cast (faces drawn straight into crops, see
charaid.demo.crops), then runs the real stage script, `python stages/train.py`, in each
configuration, interleaved round by round so that all see the same machine load:

    1 proc, 2 BLAS thr   one process, OpenBLAS/OpenMP free to use both cores (the default)
    1 proc, 1 BLAS thr   one process, one thread
    mpiexec -n 2         two processes (ChainerMN, naive communicator), one BLAS thread each

Reported per configuration: the median over rounds of the stage's own images/s (training loop
only, metrics/train_speed.json) and of the whole command's wall time (start-up, MPI init and
data scatter included), the min..max, and the test accuracy the run reached (the
Evaluator's, metrics/train.json). Ratios are against both one-process configurations.
Run from the repository root:

    python bench/mpi_train.py                       # 3 rounds, 3 epochs, 200 crops per class
    python bench/mpi_train.py --rounds 1 --epochs 2 --per-class 80   # quick (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from charaid.demo.crops import write_train_project  # noqa: E402
from charaid.distributed import mpiexec  # noqa: E402

CONFIGS = {
    "1 proc, 2 BLAS thr": (1, 2),
    "1 proc, 1 BLAS thr": (1, 1),
    "mpiexec -n 2, 1 thr each": (2, 1),
}


def run_once(project: Path, processes: int, threads: int) -> dict:
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "src"),
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
    }
    command = [sys.executable, str(ROOT / "stages" / "train.py")]
    if processes > 1:
        command = [mpiexec(), "-n", str(processes), *command]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    speed = json.loads((project / "metrics" / "train_speed.json").read_text())
    result = json.loads((project / "metrics" / "train.json").read_text())
    assert speed["processes"] == processes
    return {
        "img_s": speed["images_per_second"],
        "wall": wall,
        "test_accuracy": result["test_accuracy"],
        "train_images": result["train_images"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=200, help="crops per class (5 classes)")
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    if mpiexec() is None:
        sys.exit("error: mpiexec not found; install requirements.txt (mpich)")

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(epochs=args.epochs, batch_size=args.batch_size, processes=1)
    with tempfile.TemporaryDirectory(prefix="mpi-bench-") as tmp:
        project = write_train_project(Path(tmp), params, per_class=args.per_class)
        runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
        for r in range(args.rounds):
            for name, (processes, threads) in CONFIGS.items():
                runs[name].append(run_once(project, processes, threads))
                last = runs[name][-1]
                print(
                    f"round {r + 1}/{args.rounds} {name}: {last['img_s']} img/s, "
                    f"{last['wall']:.1f} s",
                    file=sys.stderr,
                )

    first = next(iter(runs.values()))[0]
    print(
        f"\nmpi_train: {first['train_images']} training crops, {args.epochs} epochs, "
        f"global batch {args.batch_size}, median of {args.rounds} round(s); "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    header = (
        f"| {'configuration':<26} | {'img/s':>7} | {'min..max':>14} | {'wall s':>6} "
        f"| {'test acc':>8} | {'vs 1p 2thr':>10} | {'vs 1p 1thr':>10} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    median = {n: statistics.median(x["img_s"] for x in rs) for n, rs in runs.items()}
    base2, base1 = median["1 proc, 2 BLAS thr"], median["1 proc, 1 BLAS thr"]
    for name, rs in runs.items():
        speeds = [x["img_s"] for x in rs]
        wall = statistics.median(x["wall"] for x in rs)
        accuracy = rs[-1]["test_accuracy"]
        print(
            f"| {name:<26} | {median[name]:>7.1f} | {min(speeds):>6.1f}..{max(speeds):<6.1f} "
            f"| {wall:>6.1f} | {accuracy:>8.4f} | {median[name] / base2:>9.2f}x "
            f"| {median[name] / base1:>9.2f}x |"
        )


if __name__ == "__main__":
    main()
