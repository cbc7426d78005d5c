"""A detector's score threshold: the precision-recall curve over scores, the cut it suggests,
and `detect_faces.detector_min_score` as a number (a fixed one, or `auto`).

`auto` is the threshold `train_detector` chose on its validation pictures and wrote beside the
weights: a detector's scores depend on how far it trained, so no one fixed cut serves them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from charaid.boxes import Box, iou

UNCALIBRATED = 0.3  # `auto` for a detector that chose no threshold (an ONNX export, no val)


def threshold(min_score: float | str, meta: dict) -> float:
    """The face score to keep: `min_score`, or with `auto` the one in the detector's `meta`."""
    return float(meta.get("min_score", UNCALIBRATED)) if min_score == "auto" else float(min_score)


def pr_curve(
    frames: Iterable[tuple[Sequence[Box], Sequence[float], Sequence[Box]]], min_iou: float = 0.5
) -> list[dict]:
    """Recall and precision if only detections scoring `score` or more were kept: one row per
    distinct score, best first. `frames` gives (detections, their scores, truths). As usual for
    a PR curve, each frame's detections are matched best score first, each to the free truth
    face it overlaps most (the scores above match best IoU first: figures can differ slightly).
    """
    marks: list[tuple[float, bool]] = []
    faces = 0
    for preds, scores, truths in frames:
        faces += len(truths)
        free = list(range(len(truths)))
        for i in sorted(range(len(preds)), key=lambda i: -scores[i]):
            best = max(free, key=lambda j: iou(preds[i], truths[j]), default=None)
            hit = best is not None and iou(preds[i], truths[best]) >= min_iou
            if hit:
                free.remove(best)
            marks.append((float(scores[i]), hit))
    marks.sort(key=lambda m: -m[0])
    rows, hits = [], 0
    for k, (score_, hit) in enumerate(marks, 1):
        hits += hit
        if k == len(marks) or marks[k][0] != score_:
            recall = hits / faces if faces else 0.0
            rows.append({"score": score_, "recall": recall, "precision": hits / k})
    return rows


def recall_at_precision(curve: list[dict], precision: float) -> dict:
    """The most recall any score threshold keeps at `precision` or better, and that threshold
    (None for both when none does)."""
    ok = [row for row in curve if row["precision"] >= precision]
    if not ok:
        return {"recall": None, "min_score": None}
    best = max(ok, key=lambda row: (row["recall"], row["score"]))
    return {"recall": round(best["recall"], 4), "min_score": round(best["score"], 4)}
