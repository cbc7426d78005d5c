"""How good is face detection: recall, precision and F1 against ground truth, at IoU 0.5 and 0.3.

Two sources of ground truth:

- the demo's truth CSVs (`frame,character,role,x,y,w,h`, canonical boxes): the `detect_eval`
  stage scores the boxes detect_faces wrote for the frames extract_frames kept;
- any folder of pictures annotated in YOLO format (`charaid detect-eval FOLDER`): one
  `<picture stem>.txt` beside each picture (or in the `labels/` twin of an `images/` folder),
  one line `class cx cy w h` per face, normalised to the picture size. Every line is a face,
  whatever its class. A picture without a box file has no faces (YOLO's convention).

YOLO boxes are whatever the annotator drew, usually a rectangle from hairline or brows to chin.
Detections are canonical squares (one face width, centred a little below the face centre), so
each YOLO box is taken as a face box and made a square of the same area (side sqrt(w * h)) about
its own centre. The conventions can still differ by a few percent of a face, which is why
IoU 0.3 is reported beside the usual 0.5: a face found at 0.3 but not 0.5 is a box-convention
question, a face missing at 0.3 is a real miss.
"""

from __future__ import annotations

import bisect
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from charaid.boxes import Box, match
from charaid.detector.threshold import pr_curve, recall_at_precision
from charaid.errors import CharaidError
from charaid.yolo import read_labeled_folder

if TYPE_CHECKING:
    from charaid.config import DetectFacesParams, MakeDemoParams
    from charaid.naming_eval import Namer

IOUS = (0.5, 0.3)
# band edges of a face's side as a share of its picture's long side (`by_face_size`): where a
# detector's misses lie. The learned detector sees a picture at a 512-px long side, so 5% is a
# 26-px face to it (icartoonface val: 0.20 of the faces under 5% found, 0.79 at 20-40%)
SIZE_EDGES = (0.05, 0.1, 0.2, 0.4)
# `--curve` with the learned and onnx backends: they keep only faces over their own cuts, so
# the curve comes from a second pass that keeps every face scoring this or more
CURVE_FLOOR = 0.05


@dataclass
class Tally:
    """Counts over some frames: truth faces, detections, and matches at each IoU threshold."""

    faces: int = 0
    detections: int = 0
    hits: dict[float, int] = field(default_factory=lambda: dict.fromkeys(IOUS, 0))

    def add(self, preds: Sequence[Box], truths: Sequence[Box]) -> None:
        self.faces += len(truths)
        self.detections += len(preds)
        for t in IOUS:
            self.hits[t] += len(match(preds, truths, t))

    def summary(self) -> dict:
        """Counts, then recall / precision / F1 per threshold (keys without dots: DVC nests)."""
        out: dict = {"faces": self.faces, "detections": self.detections}
        for t in IOUS:
            hit = self.hits[t]
            # no faces and no detections is a perfect score, not a division by zero
            recall = hit / self.faces if self.faces else float(self.detections == 0)
            precision = hit / self.detections if self.detections else float(self.faces == 0)
            f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
            tag = f"iou{round(t * 100)}"
            out[f"recall_{tag}"] = round(recall, 4)
            out[f"precision_{tag}"] = round(precision, 4)
            out[f"f1_{tag}"] = round(f1, 4)
        return out


def size_band(side: float, long_side: float) -> str:
    """The `SIZE_EDGES` band of a face `side` pixels wide in a picture `long_side` pixels long."""
    k = bisect.bisect_right(SIZE_EDGES, side / long_side)
    if k == 0:
        return f"under {SIZE_EDGES[0]:.0%}"
    if k == len(SIZE_EDGES):
        return f"{SIZE_EDGES[-1]:.0%} or more"
    return f"{SIZE_EDGES[k - 1]:.0%}-{SIZE_EDGES[k]:.0%}"


def score_by_size(frames: Iterable[tuple[int, Sequence[Box], Sequence[Box]]]) -> dict:
    """Per `size_band`, smallest first: the truth faces and the share found, the detections and
    the share right, at each IoU, from (picture's long side, detections, truths) per frame. A
    detection counts in its own side's band, a found face in its truth's. A share of nothing is
    None."""
    names = [size_band(0.0, 1.0)] + [size_band(e, 1.0) for e in SIZE_EDGES]
    faces = dict.fromkeys(names, 0)
    detections = dict.fromkeys(names, 0)
    found = {n: dict.fromkeys(IOUS, 0) for n in names}
    right = {n: dict.fromkeys(IOUS, 0) for n in names}
    for long_side, preds, truths in frames:
        truth_band = [size_band(math.sqrt(w * h), long_side) for _, _, w, h in truths]
        pred_band = [size_band(math.sqrt(w * h), long_side) for _, _, w, h in preds]
        for band in truth_band:
            faces[band] += 1
        for band in pred_band:
            detections[band] += 1
        for t in IOUS:
            for i, j in match(preds, truths, t):
                found[truth_band[j]][t] += 1
                right[pred_band[i]][t] += 1
    out = {}
    for n in names:
        row: dict = {"faces": faces[n], "detections": detections[n]}
        for t in IOUS:
            tag = f"iou{round(t * 100)}"
            row[f"recall_{tag}"] = round(found[n][t] / faces[n], 4) if faces[n] else None
            row[f"precision_{tag}"] = (
                round(right[n][t] / detections[n], 4) if detections[n] else None
            )
        out[n] = row
    return out


def score(frames: Iterable[tuple[dict[str, str], Sequence[Box], Sequence[Box]]]) -> dict:
    """Score (groups, detections, truths) per frame, overall and per group.

    `groups` maps a grouping (e.g. "video", "lighting") to the frame's value in it; the result
    is {"overall": summary, "frames": n, <grouping>: {value: summary}}.
    """
    overall = Tally()
    grouped: dict[str, dict[str, Tally]] = {}
    n = 0
    for groups, preds, truths in frames:
        n += 1
        overall.add(preds, truths)
        for kind, value in groups.items():
            grouped.setdefault(kind, {}).setdefault(value, Tally()).add(preds, truths)
    result: dict = {"frames": n, "overall": overall.summary()}
    for kind, tallies in grouped.items():
        result[kind] = {value: t.summary() for value, t in sorted(tallies.items())}
    return result


def write_curve(path: Path, curve: list[dict], points: int = 200) -> None:
    """The curve as CSV (score, recall, precision), thinned to about `points` rows."""
    from charaid.atomic import write_text

    step = max(1, len(curve) // points)
    rows = curve[::step] + ([curve[-1]] if curve and (len(curve) - 1) % step else [])
    lines = ["score,recall,precision"]
    lines += [f"{r['score']:.4f},{r['recall']:.4f},{r['precision']:.4f}" for r in rows]
    write_text(path, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- the pipeline


def _box(row: dict) -> Box:
    return tuple(float(row[k]) for k in "xywh")


def score_pipeline(
    frames_dir: Path,
    faces_dir: Path,
    truth_dir: Path,
    lighting: dict | None = None,
    sheet: Path | None = None,
    curve: Path | None = None,
    held_out: set[str] | None = None,
) -> dict:
    """Score detect_faces' boxes on the frames extract_frames kept, for videos with a truth CSV.

    A kept frame with no truth row has no faces (its detections are false positives). With
    `lighting` ({(video, frame): condition}), results are also given per lighting condition.
    With `held_out` (the videos the learned detector never trained on), results are also
    given for those and for the rest (`detector_training`: held_out / trained).
    With `sheet`, a picture of the misses and false detections is written there; with
    `curve`, the precision-recall curve over detection scores (CSV).
    """
    from charaid.frames import read_index
    from charaid.truth import read_truth

    for index in (frames_dir / "index.csv", faces_dir / "index.csv"):
        if not index.is_file():
            raise CharaidError(f"{index}: missing; run `dvc repro detect_faces` first")
    truth = read_truth(truth_dir)
    videos = {p.stem for p in truth_dir.glob("*.csv")}
    found: dict[tuple[str, str], list[tuple[Box, float]]] = {}
    for row in read_index(faces_dir / "index.csv"):
        found.setdefault((row["video"], str(row["frame"])), []).append(
            (_box(row), float(row["score"]))
        )

    def frames():
        for row in read_index(frames_dir / "index.csv"):
            key = (row["video"], str(row["frame"]))
            if row["video"] not in videos:
                continue  # no ground truth for this video
            groups = {"video": row["video"]}
            if lighting is not None and key in lighting:
                groups["lighting"] = lighting[key]
            if held_out is not None:
                groups["detector_training"] = "held_out" if row["video"] in held_out else "trained"
            truths = [_box(t) for t in truth.get(key, [])]
            yield frames_dir / row["path"], groups, found.get(key, []), truths

    return _score_and_show(frames(), sheet, curve)


def _score_and_show(
    frames: Iterable[tuple],
    sheet: Path | None,
    curve: Path | None,
    curve_from: Iterable[tuple[Sequence[Box], Sequence[float], Sequence[Box]]] | None = None,
) -> dict:
    """`score` of (picture, groups, [(box, score)], truths) per frame, the recall kept at
    precision 0.95 by a score threshold, and the error sheet and PR curve files if asked (the
    curve from `curve_from`'s (boxes, scores, truths) per frame when given)."""
    cases = []

    def scored():
        for picture, groups, found, truths in frames:
            preds = [box for box, _ in found]
            cases.append((picture, preds, [score_ for _, score_ in found], truths))
            yield groups, preds, truths

    result = score(scored())
    pr = pr_curve((preds, scores, truths) for _, preds, scores, truths in cases)
    result["at_precision95"] = recall_at_precision(pr, 0.95)
    if curve is not None:
        write_curve(curve, pr if curve_from is None else pr_curve(curve_from))
    if sheet is not None:
        write_error_sheet(sheet, ((picture, preds, truths) for picture, preds, _, truths in cases))
    return result


def write_error_sheet(
    path: Path, frames: Iterable[tuple[Path, Sequence[Box], Sequence[Box]]]
) -> None:
    """`charaid.visualize.error_sheet` of (picture, detections, truths) at IoU 0.5, written as
    the picture `path` names."""
    from charaid.atomic import write_bytes
    from charaid.media import encode_image
    from charaid.visualize import error_sheet

    write_bytes(path, encode_image(path, error_sheet(frames, IOUS[0])))


def demo_lighting(make_demo: MakeDemoParams) -> dict[tuple[str, str], str]:
    """Lighting (day / sunset / night) of every demo frame, replayed from its seeded plan."""
    from charaid.demo.plan import plan_show

    lighting = {}
    for video, shots in plan_show(make_demo):
        frame = 0
        for shot in shots:
            for _ in range(shot.frames):
                lighting[(video, str(frame))] = shot.lighting
                frame += 1
    return lighting


@dataclass(frozen=True)
class BoxFit:
    """A detector's box -> a folder's box: side times `scale`, centre moved by (`dx`, `dy`)
    detector sides. Sets box faces differently (whole heads, tight faces, brows to chin)."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    pairs: int = 0

    def __call__(self, box: Box) -> Box:
        x, y, w, h = box
        cx, cy = x + w / 2 + self.dx * w, y + h / 2 + self.dy * h
        w, h = w * self.scale, h * self.scale
        return (cx - w / 2, cy - h / 2, w, h)


def fit_boxes(
    frames: Iterable[tuple[Sequence[Box], Sequence[Box]]], min_iou: float = 0.3
) -> BoxFit:
    """The scale and offset that best carry detections onto the truth boxes they match at
    `min_iou` (least squares over the pairs of all frames of (detections, truths)); identity
    when nothing matches."""
    ratios, dxs, dys = [], [], []
    for preds, truths in frames:
        for i, j in match(preds, truths, min_iou):
            (px, py, pw, ph), (tx, ty, tw, th) = preds[i], truths[j]
            ratios.append(tw / pw)
            dxs.append((tx + tw / 2 - px - pw / 2) / pw)
            dys.append((ty + th / 2 - py - ph / 2) / ph)
    if not ratios:
        return BoxFit()
    # sides multiply: fit the scale in log space, so one large face does not outweigh the rest
    scale = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return BoxFit(scale, sum(dxs) / len(dxs), sum(dys) / len(dys), len(ratios))


def score_folder(
    folder: str | Path,
    params: DetectFacesParams,
    sheet: Path | None = None,
    curve: Path | None = None,
    fit: bool = False,
    namer: Namer | None = None,
) -> dict:
    """Detect faces (detect_faces params: backend, preprocessing, workers) in a YOLO-annotated
    folder and score them, overall and per sub-folder; with `sheet`, a picture of the misses
    and false detections is written there, with `curve` the precision-recall curve (CSV); with
    `fit`, detections are first carried onto the folder's box convention (`fit_boxes`); with
    `namer`, each detection is also named and the names scored (`charaid.naming_eval`).

    Every box file is checked before any detection; a folder where no picture could be read
    is an error, not a perfect score."""
    from charaid.detect_faces import find_faces

    folder = Path(folder)
    pictures = read_labeled_folder(folder)
    classes = None
    if namer is not None:
        from charaid.naming_eval import character_names

        classes = character_names(folder)  # before any work: a set without names stops here
    truth_ids = {p: [c for c, _ in faces] for p, _, faces in pictures}
    pictures = [(p, size, [b for _, b in faces]) for p, size, faces in pictures]
    readable = [(p, size, truths) for p, size, truths in pictures if size is not None]
    for picture, size, _ in pictures:
        if size is None:
            print(f"warning: {picture}: not a readable picture, skipped", file=sys.stderr)
    if not readable:
        raise CharaidError(f"{folder}: none of the {len(pictures)} pictures could be read")
    start = time.perf_counter()
    found = find_faces([str(p) for p, _, _ in readable], params)
    seconds = time.perf_counter() - start
    detections = {
        picture: [(det.box, det.score) for det, _, _ in found[str(picture)] or []]
        for picture, _, _ in readable
    }
    below = None
    if curve is not None and params.backend in ("learned", "onnx"):
        low = replace(params, detector_min_score=CURVE_FLOOR)
        below = find_faces([str(p) for p, _, _ in readable], low, "detect_faces (curve)")
    names = None
    if namer is not None:  # the detector's own boxes, as predict crops them, before any fit
        order = [p for p, _, _ in readable]
        said = namer.names(order, [[b for b, _ in detections[p]] for p in order])
        names = dict(zip(order, said, strict=True))
    box_fit = None
    if fit:
        box_fit = fit_boxes(([b for b, _ in detections[p]], truths) for p, _, truths in readable)
        detections = {p: [(box_fit(b), s) for b, s in d] for p, d in detections.items()}
    curve_from = None
    if below is not None:
        fitted = box_fit or (lambda b: b)
        curve_from = []
        for picture, _, truths in readable:
            if found[str(picture)] is None:  # skipped by the scores too
                continue
            dets = [d for d, _, _ in below[str(picture)] or []]
            curve_from.append(([fitted(d.box) for d in dets], [d.score for d in dets], truths))

    named = []  # (groups, boxes, names, truths, truth names) of the scored pictures
    sized = []  # (long side, boxes, truths) of the scored pictures

    def frames():
        for picture, size, truths in readable:
            if found[str(picture)] is None:
                print(f"warning: {picture}: not a readable picture, skipped", file=sys.stderr)
                continue
            sized.append((max(size), [b for b, _ in detections[picture]], truths))
            group = picture.parent.relative_to(folder).as_posix()
            group = folder.name if group == "." else group
            if names is not None:
                boxes = [b for b, _ in detections[picture]]
                truth_names = [classes[c] for c in truth_ids[picture]]
                named.append(({"folder": group}, boxes, names[picture], truths, truth_names))
            yield picture, {"folder": group}, detections[picture], truths

    result = _score_and_show(frames(), sheet, curve, curve_from)
    if result["frames"] == 0:
        raise CharaidError(f"{folder}: no picture could be scored")
    result["by_face_size"] = score_by_size(sized)
    if namer is not None:
        from charaid.naming_eval import merge, score_naming

        naming = score_naming(
            named, namer.recognizer.classes, namer.other, namer.outside(classes), classes
        )
        merge(result, naming, namer.model)
    result["seconds_per_picture"] = round(seconds / len(readable), 4)
    result["backend"] = params.backend
    if box_fit is not None:
        result["box_fit"] = {
            "scale": round(box_fit.scale, 4),
            "dx": round(box_fit.dx, 4),
            "dy": round(box_fit.dy, 4),
            "pairs": box_fit.pairs,
        }
    return result


def format_table(result: dict, kind: str = "folder") -> str:
    """A text table: one row per group, then the overall row."""
    cols = [("faces", "faces", "d"), ("found", "detections", "d")]
    for t in IOUS:
        tag = f"iou{round(t * 100)}"
        cols += [
            (f"R@{t}", f"recall_{tag}", ".3f"),
            (f"P@{t}", f"precision_{tag}", ".3f"),
            (f"F1@{t}", f"f1_{tag}", ".3f"),
        ]
    if "naming" in result:  # found and named right (charaid.naming_eval)
        cols += [(f"FN@{t}", f"found_and_named_iou{round(t * 100)}", ".3f") for t in IOUS]
    lines = _table(kind, [*result.get(kind, {}).items(), ("all", result["overall"])], cols)
    if "by_face_size" in result:
        lines += ["", format_sizes(result["by_face_size"])]
    best = result.get("at_precision95")
    if best is not None:
        lines.append(
            "no score threshold reaches precision 0.95 at IoU 0.5"
            if best["recall"] is None
            else f"at precision >= 0.95 (IoU 0.5): recall {best['recall']:.3f}, "
            f"keeping detections that score >= {best['min_score']:g}"
        )
    return "\n".join(lines)


def format_sizes(bands: dict) -> str:
    """`score_by_size`'s bands as a text table."""
    cols = [("faces", "faces", "d")]
    cols += [(f"R@{t}", f"recall_iou{round(t * 100)}", ".3f") for t in IOUS]
    cols += [("found", "detections", "d")]
    cols += [(f"P@{t}", f"precision_iou{round(t * 100)}", ".3f") for t in IOUS]
    return "\n".join(_table("face side / picture's long side", list(bands.items()), cols))


def _table(title: str, rows: list[tuple[str, dict]], cols: list[tuple[str, str, str]]) -> list:
    """Lines of a text table: `title` and the column heads, then one line per (name, numbers);
    cols are (head, key, format). None is a share of nothing (a group without truth faces has no
    found-and-named share, a size band no recall) and shows as '-'."""
    width = max(len(title), *(len(name) for name, _ in rows))
    lines = [f"{title:<{width}}" + "".join(f"{h:>8}" for h, _, _ in cols)]
    for name, numbers in rows:
        cells = ("-" if numbers[k] is None else format(numbers[k], f) for _, k, f in cols)
        lines.append(f"{name:<{width}}" + "".join(f"{c:>8}" for c in cells))
    return lines
