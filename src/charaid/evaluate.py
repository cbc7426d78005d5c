"""evaluate: accuracy, per-class precision/recall, confusion matrix, unknown handling.

Two views of the same predictions:
- closed set: the top class, as the seed blog measured;
- open set: a face the model finds unfamiliar is "unknown" (`predict.unknown_method`: knn
  similarity under the threshold calibrated on training faces, or softmax probability under
  `predict.unknown_threshold`), which counts as right for the "other" class. The other show's
  faces must come out as "other" or "unknown" (rejection rate). Both views are reported, so the
  cost of the threshold on the cast is plain: `accuracy` vs `open_set.accuracy`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from charaid.atomic import atomic_path, write_json
from charaid.config import PredictParams
from charaid.dataset import load_dataset
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.models import negative_class, relabel
from charaid.predict import Recognizer
from charaid.visualize import UNKNOWN


def crops_for(images: np.ndarray, ids: list[str], rows: list[dict]) -> np.ndarray:
    where = {crop_id: i for i, crop_id in enumerate(ids)}
    return images[[where[r["id"]] for r in rows]] if rows else images[:0]


def open_set_names(
    rec: Recognizer, probs: np.ndarray, threshold: float, scores: np.ndarray | None = None
) -> list[str]:
    return [
        rec.name(p, threshold, score=None if scores is None else scores[i])[0]
        for i, p in enumerate(probs)
    ]


def evaluate(
    dataset_dir: Path,
    split_dir: Path,
    model_dir: Path,
    metrics_dir: Path,
    predict: PredictParams,
    other_class: str,
) -> dict:
    """Write `metrics_dir/eval.json` and `metrics_dir/confusion.csv`; return the metrics.

    `predict` is params.yaml's predict section: the open-set method and its threshold.
    """
    threshold = predict.unknown_threshold
    images, rows = load_dataset(dataset_dir)
    ids = [r["id"] for r in rows]
    rec = Recognizer.from_params(model_dir, predict)
    test = read_index(split_dir / "test.csv")
    reject = read_index(split_dir / "reject.csv")
    truth = [relabel(r["label"], rec.one_vs_rest) for r in test]
    foreign = sorted(set(truth) - set(rec.classes))
    if foreign:
        raise CharaidError(
            f"{model_dir / 'model.json'}: the model knows {', '.join(rec.classes)}, not the "
            f"dataset's {', '.join(foreign)}: a model of another class set; run dvc repro train"
        )
    if rec.one_vs_rest:  # "not X" stands for the whole rest, the other class included
        other_class = negative_class(rec.one_vs_rest)
    probs, scores = rec.probabilities(crops_for(images, ids, test), scores=True)
    closed = [rec.classes[i] for i in probs.argmax(axis=1)]
    opened = open_set_names(rec, probs, threshold, scores)

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
            "method": rec.method,
            "threshold": round(rec.gallery.threshold, 4) if rec.gallery else threshold,
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
        rprobs, rscores = rec.probabilities(crops_for(images, ids, reject), scores=True)
        said = open_set_names(rec, rprobs, threshold, rscores)
        closed_said = [rec.classes[i] for i in rprobs.argmax(axis=1)]
        metrics["other_show"] = {
            "faces": len(reject),
            "rejection_rate": round(float(np.mean([n in (other_class, UNKNOWN) for n in said])), 4),
            "taken_as_other_without_threshold": round(
                float(np.mean([n == other_class for n in closed_said])), 4
            ),
        }
    write_json(metrics_dir / "eval.json", metrics)
    with atomic_path(metrics_dir / "confusion.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows(zip(truth, closed, strict=True))
    return metrics
