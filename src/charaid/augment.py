"""Training-time augmentation for face crops: flips, shifted crops, colour jitter.

Each example draws from its own generator, seeded from (seed, index, how many times it was drawn),
so a run is the same whatever the batch order or the number of threads.
"""

from __future__ import annotations

import chainer
import numpy as np


def augment(x: np.ndarray, rng: np.random.Generator, shift: float = 0.1) -> np.ndarray:
    """One (3, S, S) float32 [0, 1] crop: mirrored half the time, shifted by up to `shift` of its
    side (reflected border), brightness/contrast/saturation scaled by 0.8-1.2."""
    c, h, w = x.shape
    if rng.random() < 0.5:
        x = x[:, :, ::-1]
    pad = max(1, int(round(shift * h)))
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    dy, dx = rng.integers(0, 2 * pad + 1, size=2)
    x = padded[:, dy : dy + h, dx : dx + w]
    bright, contrast, sat = rng.uniform(0.8, 1.2, size=3)
    grey = x.mean(axis=0, keepdims=True)
    x = grey + (x - grey) * sat  # saturation: away from / towards each pixel's grey
    x = (x - x.mean()) * contrast + x.mean() * bright
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


class AugmentedDataset(chainer.dataset.DatasetMixin):
    """(x, y) pairs whose x is augmented afresh every time it is drawn."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.x, self.y, self.seed = x, y, seed
        self.draws = np.zeros(len(x), np.int64)

    def __len__(self) -> int:
        return len(self.x)

    def get_example(self, i: int) -> tuple[np.ndarray, np.int32]:
        rng = np.random.default_rng((self.seed, int(i), int(self.draws[i])))
        self.draws[i] += 1
        return augment(self.x[i], rng), self.y[i]
