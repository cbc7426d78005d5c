"""Render the synthetic demo show: episode videos with per-frame ground truth.

Layout written by `render_demo(params, out_dir)` (the whole folder appears atomically):

- `videos/ep01.mp4 ...` (our show) and `videos/othershow01.mp4 ...` (another show);
- `truth/<video stem>.csv` with columns `frame,character,role,x,y,w,h`: one row per visible
  face per frame; `frame` counts from 0; `role` is `cast` (a named character), `extra` (one of
  the random extras, the "other" class) or `othershow` (the second show's cast);
- `cast.json` (every character's name, role, colours and style) and `cast.png` (contact sheet).

Canonical face box: (x, y, w, h) is a square of side fw (the width of the drawn face shape, the
skin area from forehead to chin) centred at (face_cx, face_cy + 0.23 * fw), where
(face_cx, face_cy) is the centre of that face shape. Both face detectors centre their boxes
there: animeface returns a side of about 0.98 fw, the LBP cascade about 1.35 fw, so a detector
box rescaled about its centre to side fw is directly comparable with the truth (IoU).

What appears in each frame comes from `charaid.demo.plan` (seeded from the params, never global
random state), the backdrops and lighting from `charaid.demo.scenery`; this module draws the
frames and writes the files. The same params give byte-identical truth CSVs and cast.json (and
identical videos with the same OpenCV build).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from charaid.atomic import atomic_dir, write_json
from charaid.config import MakeDemoParams
from charaid.demo.cast import Design, named_cast, other_show_cast, random_extras
from charaid.demo.draw import (
    BOX_OFFSET,
    FaceGeometry,
    Pose,
    draw_bubble,
    draw_character,
    draw_hand,
    draw_prop,
)
from charaid.demo.plan import Actor, Occluder, Shot, frames_per_video, plan_show
from charaid.demo.scenery import LIGHT_TABLES
from charaid.errors import CharaidError

TRUTH_HEADER = ("frame", "character", "role", "x", "y", "w", "h")


def _lerp(a: tuple, b: tuple, u: float) -> tuple:
    return tuple(x + (y - x) * u for x, y in zip(a, b, strict=True))


def _clamped_pose(actor: Actor, t: int, frames: int, w: int, h: int, shift: float) -> Pose:
    u = t / max(1, frames - 1)
    u = u * u * (3 - 2 * u)  # ease in/out
    cx, cy, fw, angle = _lerp(actor.start, actor.end, u)
    cx += shift  # the camera pan moves the whole scene
    # keep the whole canonical box inside the frame, with a pixel to spare for rounding
    cx = min(max(cx, fw / 2 + 1), w - fw / 2 - 1)
    cy = min(max(cy, (0.5 - BOX_OFFSET) * fw + 1), h - (0.5 + BOX_OFFSET) * fw - 1)
    return Pose(cx, cy, fw, angle, actor.eyes[t], actor.mouths[t], actor.gaze)


def _draw_occluder(img: np.ndarray, occ: Occluder, g: FaceGeometry) -> None:
    x, y, s = g.cx + occ.dx * g.fw, g.cy + occ.dy * g.fw, occ.size * g.fw
    if occ.kind == "bubble":
        draw_bubble(img, x, y, s, s * 0.62, (g.cx + occ.dx * g.fw * 0.4, g.cy - 0.2 * g.fw))
    elif occ.kind == "hand":
        draw_hand(img, x, y, s, occ.angle, occ.color)
    else:
        draw_prop(img, x, y, s, occ.kind, occ.color)


def render_frame(shot: Shot, t: int, w: int, h: int) -> tuple[np.ndarray, list]:
    """One frame of a shot and its truth rows (design, box)."""
    span = int(abs(shot.pan))
    off = round(span * t / max(1, shot.frames - 1))
    off, shift = (off, -off) if shot.pan >= 0 else (span - off, off)
    img = shot.background[:, off : off + w].copy()
    faces = []
    for actor in shot.actors:
        pose = _clamped_pose(actor, t, shot.frames, w, h, shift)
        geom = draw_character(img, actor.design, pose)
        faces.append((actor, geom))
    for actor, geom in faces:  # occluders go on top of every character
        if actor.occluder is not None:
            _draw_occluder(img, actor.occluder, geom)
    img = cv2.LUT(img, LIGHT_TABLES[shot.lighting])
    if shot.blur:
        img = cv2.GaussianBlur(img, (0, 0), shot.blur)
    if shot.jpeg:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, shot.jpeg])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img
    return img, [(a.design, g.box) for a, g in faces]


def render_video(path: Path, truth_path: Path, shots: Iterable[Shot], fps: int, w: int, h: int):
    """Write one mp4 and its truth CSV; return the per-character face counts."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise CharaidError(f"OpenCV cannot write mp4 video {path} (no mp4v encoder?)")
    counts: Counter = Counter()
    frame = 0
    with truth_path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(TRUTH_HEADER)
        for shot in shots:
            for t in range(shot.frames):
                img, faces = render_frame(shot, t, w, h)
                writer.write(img)
                for design, (x, y, bw, bh) in faces:
                    out.writerow((frame, design.name, design.role, x, y, bw, bh))
                    counts[(design.role, design.name)] += 1
                frame += 1
    writer.release()
    return counts


def cast_sheet(groups: list[tuple[str, list[Design]]], tile: int = 180) -> np.ndarray:
    """Contact sheet: one row per group, every face drawn front-on with its name."""
    cols = max(len(ds) for _, ds in groups)
    label_w = 150
    img = np.full((len(groups) * tile, label_w + cols * tile, 3), (236, 228, 220), np.uint8)
    for r, (title, designs) in enumerate(groups):
        cv2.putText(
            img,
            title,
            (10, r * tile + tile // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            (40, 40, 40),
            1,
            cv2.LINE_AA,
        )
        for c, d in enumerate(designs):
            x0, y0 = label_w + c * tile, r * tile
            cell = img[y0 : y0 + tile, x0 : x0 + tile]
            draw_character(cell, d, Pose(tile / 2, tile * 0.42, tile * 0.42))
            cv2.rectangle(cell, (0, tile - 24), (tile, tile), (255, 255, 255), -1)
            cv2.putText(
                cell,
                d.name,
                (8, tile - 7),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.55,
                (30, 30, 30),
                1,
                cv2.LINE_AA,
            )
            cv2.rectangle(cell, (0, 0), (tile - 1, tile - 1), (150, 150, 150), 1)
    return img


def render_demo(s: MakeDemoParams, out_dir: Path) -> dict:
    """Render the demo show described by the `make_demo` params into `out_dir` (atomically)."""
    cast, extras = named_cast(s.characters), random_extras(s.seed, s.extras)
    others = other_show_cast()
    counts: Counter = Counter()
    with atomic_dir(out_dir) as tmp:
        (tmp / "videos").mkdir()
        (tmp / "truth").mkdir()
        for stem, shots in plan_show(s):
            counts += render_video(
                tmp / "videos" / f"{stem}.mp4",
                tmp / "truth" / f"{stem}.csv",
                shots,
                s.fps,
                s.width,
                s.height,
            )
        characters = [d.summary() for d in cast + extras + others]
        # seconds as a float, as cast.json has always held it (same file, same DVC hash)
        settings = {**s.to_dict(), "seconds": float(s.seconds)}
        write_json(
            tmp / "cast.json",
            {"box_offset": BOX_OFFSET, "characters": characters, "settings": settings},
        )
        sheet = cast_sheet([("named cast", cast), ("extras", extras[:8]), ("other show", others)])
        cv2.imwrite(str(tmp / "cast.png"), sheet)
    roles = Counter()
    for (role, _), n in counts.items():
        roles[role] += n
    return {
        "videos": s.episodes + s.other_show_episodes,
        "frames_per_video": frames_per_video(s),
        "faces": dict(sorted(roles.items())),
        "per_character": {name: n for (role, name), n in sorted(counts.items()) if role != "extra"},
    }
