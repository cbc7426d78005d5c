import numpy as np
import pytest

from charaid.boxes import iou, match, rescale, square_crop


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_match_is_greedy_one_to_one_best_first():
    truths = [(0, 0, 10, 10), (100, 100, 10, 10)]
    preds = [(1, 1, 10, 10), (0, 0, 10, 10), (300, 300, 5, 5)]
    # pred 1 overlaps truth 0 perfectly, so pred 0 loses it; pred 2 matches nothing.
    assert match(preds, truths, 0.5) == [(1, 0)]
    assert match([], truths, 0.5) == []


def test_rescale_keeps_centre():
    x, y, w, h = rescale((10, 20, 100, 100), 0.5)
    assert (x + w / 2, y + h / 2) == (60, 70)
    assert w == h == 50


def test_square_crop_margin_and_border():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 90:110] = 255
    crop, box = square_crop(image, (90, 40, 20, 20), 0.5, 40)
    assert crop.shape == (40, 40, 3)
    assert box == (80, 30, 40, 40)
    assert crop[20, 20].tolist() == [255, 255, 255] and crop[0, 0].tolist() == [0, 0, 0]
    # A face at the corner still gives a full-size crop, face at the same place in it.
    corner, cbox = square_crop(image, (-5, -5, 20, 20), 0.0, 20)
    assert corner.shape == (20, 20, 3) and cbox == (-5, -5, 20, 20)
