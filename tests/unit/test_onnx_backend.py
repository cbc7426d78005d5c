"""The `onnx` backend of detect_faces: YOLOv8-layout graphs built with the `onnx` package, run by
OpenCV's DNN; the letterbox undone to a known answer, NMS, and one clear error per bad file."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from charaid.config import Params  # noqa: E402
from charaid.detect import make_detector  # noqa: E402
from charaid.detector.yolo_onnx import OnnxDetector, letterbox  # noqa: E402
from charaid.errors import CharaidError  # noqa: E402
from tests.helpers import section_with  # noqa: E402

SIZE, ANCHORS = 640, 80 * 80 + 40 * 40 + 20 * 20  # YOLOv8 at 640: strides 8, 16, 32


def save(nodes, inits, out_shape, path: Path) -> Path:
    graph = helper.make_graph(
        nodes,
        "yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out_shape))],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def random_yolo(path: Path, seed: int = 0) -> Path:
    """YOLOv8's head layout with random weights: one 5-channel conv per stride (4 box + 1 class),
    each flattened to (1, 5, -1), concatenated to (1, 5, 8400)."""
    rng = np.random.default_rng(seed)
    nodes, inits, heads = [], [], []
    bias = np.array([SIZE / 2, SIZE / 2, 40, 40, 0], np.float32)  # boxes of some size, centred
    for s in (8, 16, 32):
        w = rng.normal(0, 0.05, (5, 3, s, s)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{s}"), numpy_helper.from_array(bias, f"b{s}")]
        nodes += [
            helper.make_node(
                "Conv", ["images", f"w{s}", f"b{s}"], [f"c{s}"], kernel_shape=[s, s], strides=[s, s]
            ),
            helper.make_node("Reshape", [f"c{s}", "shape"], [f"r{s}"]),
        ]
        heads.append(f"r{s}")
    inits.append(numpy_helper.from_array(np.array([1, 5, -1], np.int64), "shape"))
    nodes.append(helper.make_node("Concat", heads, ["output0"], axis=2))
    return save(nodes, inits, (1, 5, ANCHORS), path)


def constant_yolo(path: Path, table: np.ndarray) -> Path:
    """A graph whose output is `table` whatever the picture: mean(picture) * 0 + table."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "table"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
        numpy_helper.from_array(table.astype(np.float32), "table"),
    ]
    return save(nodes, inits, table.shape, path)


def table_of(rows: list[tuple[float, ...]], classes: int = 1) -> np.ndarray:
    """(1, 4 + classes, 8400): the given anchors (cx, cy, w, h, class scores...), the rest 0."""
    table = np.zeros((1, 4 + classes, ANCHORS), np.float32)
    for i, row in enumerate(rows):
        table[0, :, 1000 + 37 * i] = row  # anywhere among the anchors
    return table


def params(path: Path | str, min_score: float = 0.5, min_size: int = 8):
    return section_with(
        "detect_faces",
        backend="onnx",
        onnx=str(path),
        detector_min_score=min_score,
        min_size=min_size,
    )


def frame(width: int = 1280, height: int = 720) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)


def square(cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
    return (cx - side / 2, cy - side / 2, side, side)


# 1280 x 720 into 640 x 640: halved to 640 x 360, centred: 140 rows of grey above and below.
# Input (cx, cy, w, h) -> frame ((cx - 0) * 2, (cy - 140) * 2, 2w, 2h), then the square of the
# same area about the centre.
ROWS = [
    (200, 240, 80, 20, 0.9),  # -> centre (400, 200), 160 x 40: side 80
    (400, 300, 50, 50, 0.8),  # -> centre (800, 320), side 100
    (404, 302, 50, 50, 0.6),  # overlaps the one above (IoU ~0.8): NMS drops it, the weaker
    (500, 400, 40, 40, 0.2),  # below detector_min_score 0.5
    (100, 450, 3, 3, 0.95),  # side 6 in the frame: below min_size 8
]
EXPECTED = [(square(400, 200, 80), 0.9), (square(800, 320, 100), 0.8)]


def found(dets) -> list:
    return sorted(((tuple(d.box), round(d.score, 5)) for d in dets), key=lambda f: -f[1])


# ----------------------------------------------------------------------------- detection


def test_a_yolov8_shaped_graph_runs_on_a_wide_frame(tmp_path):
    detector = make_detector(params(random_yolo(tmp_path / "yolo.onnx"), min_score=0.0))
    faces = detector.detect(frame())
    assert isinstance(faces, list) and faces  # the biased boxes survive: decoded, NMS'd
    for face in faces:
        x, y, w, h = face.box
        assert w == h >= 8 and all(math.isfinite(v) for v in (x, y, w, h))


def test_letterbox_centres_the_frame_on_grey_114():
    padded, r, left, top = letterbox(np.zeros((720, 1280, 3), np.uint8), SIZE)
    assert padded.shape == (SIZE, SIZE, 3) and (r, left, top) == (0.5, 0, 140)
    assert (padded[:140] == 114).all() and (padded[500:] == 114).all()
    assert (padded[140:500] == 0).all()
    padded, r, left, top = letterbox(np.zeros((500, 250, 3), np.uint8), SIZE)  # tall
    assert (r, left, top) == (1.28, 160, 0) and (padded[:, :160] == 114).all()


def test_known_boxes_come_back_in_frame_pixels(tmp_path):
    path = constant_yolo(tmp_path / "known.onnx", table_of(ROWS))
    faces = make_detector(params(path)).detect(frame())
    assert len(faces) == 2  # NMS kept the better of the overlapping pair, the weak one is gone
    for (box, score), (want, want_score) in zip(found(faces), EXPECTED, strict=True):
        assert box == pytest.approx(want, abs=1e-3) and score == pytest.approx(want_score)


def test_a_resized_copy_of_the_frame_gives_the_same_frame_boxes(tmp_path):
    """The `scale` the FaceDetector passes: a frame halved to 640 x 360 is not resized again,
    and its boxes are doubled back to frame pixels."""
    detector = OnnxDetector(constant_yolo(tmp_path / "k.onnx", table_of(ROWS)), 0.5, 8)
    faces = found(detector.detect(cv2.resize(frame(), (640, 360)), scale=0.5))
    assert [b for b, _ in faces] == [pytest.approx(b, abs=1e-3) for b, _ in EXPECTED]


def test_a_face_scores_its_best_class(tmp_path):
    rows = [(200, 240, 80, 20, 0.1, 0.7), (500, 400, 40, 40, 0.3, 0.2)]
    path = constant_yolo(tmp_path / "two.onnx", table_of(rows, classes=2))
    faces = found(make_detector(params(path)).detect(frame()))
    assert faces == [(pytest.approx(square(400, 200, 80), abs=1e-3), 0.7)]


def test_onnx_is_a_backend_in_params_yaml(sample_params):
    sample_params["detect_faces"].update(backend="onnx", onnx="models/face.onnx")
    assert Params.from_mapping(sample_params).detect_faces.backend == "onnx"  # no error


# ----------------------------------------------------------------------------- bad files


def _not_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "face.onnx"
    path.write_text("this is a text file, not a model\n")
    return path


def _transposed(tmp_path: Path) -> Path:
    """YOLOv5's layout, (1, anchors, 5 + classes): not the one this backend decodes."""
    return constant_yolo(tmp_path / "v5.onnx", np.zeros((1, ANCHORS, 6), np.float32))


def _flat(tmp_path: Path) -> Path:
    return constant_yolo(tmp_path / "flat.onnx", np.zeros((1, 10), np.float32))


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda t: t / "models" / "face.onnx", "not found"),
        (_not_onnx, "not an ONNX model"),
        (_transposed, "(1, 4 + classes, anchors)"),
        (_flat, "(1, 4 + classes, anchors)"),
    ],
    ids=["missing", "text_file", "yolov5_layout", "flat_output"],
)
def test_a_bad_model_file_is_one_clear_error(tmp_path, make, needle):
    path = make(tmp_path)
    with pytest.raises(CharaidError) as error:
        make_detector(params(path))
    message = str(error.value)
    assert "\n" not in message and str(path) in message and needle in message
    assert "detect_faces.onnx" in message


def test_no_model_named_is_one_clear_error():
    with pytest.raises(CharaidError, match="detect_faces.onnx is empty"):
        make_detector(params(""))
