"""evaluate's whole-chain score on held-out episodes: which videos count, what is written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from charaid.evaluate_scenes import evaluate_scenes, trained_videos, write_confusion
from tests.helpers import section_with


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_videos_with_a_training_crop_are_not_held_out(tmp_path):
    _write(
        tmp_path / "train.csv",
        [
            {"id": "ep01/3_0", "label": "a"},
            {"id": "ep01/4_1", "label": "b"},
            {"id": "sub/ep02/7_0", "label": "a"},
        ],
    )
    assert trained_videos(tmp_path) == {"ep01", "sub/ep02"}


def test_confusion_has_one_row_per_truth_face(tmp_path):
    path = tmp_path / "scenes_confusion.csv"
    write_confusion(path, {"akari": {"akari": 3, "unknown": 1, "missed": 2}, "other": {"b": 0}})
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 6
    assert sum(r["predicted"] == "missed" for r in rows) == 2
    assert {r["actual"] for r in rows} == {"akari"}


def test_without_ground_truth_both_files_exist_and_say_so(tmp_path):
    t = tmp_path
    result = evaluate_scenes(t, t, None, t, t, section_with("predict"), "other", t)
    assert result["scored"] is False
    assert json.loads((tmp_path / "scenes.json").read_text()) == result
    assert (tmp_path / "scenes_confusion.csv").read_text().splitlines() == ["actual,predicted"]
