import csv

import numpy as np
import pytest

from charaid.dataset import load_dataset
from charaid.errors import CharaidError
from charaid.labels import build_dataset, labels_from_truth, scan_folders
from tests.helpers import make_folders, section_with

FOLDER_PARAMS = {"from_": "folders", "min_iou": 0.5, "other_class": "other"}  # label section


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def face_row(crop, frame, x, y, w):
    return {
        "crop": crop,
        "video": "ep01",
        "frame": frame,
        "x": x,
        "y": y,
        "w": w,
        "h": w,
        "score": 1.0,
        "crop_x": x,
        "crop_y": y,
        "crop_side": w,
    }


def test_truth_labels_by_iou(tmp_path):
    faces, truth = tmp_path / "faces", tmp_path / "truth"
    write_csv(
        faces / "index.csv",
        [
            face_row("crops/a.png", 0, 10, 10, 40),  # Akari
            face_row("crops/b.png", 0, 200, 200, 40),  # nobody there: a false positive
            face_row("crops/c.png", 2, 100, 100, 60),  # an extra -> other
            face_row("crops/d.png", 2, 300, 100, 60),  # the other show
        ],
    )
    write_csv(
        truth / "ep01.csv",
        [
            {"frame": 0, "character": "Akari", "role": "cast", "x": 12, "y": 10, "w": 40, "h": 40},
            {
                "frame": 2,
                "character": "extra03",
                "role": "extra",
                "x": 98,
                "y": 104,
                "w": 60,
                "h": 60,
            },
            {
                "frame": 2,
                "character": "Zed",
                "role": "othershow",
                "x": 300,
                "y": 100,
                "w": 60,
                "h": 60,
            },
            {"frame": 5, "character": "Akari", "role": "cast", "x": 0, "y": 0, "w": 40, "h": 40},
        ],
    )
    rows = labels_from_truth(faces, truth, 0.5, "other")
    assert [(r["id"], r["label"]) for r in rows] == [
        ("crops/a.png", "Akari"),
        ("crops/c.png", "other"),
        ("crops/d.png", "othershow:Zed"),
    ]


def test_folders_skip_hidden_and_non_pictures(tmp_path, capsys):
    root = tmp_path / "labeled"
    make_folders(root, {"Mio": 3, "Yui Hirasawa": 2, "澪": 2})
    (root / "Mio" / ".DS_Store").write_text("x")
    (root / "Mio" / "notes.txt").write_text("x")
    (root / ".git").mkdir()
    classes = scan_folders(root)
    assert {k: len(v) for k, v in classes.items()} == {"Mio": 3, "Yui Hirasawa": 2, "澪": 2}
    assert "notes.txt: not a picture, skipped" in capsys.readouterr().err


def test_empty_class_folder_is_an_error(tmp_path):
    root = tmp_path / "labeled"
    make_folders(root, {"Mio": 3})
    (root / "Ritsu").mkdir()
    with pytest.raises(CharaidError, match="Ritsu: class folder has no pictures"):
        scan_folders(root)


def test_dataset_from_folders_resizes_and_round_trips(tmp_path, capsys):
    root = tmp_path / "labeled"
    make_folders(root, {"Mio": 3, "Yui": 2})
    (root / "Yui" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "dataset"
    label = section_with("label", **FOLDER_PARAMS, path=str(root))
    summary = build_dataset(label, 50, tmp_path, out)
    assert summary == {"faces": 5, "classes": {"Mio": 3, "Yui": 2}}
    assert "broken.jpg: not a readable picture" in capsys.readouterr().err
    images, rows = load_dataset(out)
    assert images.shape == (5, 50, 50, 3) and images.dtype == np.uint8
    assert [r["label"] for r in rows] == ["Mio", "Mio", "Mio", "Yui", "Yui"]
    assert (out / "contact_sheet.png").is_file()
