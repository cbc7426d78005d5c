"""The synthetic demo show: files, truth format, determinism, and that detectors find the faces."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from charaid.config import SCHEMA, parse_section
from charaid.demo.cast import NAMED_CAST, looks_like, named_cast, other_show_cast, random_extras
from charaid.demo.plan import plan_show
from charaid.demo.render import TRUTH_HEADER, render_demo
from charaid.errors import CharaidError
from tests.helpers import section_with

TINY = {"seed": 0, "characters": 4, "extras": 4, "episodes": 1, "seconds": 4, "fps": 8,
        "width": 640, "height": 360, "other_show_episodes": 1}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, render_demo(section_with("make_demo", **TINY), out)


def read_truth(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(frame)


def test_files_exist(demo):
    out, summary = demo
    for name in ("videos/ep01.mp4", "videos/othershow01.mp4", "truth/ep01.csv",
                 "truth/othershow01.csv", "cast.json", "cast.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert summary["videos"] == 2
    frames = read_frames(out / "videos" / "ep01.mp4")
    assert len(frames) == 32 and frames[0].shape == (360, 640, 3)
    assert not list(out.parent.glob(".demo*")), "no temporary folder is left behind"


def test_truth_format_and_boxes_inside_frame(demo):
    out, _ = demo
    for stem, roles in (("ep01", {"cast", "extra"}), ("othershow01", {"othershow"})):
        with (out / "truth" / f"{stem}.csv").open(encoding="utf-8") as fh:
            assert fh.readline().strip() == ",".join(TRUTH_HEADER)
        rows = read_truth(out / "truth" / f"{stem}.csv")
        assert rows, stem
        assert {r["role"] for r in rows} <= roles
        for r in rows:
            x, y, w, h = (int(r[k]) for k in "xywh")
            assert w == h and 38 <= w <= 200
            assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 360
            assert 0 <= int(r["frame"]) < 32


def test_every_named_character_appears(demo):
    out, summary = demo
    names = {r["character"] for r in read_truth(out / "truth" / "ep01.csv")}
    assert {d.name for d in named_cast(4)} <= names
    assert not names & {d.name for d in NAMED_CAST[4:]}, "only the first `characters` are used"
    other = {r["character"] for r in read_truth(out / "truth" / "othershow01.csv")}
    assert other <= {d.name for d in other_show_cast()}
    assert summary["faces"]["cast"] > 0 and summary["faces"]["othershow"] > 0


def test_same_params_same_bytes(demo, tmp_path):
    out, _ = demo
    again = tmp_path / "again"
    render_demo(section_with("make_demo", **TINY), again)
    for name in ("truth/ep01.csv", "truth/othershow01.csv", "cast.json", "videos/ep01.mp4"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_cast_is_hard_and_extras_are_distinct():
    # look-alike pairs share every colour and differ in hair style or accessory
    for a, b in zip(NAMED_CAST[::2], NAMED_CAST[1::2], strict=True):
        assert (a.skin, a.hair, a.eyes, a.outfit) == (b.skin, b.hair, b.eyes, b.outfit)
        assert (a.hair_style, a.accessory) != (b.hair_style, b.accessory)
    extras = random_extras(0, 16)
    assert len({e.name for e in extras}) == 16
    assert not any(looks_like(e, c) for e in extras for c in NAMED_CAST)
    assert random_extras(0, 16) == extras and random_extras(1, 16) != extras


def test_bad_params_are_clear_errors():
    # checked against charaid.config's MakeDemoParams, the one set of rules (and params.yaml
    # the values)
    def parse(values: dict):
        return parse_section("make_demo", values)

    with pytest.raises(CharaidError, match=r"make_demo.characters must be an integer in \[2, 6\]"):
        parse({**TINY, "characters": 7})
    with pytest.raises(CharaidError, match="unknown key 'make_demo.episode'"):
        parse({**TINY, "episode": 2})
    with pytest.raises(CharaidError, match="make_demo is missing width"):
        parse({k: v for k, v in TINY.items() if k != "width"})
    with pytest.raises(CharaidError, match=r"make_demo.width must be an integer in \[335, "):
        parse({**TINY, "width": 334})
    assert parse(TINY) == section_with("make_demo", **TINY)


def test_schema_minimum_frame_is_what_the_planner_needs():
    fields = SCHEMA["make_demo"]
    width, height = int(fields["width"].minimum), int(fields["height"].minimum)

    def plan(w: int, h: int) -> None:  # a show's worth of shots: many groups of four
        s = section_with(
            "make_demo", **{**TINY, "seconds": 30.0, "fps": 1, "width": w, "height": h}
        )
        for _, shots in plan_show(s):
            for _ in shots:
                pass

    plan(width, height)  # the smallest frame the schema allows
    for w, h in ((width - 1, height), (width, height - 1)):  # a pixel less: four faces don't fit
        with pytest.raises(ValueError):
            plan(w, h)


def iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_animeface_finds_the_drawn_faces(demo):
    animeface = pytest.importorskip("animeface")
    from PIL import Image

    out, _ = demo
    rows = read_truth(out / "truth" / "ep01.csv")
    frames = read_frames(out / "videos" / "ep01.mp4")
    found = total = 0
    for i in range(0, len(frames), 4):
        rgb = Image.fromarray(cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB))
        boxes = []
        for face in animeface.detect(rgb):
            p = face.face.pos  # animeface's side is ~0.98 face widths: rescale about the centre
            side = p.width / 0.98
            cx, cy = p.x + p.width / 2, p.y + p.height / 2
            boxes.append((cx - side / 2, cy - side / 2, side, side))
        for r in (r for r in rows if int(r["frame"]) == i):
            truth = tuple(int(r[k]) for k in "xywh")
            total += 1
            found += any(iou(truth, b) >= 0.5 for b in boxes)
    assert total >= 10
    assert found / total >= 0.8, f"animeface found {found} of {total} drawn faces"
