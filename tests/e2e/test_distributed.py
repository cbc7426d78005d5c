"""ChainerMN data-parallel training: launcher detection, rank helpers, and real `mpiexec -n 2`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from charaid import distributed
from charaid.config import Params
from charaid.distributed import Workers, launched_size
from charaid.errors import CharaidError
from tests.helpers import ROOT, softmax_at


@pytest.mark.parametrize(
    ("variables", "size"),
    [({}, 1), ({"PMI_SIZE": "2"}, 2), ({"OMPI_COMM_WORLD_SIZE": "4"}, 4), ({"PMIX_SIZE": "x"}, 1)],
)
def test_launched_size_reads_the_launchers_variables(monkeypatch, variables, size):
    for name in distributed.SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert launched_size() == size


def test_single_process_is_the_plain_path(monkeypatch):
    for name in distributed.SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    workers = Workers.connect()
    assert not workers.distributed and workers.is_root and workers.size == 1
    data, optimizer, evaluator = [1, 2, 3], object(), object()
    assert workers.scatter(data, 0) is data
    assert workers.optimizer(optimizer) is optimizer
    assert workers.evaluator(evaluator) is evaluator
    assert workers.seed(7) == 7 and workers.batch(50) == 50


def test_ranks_get_their_own_seeds_and_share_the_batch():
    ranks = [Workers(comm=object(), rank=r, size=2) for r in range(2)]
    seeds = [w.seed(0) for w in ranks]
    assert seeds[0] != seeds[1]
    assert seeds == [w.seed(0) for w in ranks]  # deterministic
    assert ranks[0].seed(1) != seeds[0]
    assert [w.batch(50) for w in ranks] == [25, 25] and ranks[0].batch(1) == 1
    assert ranks[0].is_root and not ranks[1].is_root


def test_processes_without_mpiexec_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(distributed, "mpiexec", lambda: None)
    with pytest.raises(CharaidError, match="train.processes is 2 but mpiexec was not found"):
        distributed.relaunch(2, "stages/train.py")


def test_processes_param_is_validated(sample_params):
    sample_params["train"]["processes"] = 0
    with pytest.raises(CharaidError, match=r"train.processes must be an integer in \[1, 256\]"):
        Params.from_mapping(sample_params)


# ----------------------------------------------------------------------------- real MPI

# 3 colour-distinct characters + extras, 120 crops each: 360 training crops, 120 held out.
# Both runs reach 98-100% by the last epoch (one process 0.983 or 1.000 depending on the
# machine's BLAS, two 1.000), so a gap over 3 of the 120 crops is a real fault, not noise.
TOLERANCE = 0.025
TRAIN = {"epochs": 12, "batch_size": 20, "lr": 0.002, "processes": 1}


def run_train(project: Path, *launcher: str, threads: int = 1) -> dict:
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ["PATH"],
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
    }
    command = [*launcher, sys.executable, str(ROOT / "stages" / "train.py")]
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return {
        "stdout": done.stdout,
        "speed": json.loads((project / "metrics" / "train_speed.json").read_text()),
        "live": json.loads((project / "metrics" / "live" / "metrics.json").read_text()),
        "weights": dict(np.load(project / "models" / "model.npz")),
    }


def accuracy(project: Path) -> float:
    from charaid.evaluate import evaluate

    metrics = evaluate(
        project / "data" / "dataset",
        project / "data" / "split",
        project / "models",
        project / "eval",
        # plain arg-max accuracy: no "unknown"
        softmax_at(0.0),
        "other",
    )
    return metrics["accuracy"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One process, `mpiexec -n 2` by hand, then `train.processes: 2`, on one small project."""
    from charaid.demo.crops import write_train_project

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(TRAIN)
    project = write_train_project(
        tmp_path_factory.mktemp("mpi"), params, per_class=120, names=("Akari", "Sora", "Mio")
    )
    mpiexec = distributed.mpiexec()
    assert mpiexec, "mpiexec not found: requirements.txt installs the mpich wheel"
    one = {**run_train(project, threads=2), "accuracy": accuracy(project)}
    two = {**run_train(project, mpiexec, "-n", "2"), "accuracy": accuracy(project)}
    params["train"]["processes"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    switched = run_train(project)
    print(f"\ntest accuracy: 1 process {one['accuracy']:.4f}, 2 processes {two['accuracy']:.4f}")
    return {"project": project, "one": one, "two": two, "switched": switched}


@pytest.mark.slow
def test_mpiexec_two_processes_match_one_process(runs):
    one, two = runs["one"], runs["two"]
    assert one["speed"]["processes"] == 1 and two["speed"]["processes"] == 2
    assert "2 processes" in two["stdout"] and two["stdout"].count("train: test accuracy") == 1
    assert one["accuracy"] >= 0.9, one["accuracy"]
    assert abs(one["accuracy"] - two["accuracy"]) <= TOLERANCE, (one["accuracy"], two["accuracy"])
    # the 2-process model really is another model (data split over ranks, averaged gradients)
    assert any(not np.array_equal(one["weights"][k], two["weights"][k]) for k in one["weights"])
    assert two["live"]["epoch"] == TRAIN["epochs"] and "accuracy" in two["live"]["test"]
    snapshots = runs["project"] / "data" / ".train_snapshots"
    assert not any(snapshots.glob("*/*"))  # every rank cleaned up after itself


@pytest.mark.slow
def test_processes_param_relaunches_and_is_deterministic(runs):
    explicit, switched = runs["two"], runs["switched"]
    assert switched["speed"]["processes"] == 2
    # same seeds, same shards, same reduction order: the very same weights
    for key, value in explicit["weights"].items():
        assert np.array_equal(value, switched["weights"][key]), key
    assert switched["live"] == explicit["live"]
