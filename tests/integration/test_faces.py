"""detect_faces: crops stored as one array file per video, read back by key; real anime too."""

import hashlib
import os
import shutil

import cv2
import numpy as np
import pytest

from charaid.boxes import square_crop
from charaid.cli import main
from charaid.crops import crop_file, load_crops
from charaid.demo.cast import named_cast
from charaid.demo.draw import Pose, draw_character
from charaid.detect import BOX_SCALE
from charaid.detect_faces import detect_faces, export_crops
from charaid.errors import CharaidError
from charaid.frames import Sampling, extract_frames, read_index
from tests.helpers import CASCADE, SAKURASOU, lbp_params, need_shared, section_with


def animeface_params():
    return section_with("detect_faces", backend="animeface", workers=1)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Frames of drawn characters (pictures pass through extract_frames), and their faces."""
    root = tmp_path_factory.mktemp("drawn")
    (root / "pictures").mkdir()
    cast = named_cast(6)
    for i in range(3):
        img = np.full((260, 400, 3), (200, 220, 235), np.uint8)
        for j, design in enumerate(cast[i * 2 : i * 2 + 2]):
            draw_character(img, design, Pose(100 + 200 * j, 110, 80))
        cv2.imwrite(str(root / "pictures" / f"p{i}.png"), img)
    extract_frames(root / "pictures", root / "frames", Sampling(dedup_distance=-1))
    summary = detect_faces(root / "frames", root / "faces", animeface_params())
    return root, summary


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_crops_are_one_array_file_per_video_and_read_back_by_key(drawn):
    root, summary = drawn
    faces = root / "faces"
    rows = read_index(faces / "index.csv")
    assert summary["faces"] == len(rows) >= 4
    # one file per video (pictures form the video "images"), no file per crop
    assert sorted(p.name for p in (faces / "crops").iterdir()) == ["images.npz"]
    crops = load_crops(faces, rows)
    params = animeface_params()
    side = params.crop_size
    assert crops.shape == (len(rows), side, side, 3) and crops.dtype == np.uint8
    frames = {r["frame"]: r["path"] for r in read_index(root / "frames" / "index.csv")}
    for row, crop in zip(rows, crops, strict=True):
        # each crop is exactly what its box cuts from its frame
        frame = cv2.imread(str(root / "frames" / frames[row["frame"]]))
        box = tuple(float(row[k]) for k in "xywh")
        cut = (int(row["crop_x"]), int(row["crop_y"]), int(row["crop_side"]))
        # the crop box grows the face box by the margin (which is stored to 0.1 px: one pixel
        # of rounding either way) ...
        grown = square_crop(frame, box, params.margin, side)[1]
        assert all(abs(a - b) <= 1 for a, b in zip(grown[:3], cut, strict=True)), (grown, cut)
        # ... and the crop is exactly what that crop box cuts
        expected = square_crop(frame, (*cut, cut[2]), 0.0, side)[0]
        assert np.abs(crop.astype(int) - expected.astype(int)).max() <= 1
    # any subset, any order
    assert np.array_equal(load_crops(faces, rows[::-1][:2]), crops[::-1][:2])


def test_same_frames_give_byte_identical_crop_files(drawn, tmp_path):
    root, _ = drawn
    detect_faces(root / "frames", tmp_path / "again", animeface_params())
    for name in ("index.csv", "crops/images.npz"):
        assert md5(root / "faces" / name) == md5(tmp_path / "again" / name)


def test_missing_or_damaged_crop_file_is_one_clear_error(drawn, tmp_path):
    root, _ = drawn
    faces = tmp_path / "faces"
    shutil.copytree(root / "faces", faces)
    rows = read_index(faces / "index.csv")
    with pytest.raises(CharaidError, match="no crop 'images/nope_0'"):
        load_crops(faces, [{"crop": "images/nope_0"}])
    crop_file(faces, "images").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CharaidError, match="images.npz: crop file cannot be read"):
        load_crops(faces, rows)
    crop_file(faces, "images").unlink()
    with pytest.raises(
        CharaidError, match="images.npz: crop file missing; run `dvc repro detect_faces`"
    ):
        load_crops(faces, rows)


def test_export_crops_writes_pictures_to_sort(drawn, tmp_path, capsys):
    root, _ = drawn
    rows = read_index(root / "faces" / "index.csv")
    out = tmp_path / "unsorted"
    main(["export-crops", "--faces", str(root / "faces"), "--out", str(out)])
    assert f"{len(rows)} crops written" in capsys.readouterr().out
    crops = load_crops(root / "faces", rows)
    for row, crop in zip(rows, crops, strict=True):
        assert np.array_equal(cv2.imread(str(out / f"{row['crop']}.png")), crop)
    # never over a folder that may hold sorting work
    with pytest.raises(CharaidError, match="exists and is not empty"):
        export_crops(root / "faces", out)


def test_lbp_stage_finds_real_faces_in_sakurasou(tmp_path):
    need_shared(SAKURASOU)
    need_shared(CASCADE)
    (tmp_path / "videos").mkdir()
    shutil.copy(SAKURASOU, tmp_path / "videos")
    extract_frames(
        tmp_path / "videos", tmp_path / "frames", Sampling(every_n_frames=8, dedup_distance=-1)
    )
    summary = detect_faces(tmp_path / "frames", tmp_path / "faces", lbp_params(workers=2))
    rows = read_index(tmp_path / "faces" / "index.csv")
    assert summary["faces"] == len(rows) >= 3
    crops = load_crops(tmp_path / "faces", rows)
    side = lbp_params().crop_size
    assert crops.shape == (len(rows), side, side, 3)
    for row in rows:
        # traceable: the frame it came from exists and holds the box
        frame = cv2.imread(str(tmp_path / "frames" / row["video"] / f"{int(row['frame']):06d}.jpg"))
        x, y, w = float(row["x"]), float(row["y"]), float(row["w"])
        assert w * BOX_SCALE["lbp"] >= 24 and float(row["h"]) == pytest.approx(w)
        assert -w < x < frame.shape[1] and -w < y < frame.shape[0]


def test_zero_workers_means_one_process_per_core():
    from charaid.detect_faces import worker_count

    assert worker_count(section_with("detect_faces", workers=0)) == (os.cpu_count() or 1)
    assert worker_count(section_with("detect_faces", workers=3)) == 3
