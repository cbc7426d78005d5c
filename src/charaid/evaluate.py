"""evaluate: accuracy, per-class precision/recall, confusion matrix, unknown handling.

Two views of the same predictions:
- closed set: the top class, as the seed blog measured;
- open set: under `predict.unknown_threshold` a face is "unknown", which counts as right for the
  "other" class. The other show's faces must come out as "other" or "unknown" (rejection rate).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from charaid.atomic import atomic_path, write_json
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.labels import load_dataset
from charaid.predict import Recognizer
from charaid.visualize import UNKNOWN


def crops_for(images: np.ndarray, ids: list[str], rows: list[dict]) -> np.ndarray:
    where = {crop_id: i for i, crop_id in enumerate(ids)}
    return images[[where[r["id"]] for r in rows]] if rows else images[:0]


def open_set_names(rec: Recognizer, probs: np.ndarray, threshold: float) -> list[str]:
    return [rec.name(p, threshold)[0] for p in probs]


def evaluate(
    dataset_dir: Path,
    split_dir: Path,
    model_dir: Path,
    metrics_dir: Path,
    threshold: float,
    other_class: str,
) -> dict:
    """Write `metrics_dir/eval.json` and `metrics_dir/confusion.csv`; return the metrics."""
    images, rows = load_dataset(dataset_dir)
    ids = [r["id"] for r in rows]
    rec = Recognizer(model_dir)
    test = read_index(split_dir / "test.csv")
    reject = read_index(split_dir / "reject.csv")
    truth = [r["label"] for r in test]
    foreign = sorted(set(truth) - set(rec.classes))
    if foreign:
        raise CharaidError(
            f"{model_dir / 'model.json'}: the model knows {', '.join(rec.classes)}, not the "
            f"dataset's {', '.join(foreign)}: a model of another class set; rerun train"
        )
    probs = rec.probabilities(crops_for(images, ids, test))
    closed = [rec.classes[i] for i in probs.argmax(axis=1)]
    opened = open_set_names(rec, probs, threshold)

    def right(actual: str, said: str) -> bool:
        return said == actual or (actual == other_class and said == UNKNOWN)

    labels = rec.classes
    p, r, f, s = precision_recall_fscore_support(truth, closed, labels=labels, zero_division=0)
    metrics = {
        "accuracy": round(accuracy_score(truth, closed), 4),
        "macro_f1": round(
            f1_score(truth, closed, labels=labels, average="macro", zero_division=0), 4
        ),
        "open_set": {
            "threshold": threshold,
            "accuracy": round(
                float(np.mean([right(a, b) for a, b in zip(truth, opened, strict=True)])), 4
            ),
            "unknown_rate": round(float(np.mean([b == UNKNOWN for b in opened])), 4),
        },
        "per_class": {
            c: {
                "precision": round(float(p[i]), 4),
                "recall": round(float(r[i]), 4),
                "f1": round(float(f[i]), 4),
                "support": int(s[i]),
            }
            for i, c in enumerate(labels)
        },
        "test_faces": len(test),
    }
    if reject:
        said = open_set_names(rec, rec.probabilities(crops_for(images, ids, reject)), threshold)
        rejected = [name in (other_class, UNKNOWN) for name in said]
        metrics["other_show"] = {
            "faces": len(reject),
            "rejection_rate": round(float(np.mean(rejected)), 4),
        }
    write_json(metrics_dir / "eval.json", metrics)
    with atomic_path(metrics_dir / "confusion.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows(zip(truth, closed, strict=True))
    return metrics
