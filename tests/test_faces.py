"""detect_faces on real anime: the seed's LBP cascade over frames of a real clip."""

import os
import shutil

import cv2
import pytest

from charaid.detect import BOX_SCALE
from charaid.faces import detect_faces
from charaid.frames import Sampling, extract_frames, read_index
from tests.conftest import CASCADE, SAKURASOU, need_shared
from tests.test_detect import lbp_params


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
    for row in rows:
        crop = cv2.imread(str(tmp_path / "faces" / row["crop"]))
        assert crop.shape == (50, 50, 3)
        # traceable: the frame it came from exists and holds the box
        frame = cv2.imread(str(tmp_path / "frames" / row["video"] / f"{int(row['frame']):06d}.jpg"))
        x, y, w = float(row["x"]), float(row["y"]), float(row["w"])
        assert w * BOX_SCALE["lbp"] >= 24 and float(row["h"]) == pytest.approx(w)
        assert -w < x < frame.shape[1] and -w < y < frame.shape[0]


def test_zero_workers_means_one_process_per_core():
    from charaid.faces import worker_count

    assert worker_count({"workers": 0}) == (os.cpu_count() or 1)
    assert worker_count({"workers": 3}) == 3
