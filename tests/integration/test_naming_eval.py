"""Naming on annotated scenes: found and named, per character, confusion; the detect-eval CLI."""

import json

import cv2
import pytest

from charaid.cli import main
from charaid.detect_eval import format_table
from charaid.naming_eval import format_naming, merge, score_naming
from tests.helpers import DemoModel, annotated_set

MODEL = ["dad", "dexter", "other"]  # a model that knows two of the characters, and extras
CLASSES = ["dad", "deedee", "dexter", "mom", "unknown"]  # classes.txt: unknown = not the cast


def made_up_frames():
    """7 truth faces in 3 groups, with a known answer (see the test)."""
    a, b, c = (0, 0, 100, 100), (200, 0, 100, 100), (400, 0, 100, 100)
    b_loose = (240, 0, 100, 100)  # IoU 0.43 with b: found at 0.3, not at 0.5
    far = (700, 300, 50, 50)  # overlaps no face: a false detection
    return [
        # dexter right, dad right (at 0.3 only), an outsider called unknown (right), a false dexter
        (
            {"folder": "a"},
            [a, b_loose, c, far],
            ["dexter", "dad", "unknown", "dexter"],
            [a, b, c],
            ["dexter", "dad", "unknown"],
        ),
        # mom called other (wrong), dexter called unknown (wrong), dad missed
        ({"folder": "b"}, [a, b], ["other", "unknown"], [a, b, c], ["mom", "dexter", "dad"]),
        # an outsider called other (right)
        ({"folder": "c"}, [a], ["other"], [a], ["unknown"]),
    ]


def test_found_and_named_per_character_and_confusion_on_made_up_boxes():
    r = score_naming(made_up_frames(), MODEL, "other", {"unknown"}, CLASSES)
    assert r["overall"] == {
        "found_and_named_iou50": round(3 / 7, 4),
        "found_and_named_iou30": round(4 / 7, 4),
    }
    a, b, c = (r["groups"]["folder"][g] for g in "abc")
    assert (a["found_and_named_iou50"], a["found_and_named_iou30"]) == (round(2 / 3, 4), 1.0)
    assert (b["found_and_named_iou30"], c["found_and_named_iou30"]) == (0.0, 1.0)

    chars = r["characters"]
    assert list(chars) == ["dad", "deedee", "dexter", "mom", "other"]
    assert chars["dad"] == {
        "faces": 2,
        "found_and_named": 1,
        "detections": 1,
        "recall": 0.5,
        "precision": 1.0,
    }
    # the false detection was named dexter: it costs dexter precision
    assert (chars["dexter"]["recall"], chars["dexter"]["precision"]) == (0.5, 0.5)
    assert (chars["mom"]["recall"], chars["mom"]["precision"]) == (0.0, None)
    assert (chars["deedee"]["faces"], chars["deedee"]["recall"]) == (0, None)
    # outsiders: both named right (other and unknown alike); 4 detections count as other, 2 on them
    assert (chars["other"]["faces"], chars["other"]["recall"]) == (2, 1.0)
    assert (chars["other"]["detections"], chars["other"]["precision"]) == (4, 0.5)

    conf = r["confusion"]
    assert list(conf) == ["dad", "deedee", "dexter", "mom", "other"]
    assert list(conf["dad"]) == ["dad", "dexter", "other", "unknown", "missed"]
    assert conf["dad"] == {"dad": 1, "dexter": 0, "other": 0, "unknown": 0, "missed": 1}
    assert conf["dexter"] == {"dad": 0, "dexter": 1, "other": 0, "unknown": 1, "missed": 0}
    assert conf["mom"]["other"] == 1 and sum(conf["deedee"].values()) == 0
    assert conf["other"] == {"dad": 0, "dexter": 0, "other": 1, "unknown": 1, "missed": 0}
    assert r["not_in_model"] == ["deedee", "mom"]


def test_a_cast_face_called_unknown_is_wrong_and_an_unknown_truth_is_not_a_character():
    frames = [({}, [(0, 0, 10, 10)], ["unknown"], [(0, 0, 10, 10)], ["dad"])]
    r = score_naming(frames, MODEL, "other", {"unknown"}, ["dad"])
    assert r["overall"]["found_and_named_iou30"] == 0.0
    assert r["characters"]["other"]["detections"] == 1  # an unknown name counts as other
    assert r["confusion"] == {"dad": {"dad": 0, "dexter": 0, "other": 0, "unknown": 1, "missed": 0}}


def test_the_tables_show_naming_beside_detection():
    detection = {
        "frames": 3,
        "overall": {"faces": 7, "detections": 7},
        "folder": {g: {"faces": 1, "detections": 1} for g in "abc"},
    }
    for t in ("50", "30"):
        for s in [detection["overall"], *detection["folder"].values()]:
            s.update({f"recall_iou{t}": 0.5, f"precision_iou{t}": 0.5, f"f1_iou{t}": 0.5})
    naming = score_naming(made_up_frames(), MODEL, "other", {"unknown"}, CLASSES)
    result = merge(detection, naming, "models")
    assert result["folder"]["a"]["found_and_named_iou30"] == 1.0
    assert result["naming"]["iou"] == 0.3 and result["naming"]["model"] == "models"
    table = format_table(result).splitlines()
    assert table[0].split()[-2:] == ["FN@0.5", "FN@0.3"]
    assert table[-1].split()[-2:] == ["0.429", "0.571"]
    text = format_naming(result).splitlines()
    assert text[1].split() == ["character", "faces", "named", "recall", "dets", "precision"]
    assert text[3].split() == ["deedee", "0", "0", "-", "0", "-"]  # nothing to divide: "-"
    header = text.index(next(line for line in text if line.startswith("truth")))
    assert text[header].split()[-5:] == ["dad", "dexter", "other", "unknown", "missed"]
    assert text[header + 1].split() == ["dad", "1", "0", "0", "0", "1"]
    assert text[-1].endswith("deedee, mom")


@pytest.mark.parametrize(
    ("classes", "expected"),
    [(None, "no classes.txt"), ("face\n", "classes.txt: one class, 'face'")],
)
def test_model_on_a_set_without_names_is_one_error_line(tmp_path, capsys, classes, expected):
    annotated_set(tmp_path / "set")
    if classes:
        (tmp_path / "set" / "classes.txt").write_text(classes)
    # the check comes before the model is loaded: no model folder is needed to see it
    with pytest.raises(SystemExit) as exc:
        main(["detect-eval", str(tmp_path / "set"), "--model", str(tmp_path / "nomodel")])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err
    assert "naming cannot be scored" in err


# ---------------------------------------------------------------- with a trained demo model


@pytest.fixture(scope="module")
def model(demo_model: DemoModel) -> DemoModel:
    return demo_model


@pytest.mark.slow
def test_detect_eval_names_faces_as_predict_does(model, tmp_path, capsys):
    """The demo model's sample frames as a YOLO set: detect-eval's naming score is the one
    computed by hand from `charaid predict`'s own output on the same pictures."""
    from charaid.boxes import match

    folder = tmp_path / "scenes"
    folder.mkdir()
    classes = [*model.classes, "unknown"]
    (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    for sample in model.samples:
        image = cv2.imread(str(sample))
        h, w = image.shape[:2]
        cv2.imwrite(str(folder / sample.name), image)
        lines = []
        for name, (x, y, bw, bh) in model.truth[sample.name]:
            cls = classes.index(name if name in model.classes else "unknown")
            cx, cy = (x + bw / 2) / w, (y + bh / 2) / h
            lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw / w:.6f} {bh / h:.6f}")
        (folder / sample.with_suffix(".txt").name).write_text("\n".join(lines) + "\n")

    main(["predict", str(folder), "--model", str(model.models), "--params", str(model.params),
          "--out", str(tmp_path / "pred"), "--json"])  # fmt: skip
    records = json.loads(capsys.readouterr().out)
    faces = right = 0
    for record in records:
        truth = model.truth[record["image"].rsplit("/", 1)[-1]]
        boxes = [tuple(f["box"]) for f in record["faces"]]
        faces += len(truth)
        for i, j in match(boxes, [t[1] for t in truth], 0.3):
            said, actual = record["faces"][i]["name"], truth[j][0]
            right += said == actual or (actual == "other" and said == "unknown")

    args = ["detect-eval", str(folder), "--model", str(model.models), "--params", str(model.params)]
    main([*args, "--json"])
    result = json.loads(capsys.readouterr().out)
    o = result["overall"]
    assert o["faces"] == faces
    assert o["found_and_named_iou30"] == pytest.approx(right / faces, abs=1e-4)
    assert o["found_and_named_iou30"] >= 0.5  # the model names most of its show's faces
    conf = result["naming"]["confusion"]
    assert sum(sum(row.values()) for row in conf.values()) == faces
    assert sum(c["found_and_named"] for c in result["naming"]["characters"].values()) == right

    main(args)
    out = capsys.readouterr().out
    assert "FN@0.3" in out.splitlines()[0] and "naming by" in out
    assert any(line.startswith("truth \\ said") for line in out.splitlines())
