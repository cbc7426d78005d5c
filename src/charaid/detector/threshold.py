"""A detector's score threshold: the precision-recall curve over scores, the cuts it suggests,
and `detect_faces.detector_min_score` as a `Cut` (a fixed number, or `auto`).

`auto` is the cut `train_detector` chose on its validation pictures and wrote beside the
weights: a detector's scores depend on how far it trained, so no one fixed cut serves them all.
They depend on the face's size too: a large face's centre is a broad, low peak on the heat map
(its Gaussian bump spans many cells), a small one's a sharp peak. So the learned detector keeps
one cut per band of face side (`calibrate_bands`): dexter val, the same weights, recall 0.791
-> 0.932 at precision 0.964 -> 0.917 (IoU 0.5).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from charaid.boxes import Box, iou

UNCALIBRATED = 0.3  # `auto` for a detector that chose no threshold (an ONNX export, no val)
SIDE_BANDS = (32.0, 64.0, 128.0)  # face sides (detector-input pixels) between the cuts' bands
BAND_FACES = 10  # a band keeps the overall cut unless validation has this many faces in it
BAND_CANDIDATES = 40  # cuts tried per band (quantiles of its detections' scores)
FLOOR = 0.05  # the lowest face score calibration considers


@dataclass(frozen=True)
class Cut:
    """The least score a face must reach, one per band of face side in detector-input pixels:
    below SIDE_BANDS[0], between each pair, above SIDE_BANDS[-1]."""

    scores: tuple[float, ...]

    @classmethod
    def uniform(cls, score: float) -> Cut:
        return cls((float(score),) * (len(SIDE_BANDS) + 1))

    def at(self, side: float) -> float:
        return self.scores[bisect.bisect_right(SIDE_BANDS, side)]

    @property
    def lowest(self) -> float:
        return min(self.scores)


def threshold(min_score: float | str, meta: dict) -> Cut:
    """The cut to keep faces at: `min_score` for every size, or with `auto` the detector's own
    (its per-size cuts in `meta`, else its single one)."""
    if min_score != "auto":
        return Cut.uniform(float(min_score))
    bands = meta.get("min_score_by_side")
    if isinstance(bands, list) and len(bands) == len(SIDE_BANDS) + 1:
        return Cut(tuple(float(b) for b in bands))
    return Cut.uniform(float(meta.get("min_score", UNCALIBRATED)))


Frame = tuple[Sequence[Box], Sequence[float], Sequence[Box]]  # (detections, scores, truths)


def _marks(preds: Sequence[Box], scores: Sequence[float], truths: Sequence[Box], min_iou: float):
    """(score, hit) of each detection, best score first, each matched to the free truth face it
    overlaps most."""
    free = list(range(len(truths)))
    marks = []
    for i in sorted(range(len(preds)), key=lambda i: -scores[i]):
        best = max(free, key=lambda j: iou(preds[i], truths[j]), default=None)
        hit = best is not None and iou(preds[i], truths[best]) >= min_iou
        if hit:
            free.remove(best)
        marks.append((float(scores[i]), hit))
    return marks


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
        marks += _marks(preds, scores, truths, min_iou)
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


def at_cut(frames: Sequence[Frame], cut: Cut, min_iou: float = 0.5) -> dict:
    """Recall and precision of the detections each frame keeps at `cut` (boxes in
    detector-input pixels), matched as `pr_curve` matches them."""
    faces = kept = hits = 0
    for preds, scores, truths in frames:
        keep = [i for i, b in enumerate(preds) if scores[i] >= cut.at(b[2])]
        marks = _marks([preds[i] for i in keep], [scores[i] for i in keep], truths, min_iou)
        faces, kept, hits = faces + len(truths), kept + len(marks), hits + sum(h for _, h in marks)
    return {"recall": hits / faces if faces else 0.0, "precision": hits / kept if kept else 0.0}


def _f1(row: dict) -> float:
    r, p = row["recall"], row["precision"]
    return 2 * r * p / (r + p) if r + p else 0.0


def calibrate_bands(frames: Sequence[Frame], start: float, rounds: int = 2) -> Cut:
    """Per-size cuts with the best F1 at IoU 0.5 on `frames` (boxes in detector-input pixels),
    from `start` (the best single cut), one band at a time. A band with fewer than BAND_FACES
    truth faces keeps `start`; a band's cut moves only for a better F1."""
    cut = list(Cut.uniform(start).scores)
    bands = range(len(cut))
    band_of = Cut(tuple(bands)).at  # a side -> its band's index
    faces = [sum(band_of(t[2]) == k for _, _, truths in frames for t in truths) for k in bands]
    best = _f1(at_cut(frames, Cut(tuple(cut))))
    for _ in range(rounds):
        for k in bands:
            if faces[k] < BAND_FACES:
                continue
            scores = np.unique(
                [
                    s
                    for preds, ss, _ in frames
                    for b, s in zip(preds, ss, strict=True)
                    if band_of(b[2]) == k
                ]
            )
            if not len(scores):
                continue
            # halfway below each score: the same faces kept, a margin for new ones
            halfway = (scores + np.concatenate([[FLOOR], scores[:-1]])) / 2
            picks = np.quantile(halfway, np.linspace(0, 1, BAND_CANDIDATES), method="nearest")
            for candidate in np.unique(picks):
                trial = cut[:k] + [round(float(candidate), 4)] + cut[k + 1 :]
                f1 = _f1(at_cut(frames, Cut(tuple(trial))))
                if f1 > best + 1e-9:
                    best, cut = f1, trial
    return Cut(tuple(cut))
