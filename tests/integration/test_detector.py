"""charaid's own face detector: sample geometry, composites, target encoding and decoding, a short
training run, the `learned` backend, and the box-file checks of YOLO folders."""

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from charaid.boxes import iou
from charaid.cli import main
from charaid.detect import make_detector
from charaid.detect_eval import fit_boxes
from charaid.detector import heatmap
from charaid.detector.composite import carry, face_in_crop, paste
from charaid.detector.net import HEAT, OFFSET_X, OFFSET_Y, SIZE, STRIDE
from charaid.detector.scenes import Draw, _jitter, place
from charaid.errors import CharaidError
from charaid.yolo import read_boxes
from tests.helpers import section_with

# ----------------------------------------------------------------------------- geometry


def test_carry_scales_moves_and_mirrors_a_box():
    assert carry((10, 20, 30, 40), 2.0, 5, -5) == (25, 35, 60, 80)
    # mirrored in a 100-wide picture: the right edge 85 becomes the left edge 15
    assert carry((10, 20, 30, 40), 2.0, 5, -5, flip_width=100) == (15, 35, 60, 80)


def _bright_box(image: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(image[..., 2] > 200)
    if not len(xs):
        return None
    return (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


@pytest.mark.parametrize("seed", range(12))
def test_a_sample_patch_boxes_the_face_where_it_landed(seed):
    """A red square on a black picture: wherever the patch is cut, at whatever zoom, mirrored or
    not, the box that comes back lies on the red square in the patch."""
    image = np.zeros((300, 500, 3), np.uint8)
    face = (320.0, 90.0, 60.0, 60.0)
    cv2.rectangle(image, (320, 90), (379, 149), (0, 0, 255), -1)
    patch, boxes = place(image, (face,), np.random.default_rng(seed), Draw(400, 160))
    seen = _bright_box(patch)
    if not boxes:  # the face's centre fell outside the patch
        # at most a part of it shows, cut by the patch's edge
        assert (
            seen is None or min(seen[:2]) == 0 or max(seen[0] + seen[2], seen[1] + seen[3]) == 160
        )
        return
    (x, y, w, h) = boxes[0]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, 160), min(y + h, 160)  # what is in view
    assert seen is not None and iou((x0, y0, x1 - x0, y1 - y0), seen) > 0.85


def _jitter_step_by_step(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The colour jitter as separate float passes, drawing what _jitter draws, in its order."""
    img = image.astype(np.float64) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    img = img * rng.uniform(0.85, 1.15, size=3)
    grey = img.mean(axis=2, keepdims=True)
    sat = 0.0 if rng.random() < 0.08 else rng.uniform(0.6, 1.4)
    blurred = rng.random() < 0.2
    return None if blurred else np.clip(grey + (img - grey) * sat, 0, 255)


@pytest.mark.parametrize("seed", range(40))
def test_the_one_pass_colour_jitter_is_the_step_by_step_maths(seed):
    """Contrast, brightness, cast and saturation composed into one colour map give what the
    four steps give, to the rounding of a uint8."""
    image = np.random.default_rng(100 + seed).integers(0, 256, (24, 32, 3)).astype(np.uint8)
    want = _jitter_step_by_step(image, np.random.default_rng(seed))
    got = _jitter(image, np.random.default_rng(seed))
    assert got.dtype == np.uint8 and got.shape == image.shape
    if want is not None:  # blurred samples: the blur is OpenCV's own
        assert np.abs(got - want).max() <= 1.0


def test_a_pasted_crop_brings_its_face_box():
    background = np.zeros((200, 300, 3), np.uint8)
    crop = np.zeros((100, 100, 3), np.uint8)
    fx, fy, fw, fh = face_in_crop(100, 0.6)
    assert (fx, fy, fw, fh) == (20, 20, 60, 60)
    cv2.rectangle(crop, (20, 20), (79, 79), (0, 0, 255), -1)
    for blend in ("hard", "feathered", "poisson"):
        out = paste(background, crop, 120, 40, 50, blend)
        face = (120 + fx / 2, 40 + fy / 2, fw / 2, fh / 2)  # pasted at half size
        seen = _bright_box(out) if blend == "hard" else (120 + 10, 40 + 10, 30, 30)
        assert iou(face, seen) > 0.85
        assert out[40 + 25, 120 + 25, 2] > 150, blend  # the crop's centre is there
        assert (out[:, :110] == 0).all()  # nothing outside the pasted square changed
    cut = paste(background, crop, 280, -20, 50, "hard")  # half outside: cut, not an error
    assert cut.shape == background.shape and cut[0:10, 280:300].any()


# ----------------------------------------------------------------------------- encode, decode


def _maps_from(targets: dict, height: int, width: int) -> np.ndarray:
    """The head maps a perfect detector would give for these targets."""
    h, w = height // STRIDE, width // STRIDE
    maps = np.zeros((4, h, w), np.float32)
    heat = np.clip(targets["heat"], 1e-4, 1 - 1e-4)
    maps[HEAT] = np.log(heat / (1 - heat))
    for k, flat in enumerate(targets["centre"]):
        y, x = divmod(int(flat), w)
        maps[OFFSET_X, y, x], maps[OFFSET_Y, y, x] = targets["offset"][k]
        side = targets["size"][list(targets["where"]).index(flat)]  # a centre regresses too
        maps[SIZE, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = side
    for k, flat in enumerate(targets["where"]):
        maps[SIZE].flat[flat] = targets["size"][k]
    return maps


def test_decoding_perfect_maps_gives_the_boxes_back():
    boxes = [(10.0, 12.0, 24.0, 24.0), (60.5, 30.2, 40.0, 40.0), (200.0, 100.0, 120.0, 120.0)]
    targets = heatmap.encode(boxes, 256, 384)
    found = heatmap.decode(_maps_from(targets, 256, 384), 0.5)
    assert len(found) == 3
    for box in boxes:
        best = max(found, key=lambda f: iou(f[0], box))
        assert best[0] == pytest.approx(box, abs=1e-3) and best[1] > 0.99
    # the picture was resized by 0.5 before the detector: boxes come back in its pixels
    half = heatmap.decode(_maps_from(targets, 256, 384), 0.5, scale=0.5)
    assert sorted(b[0][2] for b in half) == pytest.approx([48, 80, 240], abs=1e-3)


def test_decoding_keeps_one_face_per_peak_and_drops_weak_ones():
    maps = np.zeros((4, 20, 20), np.float32)
    maps[HEAT] = -9.0
    maps[SIZE] = math.log(6)  # 24-pixel faces everywhere, centred in their cells
    maps[HEAT, 5, 5], maps[HEAT, 5, 6] = 3.0, 2.0  # a peak and its shoulder: one face
    maps[HEAT, 15, 15] = -0.5  # score 0.38: kept at 0.3, dropped at 0.5
    assert len(heatmap.decode(maps, 0.3)) == 2
    (face,) = heatmap.decode(maps, 0.5)
    assert face[0] == pytest.approx((5 * 4 - 12, 5 * 4 - 12, 24, 24))


def test_a_cut_per_size_keeps_a_weak_large_face_and_drops_a_weak_small_one():
    from charaid.detector.threshold import Cut

    maps = np.zeros((4, 40, 40), np.float32)
    maps[HEAT] = -9.0
    maps[SIZE, :, :20] = math.log(5)  # left half: 20-pixel faces
    maps[SIZE, :, 20:] = math.log(40)  # right half: 160-pixel faces
    maps[HEAT, 10, 5] = maps[HEAT, 10, 30] = -1.0  # both score 0.27
    cut = Cut((0.5, 0.5, 0.5, 0.2))  # 128 px and over: 0.2; smaller: 0.5
    (face,) = heatmap.decode(maps, cut)
    assert face[0][2] == pytest.approx(160)
    # the bands are in detector-input pixels, whatever the picture was resized by
    (face,) = heatmap.decode(maps, cut, scale=0.25)
    assert face[0][2] == pytest.approx(640)
    assert len(heatmap.decode(maps, 0.2)) == 2 and heatmap.decode(maps, 0.5) == []


def test_band_calibration_lowers_the_cut_only_where_it_gains_f1():
    from charaid.detector.threshold import BAND_FACES, Cut, at_cut, calibrate_bands

    # frames of one small and one large face each: the small ones score 0.9 and their false
    # alarms 0.6; the large ones only 0.3 (a broad peak), with no false alarm near that score
    small, large, alarm = (10, 10, 20, 20), (100, 10, 150, 150), (60, 60, 20, 20)
    frames = [([small, large, alarm], [0.9, 0.3, 0.6], [small, large])] * BAND_FACES
    one = at_cut(frames, Cut.uniform(0.7))
    assert one == {"recall": 0.5, "precision": 1.0}
    cut = calibrate_bands(frames, 0.7)
    assert cut.at(20) == 0.7  # lowering it would keep the false alarms
    assert 0.0 < cut.at(150) <= 0.3  # the large faces' band: kept
    assert at_cut(frames, cut) == {"recall": 1.0, "precision": 1.0}
    # too few faces in a band to judge: it keeps the single cut
    assert calibrate_bands(frames[:1], 0.7).at(150) == 0.7


def test_a_small_face_bump_spreads_over_its_neighbours_a_large_one_with_its_side():
    small = heatmap.encode([(40, 40, 8, 8)], 128, 128)  # 2 cells: the spread's floor
    c = 44 // STRIDE
    assert small["heat"][c, c] == 1.0
    assert small["heat"][c, c + 1] == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert small["heat"][c + 1, c + 1] == pytest.approx(math.exp(-1.0), rel=1e-5)
    assert len(small["where"]) == 9  # the 3x3 cells around the centre regress its side
    large = heatmap.encode([(0, 0, 120, 120)], 128, 128)  # 30 cells: spread 0.54 * 30 / 6
    c, sigma = 60 // STRIDE, 0.54 * 30 / 6
    assert large["heat"][c, c + 3] == pytest.approx(math.exp(-9 / (2 * sigma**2)), rel=1e-5)


def test_faces_whose_centre_is_outside_are_not_targets():
    t = heatmap.encode([(-30, 10, 20, 20), (50, 50, 20, 20)], 128, 128)
    assert len(t["centre"]) == 1 and t["heat"].max() == 1.0 and (t["heat"] == 1.0).sum() == 1


# ----------------------------------------------------------------------------- fit-boxes


def test_fit_boxes_recovers_a_known_scale_and_offset():
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(5):
        preds, truths = [], []
        for _ in range(3):
            x, y, s = rng.uniform(0, 500), rng.uniform(0, 300), rng.uniform(20, 120)
            preds.append((x, y, s, s))
            # the folder boxes whole heads: 1.3x the side, centre 0.1 side higher
            cx, cy, t = x + s / 2, y + s / 2 - 0.1 * s, 1.3 * s
            truths.append((cx - t / 2, cy - t / 2, t, t))
        frames.append((preds, truths))
    fit = fit_boxes(frames)
    assert (fit.scale, fit.dx, fit.dy) == pytest.approx((1.3, 0.0, -0.1), abs=1e-6)
    assert fit.pairs == 15
    assert fit(frames[0][0][0]) == pytest.approx(frames[0][1][0])
    assert fit_boxes([([(0, 0, 10, 10)], [(100, 100, 10, 10)])]).pairs == 0  # no pair: identity


# ----------------------------------------------------------------------------- YOLO checks


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0 0.5 0.5 0.2", "a.txt:2: expected 'class cx cy w h'"),
        ("face 0.5 0.5 0.2 0.2", "a.txt:2: expected 'class cx cy w h'"),
        ("3 0.5 0.5 0.2 0.2", "a.txt:2: class 3, but classes.txt names 2"),
        ("0 250 120 40 40", "a.txt:2: box outside the picture"),
        ("0 0.95 0.5 0.2 0.2", "a.txt:2: box outside the picture"),
    ],
)
def test_a_bad_box_line_is_named_by_file_and_line(tmp_path, line, expected):
    f = tmp_path / "a.txt"
    f.write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(CharaidError, match=expected):
        read_boxes(f, 200, 100, classes=2)


def _drawn_set(root, pictures: int = 6):
    """Drawn demo characters with YOLO boxes: a small set any detector can learn."""
    from charaid.demo.cast import named_cast
    from charaid.demo.draw import Pose, draw_character

    cast = named_cast(4)
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("face\n")
    for i in range(pictures):
        img = np.full((240, 360, 3), (200 - 10 * i, 220, 235), np.uint8)
        lines = []
        for k in range(2):
            pose = Pose(90 + 180 * k, 120, 50 + 10 * ((i + k) % 3))
            x, y, s, _ = draw_character(img, cast[(i + k) % 4], pose).box
            lines.append(
                f"0 {(x + s / 2) / 360:.5f} {(y + s / 2) / 240:.5f} {s / 360:.5f} {s / 240:.5f}"
            )
        cv2.imwrite(str(root / f"{i}.png"), img)
        (root / f"{i}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_detect_eval_checks_every_box_file_before_detecting(tmp_path, capsys):
    folder = _drawn_set(tmp_path / "set", 2)
    (folder / "1.txt").write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    with pytest.raises(SystemExit) as exc:
        main(["detect-eval", str(folder)])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.count("\n") == 1
    assert "1.txt:2: class 7, but classes.txt names 1" in err


def test_detect_eval_exits_1_when_no_picture_can_be_read(tmp_path, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a picture")
    (folder / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(SystemExit) as exc:
        main(["detect-eval", str(folder)])
    assert exc.value.code == 1
    assert "none of the 1 pictures could be read" in capsys.readouterr().err


# ----------------------------------------------------------------------------- training


TINY = section_with(
    "train_detector",
    scenes=[],
    truth="",
    holdout_videos=[],
    crops="",
    init="",
    crop_face=0.7,
    composites=0.0,
    input_size=256,
    patch=128,
    widths=[8, 16, 16, 16, 16, 16],
    neck=8,
    epochs=4,
    samples_per_epoch=48,
    batch_size=8,
    lr=0.005,
    seed=0,
    val_fraction=0.0,
    val_pictures=0,
)


def learned(folder: Path):
    """detect_faces params of the learned backend with the detector in `folder`."""
    return section_with("detect_faces", backend="learned", detector=str(folder), min_size=8)


def test_a_short_training_run_lowers_the_loss_and_is_reproducible(tmp_path):
    from charaid.detector.threshold import UNCALIBRATED
    from charaid.train_detector import train_detector

    folder = _drawn_set(tmp_path / "set")
    params = dataclasses.replace(TINY, scenes=(str(folder),))
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        out.mkdir()
        train_detector(params, tmp_path / "frames", out, out, out / "work")
        runs.append(out)
    log = (runs[0] / "detector_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,loss")
    for name in ("loss", "val"):  # the curves dvc.yaml lists are drawn
        assert (runs[0] / f"detector_{name}.png").stat().st_size > 1000
    losses = [float(row.split(",")[1]) for row in log[1:]]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    assert (runs[0] / "detector.npz").read_bytes() == (runs[1] / "detector.npz").read_bytes()
    meta = json.loads((runs[0] / "detector.json").read_text())
    assert meta["input_size"] == 256 and meta["widths"] == list(TINY.widths)
    assert meta["mirror"] is TINY.mirror  # the views its cuts were chosen on
    # detect-eval's curve reaches below the detector's cut: a second pass from a floor up
    from charaid.detect_eval import CURVE_FLOOR, score_folder

    cut = dataclasses.replace(learned(runs[0]), detector_min_score=0.5, workers=1)
    result = score_folder(folder, cut, curve=tmp_path / "pr.csv")
    rows = (tmp_path / "pr.csv").read_text().splitlines()[1:]
    scores = [float(row.split(",")[0]) for row in rows]
    assert CURVE_FLOOR <= min(scores) < 0.5
    assert result["overall"]["detections"] < len(rows)  # the scores themselves: over the cut
    # fine-tuning starts where the first run ended, not from scratch
    tuned = tmp_path / "tuned"
    tuned.mkdir()
    tune = dataclasses.replace(
        params, init=str(runs[0]), epochs=1, val_fraction=0.5, val_pictures=3
    )
    train_detector(tune, tmp_path, tuned, tuned, tuned)
    first = float((tuned / "detector_log.csv").read_text().splitlines()[1].split(",")[1])
    assert first < 0.7 * losses[0]
    # without validation pictures no threshold is chosen; with them, the last epoch's is kept
    assert meta["min_score"] == UNCALIBRATED
    # the validation log has a row for each scored epoch only (the loss log, for every epoch)
    assert (runs[0] / "detector_val.csv").read_text().splitlines() == [
        "epoch,val_recall,val_precision,val_min_score"
    ]
    header, last = (tuned / "detector_val.csv").read_text().split()
    row = dict(zip(header.split(","), last.split(","), strict=True))
    assert row["epoch"] == "1" and "" not in row.values()
    tuned_meta = json.loads((tuned / "detector.json").read_text())
    assert float(row["val_min_score"]) == tuned_meta["min_score"] >= 0.05
    # the weights run as detect_faces' `learned` backend
    detector = make_detector(learned(runs[0]))
    assert isinstance(detector.detect(cv2.imread(str(folder / "0.png"))), list)


def test_annotated_scenes_train_on_enough_patches_however_few_the_pictures():
    from charaid.train_detector import REAL_ART_PATCHES, patches_per_epoch, short_training_note

    scenes = dataclasses.replace(TINY, scenes=("my_scenes",), epochs=30, samples_per_epoch=0)
    assert patches_per_epoch(scenes, 200) * 30 == REAL_ART_PATCHES  # raised: 2,000 an epoch
    assert patches_per_epoch(scenes, 2500) == 2500  # one per picture is already enough
    assert patches_per_epoch(dataclasses.replace(scenes, epochs=24), 200) == 2500
    demo = dataclasses.replace(scenes, scenes=())
    assert patches_per_epoch(demo, 200) == 200  # the drawn cast: one per picture
    assert patches_per_epoch(dataclasses.replace(scenes, samples_per_epoch=64), 200) == 64
    note = short_training_note(scenes, 200)  # set by hand: 200 patches an epoch
    assert "6,000 training patches" in note and "samples_per_epoch: 0" in note
    assert short_training_note(scenes, REAL_ART_PATCHES // 30) is None
    assert short_training_note(demo, 200) is None


def test_nothing_to_learn_from_leaves_a_folder_that_says_what_to_set(tmp_path):
    from charaid.train_detector import train_detector

    result = train_detector(TINY, tmp_path, tmp_path, tmp_path, tmp_path / "work")
    assert result["train_pictures"] == 0 and not (tmp_path / "detector.npz").exists()
    assert json.loads((tmp_path / "train_detector.json").read_text())["trained"] is False
    # dvc.yaml's plots of the stage exist (DVC fails a stage whose outputs are missing)
    for name in ("loss", "val"):
        assert (tmp_path / f"detector_{name}.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("log", "val"):
        assert (tmp_path / f"detector_{name}.csv").read_text().startswith("epoch,")
    with pytest.raises(CharaidError, match=r"no detector was trained.*train_detector.scenes"):
        make_detector(learned(tmp_path))


def test_the_learned_backend_without_weights_names_the_command(tmp_path):
    with pytest.raises(CharaidError, match=r"no trained detector.*dvc repro train_detector"):
        make_detector(learned(tmp_path))
    (tmp_path / "detector.json").write_text('{"kind": "something else"}')
    (tmp_path / "detector.npz").write_bytes(b"x")
    with pytest.raises(CharaidError, match="not a charaid face detector"):
        make_detector(learned(tmp_path))


def test_the_calibrated_threshold_has_the_best_f1_and_auto_reads_it():
    from charaid.detector.threshold import UNCALIBRATED, Cut, threshold
    from charaid.train_detector import FLOOR, best_threshold

    # 10 faces; F1 at the three cuts: 0.444, 0.8, 0.667
    curve = [
        {"score": 0.6, "recall": 0.3, "precision": 0.9},
        {"score": 0.2, "recall": 0.8, "precision": 0.8},
        {"score": 0.1, "recall": 0.9, "precision": 0.5},
    ]
    # the cut lies halfway to the first score it drops: same faces kept, a margin for new ones
    assert best_threshold(curve) == {"min_score": 0.15, "recall": 0.8, "precision": 0.8}
    lowest = best_threshold(curve[:2])  # nothing scored lower: halfway to the floor
    assert lowest["min_score"] == round((0.2 + FLOOR) / 2, 4) and lowest["recall"] == 0.8
    assert best_threshold([])["min_score"] == UNCALIBRATED
    assert threshold("auto", {"min_score": 0.2}) == Cut.uniform(0.2)
    assert threshold("auto", {}) == Cut.uniform(UNCALIBRATED)
    assert threshold(0.45, {"min_score": 0.2}) == Cut.uniform(0.45)
    # a detector's own per-size cuts win over its single one; a number is one cut for all sizes
    banded = {"min_score": 0.2, "min_score_by_side": [0.5, 0.4, 0.3, 0.1]}
    assert threshold("auto", banded) == Cut((0.5, 0.4, 0.3, 0.1))
    assert threshold(0.45, banded) == Cut.uniform(0.45)


def test_a_batch_without_faces_still_trains_the_heat_map():
    import chainer

    maps = chainer.Variable(np.zeros((2, 4, 8, 8), np.float32))
    batch = heatmap.collate([heatmap.encode([], 32, 32) for _ in range(2)])
    total, parts = heatmap.loss(maps, batch)
    total.backward()
    assert float(parts["size"].array) == 0.0 == float(parts["offset"].array)
    assert float(total.array) > 0  # every cell says 0.5 where no face is
    assert (maps.grad[:, 0] > 0).all()  # ... and is pushed down


@pytest.mark.parametrize(
    ("epochs", "steps", "scored"),
    [
        (24, 32, [4, 8, 12, 16, 20, 24]),  # the demo: short epochs, scored every 4th
        (3, 118, [1, 2, 3]),  # a real set's epochs are long enough to score each
        (10, 30, [4, 8, 10]),  # the last epoch is always scored: its threshold is kept
        (2, 5, [2]),
    ],
)
def test_validation_runs_every_hundred_steps_or_so_and_after_the_last_epoch(epochs, steps, scored):
    from charaid.train_detector import validation_epochs

    assert validation_epochs(epochs, steps).points == scored


def test_the_validation_split_does_not_depend_on_where_the_data_lies(tmp_path, monkeypatch):
    from charaid.detector.scenes import yolo_scenes
    from charaid.train_detector import split_scenes

    first = _drawn_set(tmp_path / "a" / "set")
    sides = [split_scenes(yolo_scenes(first), 0.5, 100, seed=0)]
    (tmp_path / "b").mkdir()
    first.rename(tmp_path / "b" / "set")
    monkeypatch.chdir(tmp_path)  # the same pictures, elsewhere and named relatively
    sides.append(split_scenes(yolo_scenes("b/set"), 0.5, 100, seed=0))
    (train, val), (train2, val2) = sides
    assert train and val  # both sides get pictures
    assert [s.name for s in train] == [s.name for s in train2]
    assert [s.name for s in val] == [s.name for s in val2]


def test_frames_of_one_stretch_of_a_video_fall_on_one_side_of_the_validation_split():
    from charaid.detector.scenes import SHOT_SECONDS, Scene, stretch
    from charaid.frames import PICTURES
    from charaid.train_detector import split_scenes

    rows = [
        {"video": f"ep{v}", "frame": str(i), "time": i * 0.5, "path": f"ep{v}/{i:06d}.jpg"}
        for v in range(3)
        for i in range(200)
    ]
    scenes = [Scene(Path(r["path"]), (), r["path"], stretch(r)) for r in rows]
    train, val = split_scenes(scenes, 0.3, 1000, seed=0)
    assert train and val
    assert not {s.group for s in train} & {s.group for s in val}
    # the least asked for, in whole stretches: a stretch is 8 frames here
    rest, few = split_scenes(scenes, 0.0, 20, seed=0)
    assert 20 <= len(few) < 28 and not {s.group for s in few} & {s.group for s in rest}
    # a stretch is SHOT_SECONDS of one video: neighbouring frames share it, other videos do not
    assert stretch(rows[0]) == stretch(rows[1]) != stretch(rows[200])
    assert stretch(rows[0]) != stretch(rows[int(2 * SHOT_SECONDS)])
    # pictures given as pictures have no time: each stands alone
    assert stretch({"video": PICTURES, "frame": "a", "time": 0.0, "path": "images/a.jpg"}) == ""


def test_a_small_validation_set_comes_from_the_whole_folder_not_its_first_pictures():
    from charaid.detector.scenes import Scene
    from charaid.train_detector import split_scenes

    # a folder sorted by character, as a user's often is: 100 pictures of each of four
    names = [f"{who}_{i:04d}.jpg" for who in ("dad", "deedee", "dexter", "mom") for i in range(100)]
    scenes = [Scene(Path(n), (), n) for n in names]
    train, val = split_scenes(scenes, 0.05, 20, seed=0)
    assert len(val) == 20 and len(train) == 380
    assert {s.name.split("_")[0] for s in val} == {"dad", "deedee", "dexter", "mom"}


@pytest.mark.parametrize(
    ("pictures", "fraction", "least", "held"),
    [
        (1000, 0.15, 60, 150),  # a large set: the fraction
        (300, 0.15, 60, 60),  # a smaller one: at least `least`
        (100, 0.15, 60, 25),  # a small one: at most a quarter
        (100, 0.0, 0, 0),  # no validation
    ],
)
def test_the_validation_split_holds_out_a_fraction_but_at_least_a_few_dozen(
    pictures, fraction, least, held
):
    from charaid.detector.scenes import Scene
    from charaid.train_detector import split_scenes

    scenes = [Scene(Path(f"{i:04d}.jpg"), (), f"{i:04d}.jpg") for i in range(pictures)]
    train, val = split_scenes(scenes, fraction, least, seed=3)
    assert len(val) == held and len(train) == pictures - held
    # more asked for holds out the same pictures and more: the draw order does not change
    _, more = split_scenes(scenes, fraction + 0.3, least, seed=3)
    assert {s.name for s in val} < {s.name for s in more}


# ----------------------------------------------------------------------------- pseudo-boxes


def _frames_of(samples: list[Path], root: Path) -> Path:
    """An extract_frames folder of two videos: the demo's sample frames dealt to `a` and `b`."""
    from charaid.frames import write_index

    frames = root / "frames"
    rows = []
    for k, sample in enumerate(samples[:6]):
        video = "ab"[k % 2]
        (frames / video).mkdir(parents=True, exist_ok=True)
        path = f"{video}/{sample.name}"
        (frames / path).write_bytes(sample.read_bytes())
        rows.append({"video": video, "frame": k, "time": 0.0, "path": path})
    write_index(frames / "index.csv", rows)
    return frames


def test_pseudo_boxes_are_animeface_faces_on_frames_without_truth(demo_model, tmp_path):
    from charaid.detector.pseudo import pseudo_scenes

    frames = _frames_of(demo_model.samples, tmp_path)
    detect = section_with("detect_faces", backend="learned")  # the pseudo backend wins
    scenes = pseudo_scenes(frames, {"b"}, detect, "animeface", 0.0)
    assert scenes and all(s.name.startswith("a/") for s in scenes)  # video b is skipped
    hits = total = 0
    for scene in scenes:
        truth = [box for _, box in demo_model.truth[Path(scene.name).name]]
        total += len(scene.boxes)
        hits += sum(max(iou(b, t) for t in truth) >= 0.5 for b in scene.boxes)
    assert hits >= 0.9 * total  # the boxes are the cast's faces
    # a frame counts only when every face there is confident: a cut above one face's score
    # drops its frame, and a cut above all of them leaves nothing to learn
    weakest = sorted(min(s for s in _scores(scene, detect)) for scene in scenes)
    fewer = pseudo_scenes(frames, {"b"}, detect, "animeface", weakest[0] + 1e-6)
    assert len(fewer) < len(scenes)
    assert pseudo_scenes(frames, {"a", "b"}, detect, "animeface", 0.0) == []
    # no frames extracted yet: one line naming the file and the command
    with pytest.raises(CharaidError, match=r"index.csv: missing; run `dvc repro extract_frames`"):
        pseudo_scenes(tmp_path / "nothing", set(), detect, "animeface", 0.0)


def _scores(scene, detect) -> list[float]:
    from charaid.detect import make_detector as make

    found = make(dataclasses.replace(detect, backend="animeface")).detect(
        cv2.imread(str(scene.picture))
    )
    return [d.score for d in found]


def test_train_detector_learns_from_pseudo_boxes_and_says_it_needs_detect_settings(
    demo_model, tmp_path
):
    from charaid.train_detector import gather_scenes

    frames = _frames_of(demo_model.samples, tmp_path)
    params = dataclasses.replace(
        TINY, pseudo="animeface", pseudo_min_score=0.0, holdout_videos=("b",)
    )
    with pytest.raises(CharaidError, match="pseudo needs detect_faces"):
        gather_scenes(params, frames)
    scenes = gather_scenes(params, frames, section_with("detect_faces"))
    assert scenes and {Path(s.name).parts[0] for s in scenes} == {"a"}
