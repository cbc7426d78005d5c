import cv2
import numpy as np

from charaid.visualize import (
    DETECTION_COLOR,
    LEGEND_BAND,
    TRUTH_COLOR,
    class_color,
    contact_sheet,
    draw_faces,
    error_sheet,
)


def test_colours_are_fixed_per_name_and_distinct():
    assert class_color("Akari") == class_color("Akari")
    assert len({class_color(n) for n in ("Akari", "Hikari", "Sora", "Ren", "Mio")}) == 5
    assert class_color("unknown") == (160, 160, 160)
    classes = ["Akari", "Hikari", "Mio", "Ren", "Sora", "Yui", "other"]
    assert len({class_color(n, classes) for n in classes}) == len(classes)


def test_draw_faces_draws_box_in_class_colour_and_keeps_input():
    image = np.zeros((720, 1280, 3), np.uint8)
    out = draw_faces(image, [((100, 200, 120, 120), "Akari", 0.93)])
    assert not image.any()  # the input is left untouched
    assert tuple(int(v) for v in out[260, 100]) == class_color("Akari")  # left edge of the box
    assert out[150:200, 100:300].any()  # the name tag above the box


def test_label_stays_inside_for_faces_at_the_top_edge():
    image = np.zeros((200, 200, 3), np.uint8)
    out = draw_faces(image, [((150, 0, 50, 50), "Sora", 0.5)])
    assert out[50:80, 100:200].any()  # tag goes below the box when there is no room above


def test_contact_sheet_has_a_row_per_class():
    crops = {"a": [np.full((50, 50, 3), 200, np.uint8)] * 3, "b": [np.zeros((50, 50, 3), np.uint8)]}
    sheet = contact_sheet(crops)
    assert sheet.shape[0] == 2 * 58 + 8
    assert (sheet[8:58, 180:230] == 200).all()


def _cell(sheet: np.ndarray, row: int, col: int, side: int = 96) -> np.ndarray:
    """A crop's place in an error sheet (legend band on top, label column 180 px, 4 px gaps,
    8 px between rows)."""
    y, x = LEGEND_BAND + 8 + row * (side + 8), 180 + col * (side + 4)
    return sheet[y : y + side, x : x + side]


def _has(cell: np.ndarray, color: tuple) -> bool:
    return bool(np.all(cell == np.array(color, np.uint8), axis=-1).any())


def test_error_sheet_shows_each_miss_and_false_detection_in_context(tmp_path):
    frame = tmp_path / "f.png"
    cv2.imwrite(str(frame), np.full((400, 600, 3), 128, np.uint8))
    truths = [(50, 50, 60, 60), (300, 60, 60, 60), (450, 250, 50, 50)]
    preds = [(52, 52, 60, 60), (200, 250, 70, 70)]  # finds the first face; one false box
    sheet = error_sheet([(frame, preds, truths)], min_iou=0.5)
    for col in (0, 1):  # the two missed faces, each with its truth box drawn in green
        assert _has(_cell(sheet, 0, col), TRUTH_COLOR)
    assert (_cell(sheet, 0, 2) == 255).all()  # nothing more
    false = _cell(sheet, 1, 0)
    assert _has(false, DETECTION_COLOR) and not _has(false, TRUTH_COLOR)
    assert (_cell(sheet, 1, 1) == 255).all()


def test_error_sheet_caps_each_row(tmp_path):
    frame = tmp_path / "f.png"
    cv2.imwrite(str(frame), np.full((200, 200, 3), 90, np.uint8))
    truths = [(20, 20, 40, 40), (120, 120, 40, 40), (20, 120, 40, 40)]
    sheet = error_sheet([(frame, [], truths)], min_iou=0.5, per_row=2)
    assert _has(_cell(sheet, 0, 0), TRUTH_COLOR) and _has(_cell(sheet, 0, 1), TRUTH_COLOR)
    assert (_cell(sheet, 0, 2) == 255).all()  # two crops per row, the third is only counted
    assert sheet.shape[0] == LEGEND_BAND + 96 + 16  # no false detections: no empty row


def test_error_sheet_has_a_legend_of_the_box_colours(tmp_path):
    frame = tmp_path / "f.png"
    cv2.imwrite(str(frame), np.full((200, 200, 3), 90, np.uint8))
    sheet = error_sheet([(frame, [(100, 100, 40, 40)], [(20, 20, 40, 40)])], min_iou=0.5)
    band = sheet[:LEGEND_BAND]
    assert _has(band, TRUTH_COLOR) and _has(band, DETECTION_COLOR)
    assert (band[:, :10] == 255).all() and (band < 255).any()  # the title is written
