"""Data-parallel training over MPI with ChainerMN (bundled in Chainer 7.8.1).

`mpiexec -n N python stages/train.py` (or `train.processes: N`, which re-launches the stage under
`mpiexec`) runs N copies of the trainer. Each holds 1/N of the training split and a batch of
`batch_size / N`, so one iteration still sees `batch_size` images; gradients are averaged over
the processes (the `naive` communicator: plain MPI allreduce, CPU only) and rank 0's initial
weights are broadcast, so every copy holds the same model. Only rank 0 writes outputs.

Without an MPI launch `Workers.single()` stands in, and training is exactly the one-process path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charaid.errors import CharaidError

# Set by the launchers on every process they start: MPICH/Hydra and Intel MPI (PMI_*),
# Open MPI (OMPI_*), PMIx-based launchers such as srun (PMIX_*).
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")


def launched_size() -> int:
    """How many processes an MPI launcher started (1 when not launched by one)."""
    for name in SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


@dataclass
class Workers:
    """The training processes as seen from one of them."""

    comm: Any  # a chainermn communicator, or None for a single process
    rank: int = 0
    size: int = 1

    @classmethod
    def single(cls) -> Workers:
        return cls(None)

    @classmethod
    def connect(cls) -> Workers:
        """The MPI world when launched by mpiexec with more than one process, else `single()`."""
        if launched_size() <= 1:
            return cls.single()
        try:
            import chainermn
        except ImportError as exc:  # mpi4py or its MPI library missing
            raise CharaidError(
                f"launched under MPI but ChainerMN cannot start ({exc}); "
                "install requirements.txt (mpi4py, mpich)"
            ) from None
        comm = chainermn.create_communicator("naive")
        return cls(comm, comm.rank, comm.size)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.comm is not None

    def seed(self, seed: int) -> int:
        """Seed for this rank's random streams: `seed` itself on one process."""
        if not self.distributed:
            return seed
        import numpy as np

        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def batch(self, batch_size: int) -> int:
        """Per-process batch: the global batch split over the processes."""
        return max(1, batch_size // self.size)

    def scatter(self, dataset: Any, seed: int, equal: bool = True) -> Any:
        """This rank's share of `dataset` (a seeded shuffle, split in N equal parts).

        `equal` pads the shares to one length by repeating a few examples, so every rank runs
        the same number of iterations per epoch (the allreduce needs them in step).
        """
        if not self.distributed:
            return dataset
        import chainermn

        return chainermn.scatter_dataset(
            dataset, self.comm, shuffle=True, seed=seed, force_equal_length=equal
        )

    def optimizer(self, optimizer: Any) -> Any:
        if not self.distributed:
            return optimizer
        import chainermn

        return chainermn.create_multi_node_optimizer(optimizer, self.comm)

    def evaluator(self, evaluator: Any) -> Any:
        """Each rank evaluates its share; the reported means are averaged over the ranks."""
        if not self.distributed:
            return evaluator
        import chainermn

        return chainermn.create_multi_node_evaluator(evaluator, self.comm)


def mpiexec() -> str | None:
    """The `mpiexec` beside this Python (the PyPI `mpich` wheel puts it there), else on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def relaunch(processes: int, script: str) -> int:
    """Run `script` again under `mpiexec -n processes`; return its exit status."""
    launcher = mpiexec()
    if launcher is None:
        raise CharaidError(
            f"params.yaml: train.processes is {processes} but mpiexec was not found; "
            "install requirements.txt (mpich) or set train.processes: 1"
        )
    # One BLAS thread per process unless the caller chose: N processes already use N cores.
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **os.environ}
    command = [launcher, "-n", str(processes), sys.executable, script]
    return subprocess.run(command, env=env).returncode
