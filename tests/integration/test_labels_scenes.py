"""label.from: scenes: a YOLO folder whose classes.txt names the characters becomes the dataset."""

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from charaid.boxes import Detection, iou, square_crop
from charaid.dataset import load_dataset
from charaid.detect import make_detector
from charaid.errors import CharaidError
from charaid.labels import build_dataset, scene_crops
from charaid.yolo import yolo_box
from tests.helpers import (
    SAKURASOU,
    annotated_sakurasou,
    assert_one_line_error,
    need_shared,
    params_with,
    run_stage,
    section_with,
)

CLASSES = ["Dee", "Dex", "unknown"]
W, H = 160, 120
# picture -> (class, cx, cy, w, h), normalised as YOLO writes them
BOXES = {
    "ep01_0001": [(0, 0.25, 0.4, 0.2, 0.3), (2, 0.7, 0.5, 0.25, 0.3)],
    "ep01_0002": [(1, 0.5, 0.5, 0.3, 0.4)],
    "ep02_0007": [(0, 0.3, 0.6, 0.22, 0.3), (1, 0.75, 0.4, 0.2, 0.25)],
}


def picture(seed: int) -> np.ndarray:
    """A flat drawing (no face a detector would take): a gradient and a few shapes."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W, 3), np.uint8)
    img[:] = np.linspace(40, 200, W, dtype=np.uint8)[None, :, None]
    for _ in range(4):
        x, y = int(rng.integers(0, W - 30)), int(rng.integers(0, H - 30))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + 25, y + 20), colour, -1)
    return img


def write_scenes(root, boxes=BOXES, classes=CLASSES, twins=True):
    """A YOLO folder: images/train + labels/train twins (or .txt beside) and classes.txt."""
    images = root / "images" / "train" if twins else root
    labels = root / "labels" / "train" if twins else root
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    for i, (name, faces) in enumerate(boxes.items()):
        cv2.imwrite(str(images / f"{name}.png"), picture(i))
        lines = [f"{c} {cx} {cy} {w} {h}\n" for c, cx, cy, w, h in faces]
        (labels / f"{name}.txt").write_text("".join(lines))
    return images


def label_params(path):
    return section_with("label", from_="scenes", path=str(path), min_iou=0.5, other_class="other")


@pytest.fixture
def detect():
    return section_with("detect_faces", backend="animeface", workers=1)


def test_boxes_give_the_crops_when_nothing_is_detected(tmp_path, detect):
    images = write_scenes(tmp_path / "scenes")
    out = tmp_path / "dataset"
    summary = build_dataset(label_params(images), 50, tmp_path / "faces", out, detect)
    assert summary == {"faces": 5, "classes": {"Dee": 2, "Dex": 2, "other": 1}, "detected": 0}
    crops, rows = load_dataset(out)
    assert [(r["id"], r["label"], r["role"]) for r in rows] == [
        ("ep01_0001.png#0", "Dee", "box"),
        ("ep01_0001.png#1", "other", "box"),  # `unknown` in classes.txt: the other class
        ("ep01_0002.png#0", "Dex", "box"),
        ("ep02_0007.png#0", "Dee", "box"),
        ("ep02_0007.png#1", "Dex", "box"),
    ]
    assert rows[0]["source"] == str(images / "ep01_0001.png")
    # each crop is cut as detect_faces cuts one: the box as a square of its area, the margin
    k = 0
    for i, faces in enumerate(BOXES.values()):
        for _, cx, cy, w, h in faces:
            box = yolo_box(cx, cy, w, h, W, H)
            want = square_crop(picture(i), box, detect.margin, 50)[0]
            assert np.array_equal(crops[k], want)
            k += 1
    assert (out / "contact_sheet.png").is_file()


def test_a_matching_detection_gives_its_own_crop(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), picture(0))
    truth = [(0, yolo_box(0.25, 0.4, 0.2, 0.3, W, H)), (1, yolo_box(0.7, 0.5, 0.25, 0.3, W, H))]
    x, y, s, _ = truth[0][1]
    detected = np.full((50, 50, 3), 7, np.uint8)  # what the detector's crop was
    found = [
        (Detection((x + 2, y + 1, s, s), 0.9), detected, (0, 0, 0)),  # IoU ~0.9 with box 0
        (Detection((0, 0, 20, 20), 0.8), np.zeros((50, 50, 3), np.uint8), (0, 0, 0)),  # nobody
    ]
    crops = scene_crops(path, truth, found, 0.5, 0.2, 50)
    assert [role for _, role in crops] == ["detected", "box"]
    assert crops[0][0] is detected
    assert np.array_equal(crops[1][0], square_crop(picture(0), truth[1][1], 0.2, 50)[0])
    # a detection overlapping too little does not count
    assert [role for _, role in scene_crops(path, truth, found, 0.95, 0.2, 50)] == ["box", "box"]


def test_boxes_beside_the_pictures(tmp_path, detect):
    root = write_scenes(tmp_path / "scenes", twins=False)
    summary = build_dataset(label_params(root), 32, tmp_path, tmp_path / "dataset", detect)
    assert summary["faces"] == 5
    assert load_dataset(tmp_path / "dataset")[0].shape == (5, 32, 32, 3)


@pytest.mark.parametrize(
    ("classes", "needle"),
    [
        (["Dee", "Dex"], r"labels/train/ep01_0001.txt:2: class 2, but classes.txt names 2"),
        (["Dee Dee", "Dex", "unknown"], r"class name 'Dee Dee' has spaces .* e.g. 'Dee_Dee'"),
        (["Dée", "Dex", "unknown"], r"class name 'Dée' has spaces or non-ASCII .* e.g. 'Dee'"),
        (["face"], r"classes.txt: one class, 'face': the boxes name no characters"),
    ],
)
def test_bad_classes_stop_with_one_line_and_no_output(tmp_path, detect, classes, needle):
    images = write_scenes(tmp_path / "scenes", classes=classes)
    out = tmp_path / "dataset"
    with pytest.raises(CharaidError, match=needle):
        build_dataset(label_params(images), 50, tmp_path, out, detect)
    assert not out.exists()


def test_missing_folder_pictures_or_classes(tmp_path, detect):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "classes.txt").write_text("Dee\nDex\n")
    with pytest.raises(
        CharaidError, match=r"empty: no pictures in this scene folder \(label.path\)"
    ):
        build_dataset(label_params(empty), 50, tmp_path, tmp_path / "out", detect)
    with pytest.raises(CharaidError, match=r"nowhere: scene folder not found \(label.path\)"):
        build_dataset(label_params(tmp_path / "nowhere"), 50, tmp_path, tmp_path / "out", detect)
    images = write_scenes(tmp_path / "scenes")
    (tmp_path / "scenes" / "classes.txt").unlink()
    with pytest.raises(CharaidError, match=r"no classes.txt here or up to three folders above"):
        build_dataset(label_params(images), 50, tmp_path, tmp_path / "out", detect)
    assert not (tmp_path / "out").exists()


def test_label_stage_from_scenes(tmp_path, sample_params):
    images = write_scenes(tmp_path / "scenes")
    params_with(
        tmp_path,
        sample_params,
        label__from="scenes",
        label__path=str(images.relative_to(tmp_path)),
        detect_faces__backend="animeface",
        detect_faces__workers=1,
    )
    result = run_stage("label", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "label: 5 faces" in result.stdout and "0 cut at a detection" in result.stdout
    side = sample_params["detect_faces"]["crop_size"]  # the stage cuts at params.yaml's size
    assert load_dataset(tmp_path / "data" / "dataset")[0].shape == (5, side, side, 3)
    (tmp_path / "scenes" / "classes.txt").write_text("Dee\nDex Dexter\nunknown\n")
    shutil.rmtree(tmp_path / "data")
    assert_one_line_error(run_stage("label", tmp_path), "classes.txt: class name 'Dex Dexter'")
    assert not (tmp_path / "data" / "dataset").exists()


def test_real_frames_take_the_detectors_crop_where_it_found_the_face(tmp_path, detect):
    """Hand-boxed frames of the real clip: where animeface found the boxed face its own crop is
    taken (the one predict would see), elsewhere the crop is cut at the box."""
    need_shared(SAKURASOU)
    folder = annotated_sakurasou(tmp_path)
    keep = {"frame0036", "frame0048", "frame0300"}  # animeface finds the first two faces only
    for path in folder.glob("frame*"):
        if path.stem not in keep:
            path.unlink()
    (folder / "classes.txt").write_text("Mashiro\nunknown\n")
    detect = dataclasses.replace(detect, extra_scale=0.0)  # one pass: 1080p frames are slow enough
    summary = build_dataset(label_params(folder), 50, tmp_path, tmp_path / "dataset", detect)
    crops, rows = load_dataset(tmp_path / "dataset")
    assert summary == {"faces": 3, "classes": {"Mashiro": 3}, "detected": 2}
    assert [r["role"] for r in rows] == ["detected", "detected", "box"]
    detector = make_detector(detect)
    for crop, row in zip(crops, rows, strict=True):
        image = cv2.imread(row["source"])
        k = int(row["id"].rpartition("#")[2])
        line = Path(row["source"]).with_suffix(".txt").read_text().splitlines()[k]
        box = yolo_box(*(float(v) for v in line.split()[1:]), image.shape[1], image.shape[0])
        found = [d.box for d in detector.detect(image) if iou(d.box, box) >= 0.5]
        cut_at = found[0] if row["role"] == "detected" else box
        assert len(found) == (row["role"] == "detected")
        assert np.array_equal(crop, square_crop(image, cut_at, detect.margin, 50)[0])
