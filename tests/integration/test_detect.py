import dataclasses

import pytest

from charaid.detect import make_detector
from charaid.errors import CharaidError
from tests.helpers import PLAIN_DETECT, lbp_params, section_with


def test_missing_cascade_is_a_clear_error(tmp_path):
    with pytest.raises(CharaidError, match="cascade file not found"):
        make_detector(lbp_params(cascade=str(tmp_path / "nope.xml")))
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(CharaidError, match="not a valid OpenCV cascade"):
        make_detector(lbp_params(cascade=str(bad)))


def test_animeface_result_does_not_depend_on_the_frames_before_it():
    """animeface's colour analysis draws from one process-wide generator: the detector reseeds
    it per frame, so a frame gives the same faces and boxes whatever was detected before."""
    import numpy as np

    from charaid.demo.cast import named_cast
    from charaid.demo.draw import Pose, draw_character
    from charaid.detect import AnimefaceDetector

    frames = []
    for k in range(4):
        img = np.full((260, 600, 3), (200, 220, 235), np.uint8)
        for i, design in enumerate(named_cast(6)[k : k + 3]):
            draw_character(img, design, Pose(100 + 200 * i, 110, 70 + 5 * k))
        frames.append(img)
    detector = AnimefaceDetector(0.0, 24, 0.49, True)
    first = detector.detect(frames[0])
    for frame in frames[1:] * 3:
        detector.detect(frame)
    assert first and detector.detect(frames[0]) == first

    # the generator really is shared and really moves: without the reseed, colours drift
    import animeface
    from PIL import Image

    pil = Image.fromarray(frames[0][..., ::-1].copy())
    hair = {tuple(vars(f.hair.color).values()) for _ in range(8) for f in animeface.detect(pil)}
    assert len(hair) > len(first)


def test_pad_finds_a_face_cut_by_the_frame_edge_and_maps_its_box_back():
    """A border lets the detector's window overhang the frame as the face does; the box comes
    back in the frame's coordinates (partly outside it, where the face is)."""
    import numpy as np

    from charaid.boxes import iou
    from charaid.demo.cast import named_cast
    from charaid.demo.draw import Pose, draw_character

    canvas = np.full((400, 700, 3), (200, 220, 235), np.uint8)
    draw_character(canvas, named_cast(6)[0], Pose(200, 200, 150))
    plain = {**PLAIN_DETECT, "backend": "animeface", "min_score": 0.0, "min_size": 24}
    params = section_with("detect_faces", **{**plain, "sharpen": 1.5})
    whole = make_detector(params).detect(canvas)
    assert len(whole) == 1
    x, y, w, h = whole[0].box
    cut = int(x + 0.25 * w)  # the frame starts a quarter of the way into the face
    frame = np.ascontiguousarray(canvas[:, cut:])
    assert make_detector(params).detect(frame) == []
    found = make_detector(dataclasses.replace(params, pad=0.25)).detect(frame)
    assert len(found) == 1
    assert found[0].box[0] < 0 and iou(found[0].box, (x - cut, y, w, h)) > 0.7


def test_grey_world_evens_out_a_colour_cast_and_leaves_neutral_frames_alone():
    import numpy as np

    from charaid.detect import grey_world

    rng = np.random.default_rng(0)
    scene = rng.integers(40, 200, (72, 128, 3)).astype(np.uint8)
    blue = np.clip(scene * np.array([1.0, 0.55, 0.35]), 0, 255).astype(np.uint8)  # BGR
    balanced = grey_world(blue)
    means = balanced.reshape(-1, 3).mean(axis=0)
    assert means.max() - means.min() < 3  # the cast is gone...
    assert blue.reshape(-1, 3).mean(axis=0).ptp() > 40
    # ...and the picture is the scene again, up to its overall brightness and rounding
    neutral = grey_world(scene).astype(float)
    assert np.abs(balanced - neutral * balanced.mean() / neutral.mean()).mean() < 3
    grey = np.full((36, 64, 3), 128, np.uint8)
    assert np.array_equal(grey_world(grey), grey)
    # a channel that is (nearly) empty is not blown up into noise: the gain is capped at 4
    no_red = scene.copy()
    no_red[..., 2] = 2
    assert grey_world(no_red)[..., 2].max() <= 2 * 4 + 1
    assert grey_world(scene[..., 0]) is not None  # a grey frame passes through
