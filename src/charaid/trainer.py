"""What charaid's two Chainer trainings (`train`, `train_detector`) share: every random draw
seeded from (seed, position in the run), so a run resumed from a snapshot draws what the
uninterrupted one did, and the per-epoch CSV log that `dvc plots` reads."""

from __future__ import annotations

import csv
import functools
import hashlib
import random
from pathlib import Path

import numpy as np
from chainer import iterators, serializers, training
from chainer.training import extensions

from charaid.atomic import atomic_path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # Chainer's initializers and dropout draw from numpy's global state


def derived_seed(seed: int, *keys: object) -> int:
    """A 32-bit seed from the run's seed and a position (epoch, iteration) in it."""
    digest = hashlib.sha256(":".join(map(str, (seed, *keys))).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def epoch_snapshot() -> training.Extension:
    """The trainer's state after each epoch (`snapshot` in the run folder), for a killed run to
    resume. Uncompressed: zlib took about as long as the detector's validation pass each epoch,
    for a file that lives only until the run ends."""
    save = functools.partial(serializers.save_npz, compression=False)
    return extensions.snapshot(savefun=save, filename="snapshot")


class EpochOrderSampler(iterators.OrderSampler):
    """Shuffles each epoch from (seed, epoch), not from a running generator: a run resumed from
    a snapshot (which stores the epoch but no generator state) sees the same orders."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.iterator: iterators.SerialIterator | None = None

    def __call__(self, current_order: np.ndarray, current_position: int) -> np.ndarray:
        # called as epoch `iterator.epoch` ends, for the next one (before the iterator exists:
        # the first epoch's order)
        epoch = -1 if self.iterator is None else self.iterator.epoch
        rng = np.random.RandomState(derived_seed(self.seed, "order", epoch))
        return rng.permutation(len(current_order))


class SeededUpdater(training.updaters.StandardUpdater):
    """Reseeds numpy's global generator (dropout draws from it) from (seed, iteration) before
    each update, so a resumed run draws exactly what the uninterrupted one did."""

    def __init__(self, seed: int, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seed = seed

    def update_core(self) -> None:
        np.random.seed(derived_seed(self.seed, "update", self.iteration))
        super().update_core()


def _rounded(key: str, value: object) -> object:
    if not isinstance(value, float):
        return value
    return float(f"{value:.4g}") if key == "lr" else round(value, 5)


class EpochCsv(training.Extension):
    """Append each epoch's LogReport entry to a CSV that `dvc plots` reads. With `required`,
    only the epochs whose entry has that key get a row: an epoch that was not scored leaves no
    empty cells for a plot to read as zeros."""

    trigger = (1, "epoch")
    priority = training.PRIORITY_READER

    def __init__(
        self, path: Path, columns: dict[str, str] | None = None, required: str | None = None
    ) -> None:
        self.path, self.required = path, required
        self.columns = columns or {  # CSV column: LogReport key
            "epoch": "epoch",
            "loss": "main/loss",
            "accuracy": "main/accuracy",
            "test_loss": "validation/main/loss",
            "test_accuracy": "validation/main/accuracy",
            "lr": "lr",
        }

    def __call__(self, trainer: training.Trainer) -> None:
        log = trainer.get_extension("LogReport").log
        log = [e for e in log if self.required is None or self.required in e]
        rows = [{col: e.get(key) for col, key in self.columns.items()} for e in log]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.columns))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _rounded(k, v) for k, v in row.items()})
