"""How good is the whole chain on annotated scenes: faces found *and* named right.

`charaid detect-eval FOLDER --model MODELS` classifies every detection the way `charaid predict`
does (crop at the detector's box, one forward pass, the open-set `unknown` check) and compares
the names with the folder's YOLO classes (`classes.txt`, one name per class id):

- found and named at IoU 0.5 and 0.3: the share of truth faces matched by a detection (the
  greedy matching of detect_eval) whose name is right;
- per character, at IoU 0.3: recall = its faces found and named right / its faces; precision =
  detections that count as it and are matched to one of its faces / detections that count as it
  (a false detection counts against the name it was given);
- a confusion matrix at IoU 0.3: rows the truth, columns the model's names, `unknown` (the
  open-set rejection) and `missed` (no detection matched).

Faces outside the named cast (`unknown` in classes.txt, or the params' other class, e.g.
`other`) are scored as the model's other class, as the evaluate stage scores extras: such a face
is named right when the model says `other` *or* `unknown`, both meaning "not one of the cast";
a cast face called `unknown` is wrong. Detections named `unknown` count as the other class for
precision. A character the model was never trained on can be found but never named right.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from charaid.boxes import Box, match
from charaid.detect_eval import IOUS
from charaid.errors import CharaidError
from charaid.visualize import UNKNOWN
from charaid.yolo import CLASSES_FILE, classes_file, find_classes

if TYPE_CHECKING:
    from charaid.config import Params
    from charaid.predict import Recognizer

TABLE_IOU = 0.3  # per character and confusion: a naming question, not a box-convention one
MISSED = "missed"
GENERIC = {"face", "faces", "head", "heads", "anime_face", "person"}  # boxes without names


def character_names(folder: str | Path) -> list[str]:
    """The class names of the folder's classes.txt, if they name characters; else the error
    that says naming cannot be scored there."""
    folder = Path(folder)
    path = classes_file(folder)
    if path is None:
        raise CharaidError(
            f"{folder}: no {CLASSES_FILE} (here or up to three folders above), so naming cannot "
            "be scored; write the character names one per line (YOLO class-id order) or drop "
            "--model"
        )
    names = find_classes(folder) or []
    if len(names) == 1 and names[0].lower() in GENERIC:
        raise CharaidError(
            f"{path}: one class, '{names[0]}': the boxes name no characters, so naming cannot "
            "be scored here; drop --model, or use a set with one class per character"
        )
    return names


@dataclass
class Namer:
    """A trained classifier and the predict settings that turn a detection into a name."""

    recognizer: Recognizer
    margin: float  # detect_faces.margin: the crop predict cuts around a detection
    threshold: float  # predict.unknown_threshold (softmax method)
    other: str  # the model's name for faces outside the cast
    other_class: str = "other"  # params label.other_class: a truth name for such faces too
    model: str = ""  # the model folder, for the report

    @classmethod
    def load(cls, model_dir: str | Path, params: Params) -> Namer:
        """From a model folder and validated params (detect_faces, predict, label)."""
        from charaid.models import negative_class
        from charaid.predict import Recognizer

        rec = Recognizer.from_params(model_dir, params.predict)
        other_class = params.label.other_class
        # one-vs-rest models call the whole rest "not X", extras included (as evaluate does)
        other = negative_class(rec.one_vs_rest) if rec.one_vs_rest else other_class
        margin, threshold = params.detect_faces.margin, params.predict.unknown_threshold
        return cls(rec, margin, threshold, other, other_class, str(model_dir))

    def outside(self, truth_classes: Sequence[str]) -> set[str]:
        """The truth names that mean "not one of this model's cast": classes.txt's `unknown`,
        the other class, and in one-vs-rest mode every class but the target."""
        names = {UNKNOWN, self.other_class}
        target = self.recognizer.one_vs_rest
        return names | {c for c in truth_classes if c != target} if target else names

    def names(self, pictures: Sequence[Path], boxes: Sequence[Sequence[Box]]) -> list[list[str]]:
        """The name predict gives each detection box of each picture."""
        from charaid.boxes import Detection
        from charaid.media import read_image
        from charaid.predict import crop_faces

        rec = self.recognizer
        dets, crops = [], []
        for picture, found in zip(pictures, boxes, strict=True):
            image = read_image(picture) if found else None
            found = [Detection(tuple(b), 0.0) for b in found] if image is not None else []
            dets.append(found)
            crops.append(crop_faces(image, found, self.margin, rec.input_size))
        faces = rec.name_crops(crops, dets, self.threshold, top_k=1)
        return [[f.name for f in picture] for picture in faces]


@dataclass
class NameTally:
    """Truth faces, and of them those found and named right, per IoU threshold."""

    faces: int = 0
    named: dict[float, int] = field(default_factory=lambda: dict.fromkeys(IOUS, 0))

    def summary(self) -> dict:
        """found_and_named_iouNN per threshold (None without truth faces: a share of nothing)."""
        return {
            f"found_and_named_iou{round(t * 100)}": _ratio(self.named[t], self.faces) for t in IOUS
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def score_naming(
    frames: Iterable[
        tuple[dict[str, str], Sequence[Box], Sequence[str], Sequence[Box], Sequence[str]]
    ],
    model_classes: Sequence[str],
    other: str,
    outside: Iterable[str] = (UNKNOWN,),
    truth_classes: Sequence[str] = (),
) -> dict:
    """Score (groups, detection boxes, their names, truth boxes, truth names) per frame.

    Truth names in `outside` are scored as `other` (see the module docstring). Rows of the
    per-character table and the confusion follow `truth_classes` (classes.txt order), then any
    other name met. Returns {"overall": {found_and_named_iouNN}, "groups": {grouping: {value:
    the same}}, "characters": {name: counts, recall, precision}, "confusion": {truth: {column:
    n}}, "not_in_model": truth names the model has no class for}.
    """
    outside = set(outside)

    def truth_of(name: str) -> str:
        return other if name in outside else name

    def counts_as(said: str) -> str:
        return other if said == UNKNOWN else said

    overall, grouped = NameTally(), {}
    faces, named, said_as = Counter(), Counter(), Counter()
    confusion: dict[str, Counter] = {}
    for groups, preds, said, truths, names in frames:
        names = [truth_of(n) for n in names]
        tallies = [overall] + [
            grouped.setdefault(kind, {}).setdefault(value, NameTally())
            for kind, value in groups.items()
        ]
        for tally in tallies:
            tally.faces += len(truths)
        for t in IOUS:
            pairs = match(preds, truths, t)
            right = sum(counts_as(said[i]) == names[j] for i, j in pairs)
            for tally in tallies:
                tally.named[t] += right
        found = {j: i for i, j in match(preds, truths, TABLE_IOU)}
        for j, name in enumerate(names):
            faces[name] += 1
            column = said[found[j]] if j in found else MISSED
            confusion.setdefault(name, Counter())[column] += 1
            named[name] += j in found and counts_as(column) == name
        said_as.update(counts_as(s) for s in said)

    cast = [c for c in model_classes if c != other]
    rows = list(dict.fromkeys([truth_of(n) for n in truth_classes] + list(confusion)))
    seen = {c for row in confusion.values() for c in row}
    columns = list(dict.fromkeys(cast + [other, UNKNOWN] + sorted(seen - {MISSED}) + [MISSED]))
    characters = {}
    for name in list(dict.fromkeys(rows + sorted(said_as))):
        characters[name] = {
            "faces": faces[name],
            "found_and_named": named[name],
            "detections": said_as[name],
            "recall": _ratio(named[name], faces[name]),
            "precision": _ratio(named[name], said_as[name]),
        }
    result: dict = {"overall": overall.summary(), "groups": {}}
    for kind, tallies in grouped.items():
        result["groups"][kind] = {value: t.summary() for value, t in sorted(tallies.items())}
    result["characters"] = characters
    result["confusion"] = {
        row: {c: confusion.get(row, Counter())[c] for c in columns} for row in rows
    }
    # outsiders can still be named right (unknown) by a model trained without an other class
    result["not_in_model"] = [r for r in rows if r not in model_classes and r != other]
    return result


def merge(result: dict, naming: dict, model: str) -> dict:
    """Put `score_naming`'s shares into detect_eval's overall and group summaries, and its
    tables under result["naming"]."""
    result["overall"].update(naming["overall"])
    for kind, groups in naming["groups"].items():
        for value, summary in groups.items():
            result.setdefault(kind, {}).setdefault(value, {}).update(summary)
    keep = ("characters", "confusion", "not_in_model")
    result["naming"] = {"model": model, "iou": TABLE_IOU, **{k: naming[k] for k in keep}}
    return result


def format_naming(result: dict) -> str:
    """The per-character table and the confusion matrix of result["naming"], as text."""
    naming = result["naming"]
    chars, confusion = naming["characters"], naming["confusion"]

    def share(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    width = max(len("character"), *(len(n) for n in chars))
    lines = [
        f"naming by {naming['model']} (IoU {naming['iou']}; FN@t: share of truth faces found "
        "at IoU t and named right)",
        f"{'character':<{width}}{'faces':>7}{'named':>7}{'recall':>8}{'dets':>7}{'precision':>10}",
    ]
    for name, c in chars.items():
        lines.append(
            f"{name:<{width}}{c['faces']:>7}{c['found_and_named']:>7}{share(c['recall']):>8}"
            f"{c['detections']:>7}{share(c['precision']):>10}"
        )
    columns = list(next(iter(confusion.values()))) if confusion else []
    corner = "truth \\ said"
    width = max(len(corner), *(len(r) for r in confusion))
    sides = [max(len(c), 3) + 1 for c in columns]
    cells = list(zip(columns, sides, strict=True))
    lines.append(f"{corner:<{width}}" + "".join(f"{c:>{w}}" for c, w in cells))
    for row, counts in confusion.items():
        lines.append(f"{row:<{width}}" + "".join(f"{counts[c]:>{w}}" for c, w in cells))
    if naming["not_in_model"]:
        lines.append(
            f"not classes of this model (never named right): {', '.join(naming['not_in_model'])}"
        )
    return "\n".join(lines)
