"""evaluate, whole chain: faces found *and* named on the episodes the classifier never saw.

Held-out crop accuracy flatters (a crop's neighbours in the same shot were trained on) and
ignores the detector's misses. This scores what a user meets in a new episode: on every kept
frame of each video with ground truth and no crop in the training split (with `split.by:
episode`, the test episodes and the other show), detect_faces' detections are named the way
`charaid predict` names them (their crops, the open-set `unknown` check) and compared with the
truth boxes and names, as `charaid detect-eval --model` does on annotated scenes
(`charaid.naming_eval`): found and named at IoU 0.3 and 0.5, per character, and a confusion with
`missed` and `unknown` columns. Extras and the other show's faces are right when named `other`
or `unknown`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from charaid.atomic import atomic_path, write_json
from charaid.boxes import Box, Detection
from charaid.config import PredictParams
from charaid.crops import face_boxes, load_crops
from charaid.frames import read_index
from charaid.naming_eval import score_naming
from charaid.predict import Recognizer
from charaid.truth import read_truth

CAST = "cast"  # truth role of a named character (demo ground truth)


def trained_videos(split_dir: Path) -> set[str]:
    """Videos with a crop in the training split (crop ids are `<video>/<frame>_<k>`)."""
    return {row["id"].rpartition("/")[0] for row in read_index(split_dir / "train.csv")}


def score_scenes(
    frames_dir: Path,
    faces_dir: Path,
    truth_dir: Path,
    split_dir: Path,
    rec: Recognizer,
    threshold: float,
    other_class: str,
) -> dict:
    """Found-and-named on the held-out videos; {"scored": False, "reason"} where none is."""
    truth = read_truth(truth_dir)
    seen = trained_videos(split_dir)
    videos = sorted({p.stem for p in truth_dir.glob("*.csv")} - seen)
    if not videos:
        return {
            "scored": False,
            "reason": "every video has crops in the training split; set split.by: episode",
        }
    rows = [r for r in read_index(faces_dir / "index.csv") if r["video"] in videos]
    crops = load_crops(faces_dir, rows)
    found = face_boxes(rows)
    frames = [
        (row["video"], str(row["frame"]))
        for row in read_index(frames_dir / "index.csv")
        if row["video"] in videos
    ]
    dets = [[Detection(box, 0.0) for _, box in found.get(key, [])] for key in frames]
    pieces = [crops[[i for i, _ in found.get(key, [])]] for key in frames]
    named = rec.name_crops(pieces, dets, threshold, top_k=1)

    def truth_name(face: dict) -> str:
        return face["character"] if face["role"] == CAST else other_class

    def scored():
        for key, picture in zip(frames, named, strict=True):
            faces = truth.get(key, [])
            boxes: list[Box] = [tuple(float(f[k]) for k in "xywh") for f in faces]
            yield (
                {"video": key[0]},
                [f.box for f in picture],
                [f.name for f in picture],
                boxes,
                [truth_name(f) for f in faces],
            )

    cast = sorted({truth_name(f) for key in frames for f in truth.get(key, [])} - {other_class})
    result = score_naming(scored(), rec.classes, other_class, (), cast + [other_class])
    faces = sum(sum(row.values()) for row in result["confusion"].values())
    return {"scored": True, "videos": videos, "frames": len(frames), "faces": faces, **result}


def write_confusion(path: Path, confusion: dict[str, dict[str, int]]) -> None:
    """One (actual, predicted) row per truth face, for DVC's confusion plot; `missed` where no
    detection matched it."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        for actual, said in confusion.items():
            for column, n in said.items():
                writer.writerows([(actual, column)] * n)


def evaluate_scenes(
    frames_dir: Path,
    faces_dir: Path,
    truth_dir: Path | None,
    split_dir: Path,
    model_dir: Path,
    predict: PredictParams,
    other_class: str,
    metrics_dir: Path,
) -> dict:
    """Write `metrics_dir/scenes.json` and `scenes_confusion.csv` (both exist either way, for
    DVC); `truth_dir` None: no ground truth to score against."""
    if truth_dir is None:
        result: dict = {"scored": False, "reason": "no ground truth (label.from is not truth)"}
    else:
        rec = Recognizer.from_params(model_dir, predict)
        threshold = predict.unknown_threshold
        result = score_scenes(
            frames_dir, faces_dir, truth_dir, split_dir, rec, threshold, other_class
        )
    write_json(metrics_dir / "scenes.json", result)
    write_confusion(metrics_dir / "scenes_confusion.csv", result.get("confusion", {}))
    return result
