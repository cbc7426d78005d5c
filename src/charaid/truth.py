"""Ground-truth CSVs on disk (`<video>.csv`, as make_demo writes them): one row per visible face
per frame, `frame,character,role,x,y,w,h`; read by label, train_detector, detect_eval and
evaluate."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from charaid.errors import CharaidError
from charaid.frames import read_index


def read_truth(truth_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """Truth rows grouped by (video, frame)."""
    if not truth_dir.is_dir():
        raise CharaidError(f"{truth_dir}: ground-truth folder not found (label.path)")
    grouped: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted(truth_dir.glob("*.csv")):
        for row in read_index(path):
            grouped[(path.stem, str(row["frame"]))].append(row)
    if not grouped:
        raise CharaidError(f"{truth_dir}: no ground-truth CSV files")
    return grouped
