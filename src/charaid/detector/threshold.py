"""`detect_faces.detector_min_score` as a number: a fixed one, or `auto`.

`auto` is the threshold `train_detector` chose on its validation pictures and wrote beside the
weights: a detector's scores depend on how far it trained, so no one fixed cut serves them all.
"""

from __future__ import annotations

UNCALIBRATED = 0.3  # `auto` for a detector that chose no threshold (an ONNX export, no val)


def threshold(min_score: float | str, meta: dict) -> float:
    """The face score to keep: `min_score`, or with `auto` the one in the detector's `meta`."""
    return float(meta.get("min_score", UNCALIBRATED)) if min_score == "auto" else float(min_score)
