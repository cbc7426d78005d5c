import numpy as np

from charaid.visualize import class_color, contact_sheet, draw_faces


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
