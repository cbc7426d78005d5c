"""split: stratified train/test manifests with a fixed test holdout per class, seeded.

Each class is shuffled by its own generator (seeded from the split seed and the class name) after
sorting by crop id, so the split does not depend on input order and adding a class leaves the
others' splits unchanged.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from charaid.atomic import atomic_dir
from charaid.errors import CharaidError
from charaid.labels import OTHERSHOW

FIELDS = ["id", "label"]


def holdout_size(label: str, n: int, test_per_class: float) -> int:
    """Test crops for a class of `n`; at least one crop must stay for training."""
    if test_per_class >= 1:
        if test_per_class != int(test_per_class):
            raise CharaidError(
                f"params.yaml: split.test_per_class must be a whole count >= 1 or a fraction in "
                f"(0, 1) (got {test_per_class})"
            )
        k = int(test_per_class)
    else:
        k = max(1, int(round(n * test_per_class))) if test_per_class > 0 else 0
    if k >= n:
        raise CharaidError(
            f"split: class {label!r} has {n} crops, not enough to hold out {k} for testing and "
            "keep some for training; lower split.test_per_class or add crops"
        )
    return k


def _class_rng(seed: int, label: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def split_rows(rows: list[dict], test_per_class: float, seed: int) -> dict[str, list[dict]]:
    """{'train', 'test', 'reject'}: rows of each part; other-show faces go to 'reject' only."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    reject = []
    for row in rows:
        if row["label"].startswith(f"{OTHERSHOW}:"):
            reject.append({"id": row["id"], "label": row["label"]})
        else:
            by_class[row["label"]].append({"id": row["id"], "label": row["label"]})
    if len(by_class) < 2:
        raise CharaidError(
            f"split: need at least 2 classes to train a classifier, found {len(by_class)} "
            f"({', '.join(by_class) or 'none'})"
        )
    train, test = [], []
    for label in sorted(by_class):
        items = sorted(by_class[label], key=lambda r: r["id"])
        k = holdout_size(label, len(items), test_per_class)
        order = _class_rng(seed, label).permutation(len(items))
        test += [items[i] for i in sorted(order[:k])]
        train += [items[i] for i in sorted(order[k:])]
    return {"train": train, "test": test, "reject": sorted(reject, key=lambda r: r["id"])}


def write_split(parts: dict[str, list[dict]], out_dir: Path) -> dict:
    with atomic_dir(out_dir) as tmp:
        for name, rows in parts.items():
            with open(tmp / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(rows)
    return {name: len(rows) for name, rows in parts.items()}
