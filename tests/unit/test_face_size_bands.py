"""detect-eval's breakdown by face size: bands and the shares in each, on hand-made boxes."""

import pytest

from charaid.detect_eval import SIZE_EDGES, score_by_size, size_band


def test_bands_by_share_of_the_long_side():
    assert size_band(20, 1000) == "under 5%"
    assert size_band(50, 1000) == "5%-10%"  # an edge belongs to the band above it
    assert size_band(150, 1000) == "10%-20%"
    assert size_band(399, 1000) == "20%-40%"
    assert size_band(400, 1000) == "40% or more"
    # the long side decides: the same face is small in a big picture
    assert size_band(60, 600) != size_band(60, 1920)


def test_recall_by_the_face_band_and_precision_by_the_detection_band():
    small, mid = (100, 100, 30, 30), (400, 100, 150, 150)  # 3% and 15% of a 1000-px side
    frames = [
        # the small face found exactly, the mid one missed, one small false detection
        (1000, [small, (700, 700, 30, 30)], [small, mid]),
        # a mid face found, but too large a box: IoU 0.5625 with 200 against 150
        (1000, [(375, 75, 200, 200)], [mid]),
        # a frame of no faces and a mid-sized false detection
        (1000, [(0, 0, 150, 150)], []),
    ]
    bands = score_by_size(frames)
    assert list(bands) == ["under 5%", "5%-10%", "10%-20%", "20%-40%", "40% or more"]
    assert len(bands) == len(SIZE_EDGES) + 1
    s, m, big = bands["under 5%"], bands["10%-20%"], bands["20%-40%"]
    assert (s["faces"], s["detections"]) == (1, 2)
    assert s["recall_iou50"] == 1.0 and s["precision_iou50"] == 0.5
    assert (m["faces"], m["detections"]) == (2, 1)  # the 200-px box: 20%
    assert m["recall_iou50"] == 0.5 and m["precision_iou50"] == 0.0
    assert (big["faces"], big["detections"]) == (0, 1)
    assert big["recall_iou50"] is None  # a share of nothing
    assert big["precision_iou50"] == 1.0
    assert bands["5%-10%"] == {
        "faces": 0,
        "detections": 0,
        "recall_iou50": None,
        "precision_iou50": None,
        "recall_iou30": None,
        "precision_iou30": None,
    }


@pytest.mark.parametrize("iou", ["iou50", "iou30"])
def test_bands_add_up_to_the_whole(iou):
    frames = [(640, [(10, 10, 40, 40), (300, 50, 200, 200)], [(12, 10, 40, 40), (0, 0, 300, 300)])]
    bands = score_by_size(frames)
    assert sum(b["faces"] for b in bands.values()) == 2
    assert sum(b["detections"] for b in bands.values()) == 2
    found = sum(b[f"recall_{iou}"] * b["faces"] for b in bands.values() if b["faces"])
    assert found == pytest.approx(1.0)  # the small face only: the large box is another's
