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

Everything is deterministic in `seed`: numpy Generators seeded from the params, never global
random state, so the same params give byte-identical truth CSVs and cast.json (and identical
videos with the same OpenCV build).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from charaid.atomic import atomic_dir, write_json
from charaid.demo.cast import Design, named_cast, other_show_cast, random_extras
from charaid.demo.draw import (
    BOX_OFFSET,
    FaceGeometry,
    Pose,
    draw_bubble,
    draw_character,
    draw_hand,
    draw_prop,
    shade,
)
from charaid.errors import CharaidError

DEFAULTS = {
    "seed": 0,
    "characters": 6,
    "extras": 16,
    "episodes": 4,
    "seconds": 12.0,
    "fps": 8,
    "width": 1280,
    "height": 720,
    "other_show_episodes": 1,
}
TRUTH_HEADER = ("frame", "character", "role", "x", "y", "w", "h")

# Shot composition. Tuned so that defaults give ~180 faces per named character, extras a bit
# more often than one named character and a few hundred other-show faces.
GROUP_SIZES = (1, 2, 3, 4)
GROUP_WEIGHTS = (0.04, 0.1, 0.3, 0.56)
P_EXTRA_SLOT = 0.06  # a foreground slot goes to an extra instead of a named character
EXTRAS_PER_FRAME, CROWD_MAX = 0.5, 2  # small extras in the background, 1-2 per shot
P_EMPTY = 0.03  # scenery-only shots (no faces)
# camera pan over a shot, fraction of the frame width: also makes consecutive sampled frames
# differ enough to survive extract_frames' near-duplicate filter (64-bit dHash)
PAN = (0.1, 0.25)
PLACE_TRIES = 60
LIGHTING = {"day": 0.55, "sunset": 0.25, "night": 0.2}
P_BLUR, P_DEFOCUS, P_JPEG, P_OCCLUDE = 0.12, 0.25, 0.3, 0.22
MIN_FACE, MAX_FACE = 40.0, 200.0  # face width range in pixels (at 720p)
GROUP_FACE_SCALE = (1.0, 1.0, 0.95, 0.85)  # big groups get smaller faces, so that they fit
HEAD_EXTENT = {"twintails": 1.12, "ponytail": 1.05, "long": 0.82}  # hair half-width / fw


@dataclass(frozen=True)
class Settings:
    seed: int = 0
    characters: int = 6
    extras: int = 16
    episodes: int = 4
    seconds: float = 12.0
    fps: int = 8
    width: int = 1280
    height: int = 720
    other_show_episodes: int = 1


def settings_from(params: dict) -> Settings:
    """Defaults + the params.yaml `make_demo` section, checked."""
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise CharaidError(f"make_demo: unknown key(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    merged = {**DEFAULTS, **params}
    s = Settings(
        seed=int(merged["seed"]),
        characters=int(merged["characters"]),
        extras=int(merged["extras"]),
        episodes=int(merged["episodes"]),
        seconds=float(merged["seconds"]),
        fps=int(merged["fps"]),
        width=int(merged["width"]),
        height=int(merged["height"]),
        other_show_episodes=int(merged["other_show_episodes"]),
    )
    if not 2 <= s.characters <= 6:
        raise CharaidError(f"make_demo.characters must be 2..6, got {s.characters}")
    if s.extras < 1 or s.episodes < 1 or s.other_show_episodes < 0:
        raise CharaidError("make_demo: extras and episodes must be >= 1, other_show_episodes >= 0")
    if s.seconds <= 0 or s.fps < 1 or s.width < 320 or s.height < 240:
        raise CharaidError("make_demo: need seconds > 0, fps >= 1 and at least 320x240 pixels")
    return s


# ---------------------------------------------------------------- shot planning


@dataclass
class Occluder:
    kind: str  # bubble | hand | book | cup
    dx: float  # centre relative to the face centre, face units
    dy: float
    size: float  # face units
    angle: float = 0.0
    color: tuple = (255, 255, 255)


@dataclass
class Actor:
    design: Design
    start: tuple[float, float, float, float]  # cx, cy, fw, angle at the first frame
    end: tuple[float, float, float, float]  # ... and at the last frame
    eyes: list[float]  # per-frame eyes_open
    mouths: list[str]  # per-frame mouth
    gaze: float
    occluder: Occluder | None = None


@dataclass
class Shot:
    frames: int
    background: np.ndarray
    pan: float  # horizontal camera pan over the shot, pixels
    lighting: str
    blur: float  # Gaussian sigma, 0 = sharp
    jpeg: int  # JPEG quality of an extra degradation pass, 0 = none
    actors: list[Actor] = field(default_factory=list)


class Casting:
    """Deals the characters with the least screen time so far, so every one gets its share."""

    def __init__(self, designs: list[Design], rng: np.random.Generator):
        self.designs = designs
        self.frames = dict.fromkeys((d.name for d in designs), 0)
        self.tiebreak = {d.name: float(rng.random()) for d in designs}
        self.rng = rng
        self.elapsed = 0  # frames of the show planned so far

    def deal(self, exclude: set[str]) -> Design | None:
        free = [d for d in self.designs if d.name not in exclude]
        if not free:
            return None
        best = min(free, key=lambda d: (self.frames[d.name], self.tiebreak[d.name]))
        self.tiebreak[best.name] = float(self.rng.random())
        return best

    def credit(self, shot: Shot) -> None:
        self.elapsed += shot.frames
        for actor in shot.actors:
            if actor.design.name in self.frames:
                self.frames[actor.design.name] += shot.frames

    def behind(self, per_frame: float) -> bool:
        """Have these characters had fewer than `per_frame` faces per frame of the show so far?"""
        return bool(self.designs) and sum(self.frames.values()) < per_frame * self.elapsed


def _choice(rng: np.random.Generator, weights: dict) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _extent(d: Design) -> float:
    return HEAD_EXTENT.get(d.hair_style, 0.72)


Rect = tuple[float, float, float, float]  # x0, y0, x1, y1
MOTION = 0.28  # how far (face widths) a face may drift within a shot, plus a little margin


@dataclass
class Member:
    """A character placed in a shot (before motion is added)."""

    design: Design
    cx: float  # face-shape centre at the first frame
    cy: float
    fw: float
    depth: int  # drawing order: lower is drawn first, i.e. further away
    background: bool = False

    @property
    def reach(self) -> float:
        return self.fw * 1.12  # the zoom within a shot can grow a face by 12%


def _face_rect(m: Member) -> Rect:
    """Where this face may be during the shot."""
    fw, pad = m.reach, MOTION * m.reach
    top, bottom = (0.5 - BOX_OFFSET) * fw + pad, (0.5 + BOX_OFFSET) * fw + pad
    return (m.cx - 0.5 * fw - pad, m.cy - top, m.cx + 0.5 * fw + pad, m.cy + bottom)


def _cover_rects(m: Member) -> list[Rect]:
    """Where this character's hair and body may paint during the shot."""
    cx, cy, fw = m.cx, m.cy, m.reach
    pad, e = MOTION * fw, _extent(m.design) * fw
    return [
        (cx - e - pad, cy - 1.0 * fw - pad, cx + e + pad, cy + 0.9 * fw + pad),  # head, hair
        (cx - 0.6 * fw - pad, cy + 0.85 * fw - pad, cx + 0.6 * fw + pad, math.inf),  # neck
        (cx - 1.1 * fw - pad, cy + 1.1 * fw - pad, cx + 1.1 * fw + pad, cy + 2.4 * fw),  # arms
        (cx - 1.45 * fw - pad, cy + 2.4 * fw, cx + 1.45 * fw + pad, math.inf),  # rolled body
    ]


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _fits(new: Member, placed: list[Member]) -> bool:
    """Whoever is drawn later must not paint over the other one's face."""
    for old in placed:
        front, back = (new, old) if new.depth > old.depth else (old, new)
        face = _face_rect(back)
        if any(_overlap(c, face) for c in _cover_rects(front)):
            return False
    return True


def _place(rng, d: Design, fw: float, depth: int, placed: list[Member], frame: tuple, bg: bool):
    """Place `d` where every face stays visible and inside the frame; None if it does not fit.

    The camera pans by `pan` pixels over the shot, moving the face by -pan: both ends of that
    path must stay inside the frame.
    """
    w, h, pan = frame
    for attempt in range(PLACE_TRIES):
        if attempt and attempt % 15 == 0:  # crowded: try a smaller (further away) face
            fw = max(MIN_FACE * 1.05, fw * 0.85)
        reach = fw * 1.12
        lo, hi = 0.5 * reach + max(0.0, pan), w - 0.5 * reach + min(0.0, pan)
        if lo >= hi:
            continue
        cx = rng.uniform(lo, hi)
        # far-away people are smaller but keep their heads near the same eye level
        cy = rng.uniform(0.26, 0.44) * h if bg else rng.uniform(0.34, 0.56) * h
        cy = float(np.clip(cy, (0.5 - BOX_OFFSET) * reach + 2, h - (0.5 + BOX_OFFSET) * reach - 2))
        member = Member(d, cx, cy, fw, depth, bg)
        if _fits(member, placed):
            placed.append(member)
            return member
    return None


def _expressions(rng: np.random.Generator, frames: int, talking: bool) -> tuple[list, list]:
    """Per-frame eyes and mouth: occasional blinks, talking mouths, expression changes."""
    eyes = [1.0] * frames
    for t in range(frames):
        if rng.random() < 0.035:
            eyes[t] = 0.0 if rng.random() < 0.5 else 0.5
    mood = "smile" if rng.random() < 0.4 else "closed"
    mouths = []
    for _ in range(frames):
        if talking:
            mouths.append(["open", "closed", "smile", "open"][int(rng.integers(4))])
        else:
            if rng.random() < 0.08:
                mood = "smile" if mood == "closed" else "closed"
            mouths.append(mood)
    return eyes, mouths


def _occluder(rng: np.random.Generator, d: Design) -> Occluder:
    kind = _choice(rng, {"bubble": 0.4, "hand": 0.3, "book": 0.15, "cup": 0.15})
    side = 1 if rng.random() < 0.5 else -1
    if kind == "bubble":  # covers a top corner of the face box
        return Occluder(
            kind, side * rng.uniform(0.78, 0.95), rng.uniform(-0.5, -0.3), rng.uniform(1.0, 1.3)
        )
    if kind == "hand":  # at the chin / over the mouth
        return Occluder(
            kind,
            side * rng.uniform(0.05, 0.3),
            rng.uniform(0.8, 0.95),
            rng.uniform(0.5, 0.6),
            side * rng.uniform(-25, 5),
            d.skin,
        )
    colors = [(60, 60, 180), (170, 110, 50), (70, 150, 70), (230, 230, 230), (40, 160, 220)]
    color = colors[int(rng.integers(len(colors)))]
    return Occluder(
        kind,
        side * rng.uniform(0.0, 0.3),
        rng.uniform(0.95, 1.1),
        rng.uniform(0.6, 0.8),
        0.0,
        color,
    )


def _actor(rng, m: Member, frames: int, h: int, talking: bool, occlude: bool) -> Actor:
    """Motion (drift, zoom, head roll) and expressions of a placed character over a shot."""
    d, cx, cy, fw = m.design, m.cx, m.cy, m.fw
    zoom = rng.uniform(0.9, 1.12)
    angle = float(np.clip(rng.normal(0, 6), -15, 15))
    end_angle = float(np.clip(angle + rng.uniform(-3, 3), -15, 15))
    fw_end = float(np.clip(fw * zoom, MIN_FACE, _max_face(h)))
    start = (cx, cy, fw, angle)
    end = (
        cx + rng.uniform(-0.25, 0.25) * fw,
        cy + rng.uniform(-0.08, 0.08) * fw,
        fw_end,
        end_angle,
    )
    eyes, mouths = _expressions(rng, frames, talking)
    occ = _occluder(rng, d) if occlude else None
    return Actor(d, start, end, eyes, mouths, float(rng.uniform(-1, 1)), occ)


def _max_face(h: int) -> float:
    return min(MAX_FACE, 0.42 * h)


def _face_size(rng: np.random.Generator, w: int, h: int, group: int) -> float:
    # log-uniform so that small faces are as common as big ones; big groups get smaller faces
    # (and in narrow frames, faces small enough for the whole group to fit side by side)
    top = min(_max_face(h) * GROUP_FACE_SCALE[group - 1], w / (1.9 * group))
    return float(math.exp(rng.uniform(math.log(MIN_FACE * 1.1), math.log(top))))


def plan_shot(rng, cast: Casting, extras: Casting, frames: int, w: int, h: int) -> Shot:
    """One shot: background, lighting, degradations and 0-6 characters with their motion."""
    lighting = _choice(rng, LIGHTING)
    pan = float(rng.uniform(PAN[0], PAN[1]) * w * (1 if rng.random() < 0.5 else -1))
    bg = make_background(rng, w + int(abs(pan)) + 2, h)
    if lighting == "night":
        bg = cv2.LUT(bg, NIGHT_SCENERY)
    if rng.random() < P_DEFOCUS:  # shallow depth of field: the scenery is out of focus
        bg = cv2.GaussianBlur(bg, (0, 0), float(rng.uniform(2.5, 6.0)))
    # soft focus / motion blur on the whole frame; beyond sigma ~1.2 small faces become
    # undetectable, so keep it at the hard-but-fair end
    blur = float(rng.uniform(0.7, 1.15)) if rng.random() < P_BLUR else 0.0
    jpeg = int(rng.integers(25, 55)) if rng.random() < P_JPEG else 0
    shot = Shot(frames, bg, pan, lighting, blur, jpeg)
    if rng.random() < P_EMPTY:
        return shot
    group = int(rng.choice(GROUP_SIZES, p=GROUP_WEIGHTS))
    placed: list[Member] = []
    frame = (w, h, pan)
    # the group first (smaller = further away = drawn first), then small background extras
    # squeezed in behind them
    for depth, fw in enumerate(sorted(_face_size(rng, w, h, group) for _ in range(group))):
        names = {m.design.name for m in placed}
        pool = extras if extras.designs and rng.random() < P_EXTRA_SLOT else cast
        d = pool.deal(names)
        if d is not None:
            _place(rng, d, fw, 10 + depth, placed, frame, False)
    # background extras whenever extras are behind their share of screen time
    crowd = int(rng.integers(1, CROWD_MAX + 1)) if extras.behind(EXTRAS_PER_FRAME) else 0
    for depth in range(crowd):
        d = extras.deal({m.design.name for m in placed})
        if d is not None:
            fw = float(rng.uniform(MIN_FACE * 1.05, MIN_FACE * 1.8))
            _place(rng, d, fw, depth, placed, frame, True)
    placed.sort(key=lambda m: m.depth)
    talker = int(rng.integers(len(placed))) if placed else -1
    for i, m in enumerate(placed):
        occlude = not m.background and rng.random() < P_OCCLUDE
        actor = _actor(rng, m, frames, h, i == talker, occlude)
        if actor.occluder and any(_overlap(_occluder_rect(m, actor.occluder), _face_rect(o))
                                  for o in placed if o is not m):  # fmt: skip
            actor.occluder = None  # it would hide someone else's face
        shot.actors.append(actor)
    return shot


def _occluder_rect(m: Member, occ: Occluder) -> Rect:
    """Where an occluder held by `m` may be during the shot (generous)."""
    fw = m.reach
    x, y, size = m.cx + occ.dx * fw, m.cy + occ.dy * fw, occ.size * fw
    half_w, half_h = (0.55 * size, 0.4 * size) if occ.kind == "bubble" else (0.6 * size, 0.9 * size)
    if occ.kind == "bubble":  # its tail reaches towards the speaker's face
        x0, x1 = min(x - half_w, m.cx), max(x + half_w, m.cx)
    else:
        x0, x1 = x - half_w, x + half_w
    pad = MOTION * fw
    return (x0 - pad, y - half_h - pad, x1 + pad, y + half_h + pad)


def plan_video(
    rng: np.random.Generator, cast: Casting, extras: Casting, frames: int, fps: int, w: int, h: int
) -> Iterator[Shot]:
    """The shots (about 1-2 s each) of one video, planned lazily: a shot holds its backdrop.

    `cast` and `extras` keep their screen-time counts from one video to the next, so that
    every character (every extra too) gets its share of the whole show.
    """
    done = 0
    while done < frames:
        n = min(frames - done, max(1, round(rng.uniform(1.0, 2.0) * fps)))
        shot = plan_shot(rng, cast, extras, n, w, h)
        cast.credit(shot)
        extras.credit(shot)
        done += n
        yield shot


# ---------------------------------------------------------------- backgrounds and effects


def _gradient(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    col = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.ascontiguousarray(np.broadcast_to(col.astype(np.uint8), (h, w, 3)))


def make_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A simple anime-ish backdrop: sky, room, classroom, street or an abstract pattern."""
    kind = _choice(
        rng, {"sky": 0.25, "room": 0.25, "classroom": 0.2, "street": 0.15, "abstract": 0.15}
    )
    jitter = rng.integers(-20, 21, 3)

    def col(c) -> tuple:
        return tuple(int(v) for v in np.clip(np.array(c) + jitter, 0, 255))

    if kind == "sky":
        img = _gradient(h, w, col((200, 140, 60)), col((250, 225, 200)))
        for _ in range(int(rng.integers(2, 6))):
            cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0, 0.6 * h))
            for k in range(3):
                r = int(rng.uniform(0.04, 0.09) * h)
                cv2.circle(
                    img, (cx + k * r, cy + (k % 2) * r // 3), r, (250, 250, 250), -1, cv2.LINE_AA
                )
        cv2.rectangle(img, (0, int(0.82 * h)), (w, h), col((90, 160, 90)), -1)
    elif kind in ("room", "classroom"):
        wall = col((170, 200, 225) if kind == "room" else (190, 210, 200))
        img = _gradient(h, w, wall, shade(wall, 0.8))
        cv2.rectangle(img, (0, int(0.75 * h)), (w, h), col((80, 120, 160)), -1)
        if kind == "classroom":
            cv2.rectangle(
                img,
                (int(0.1 * w), int(0.12 * h)),
                (int(0.7 * w), int(0.5 * h)),
                col((70, 90, 50)),
                -1,
            )
            cv2.rectangle(
                img, (int(0.1 * w), int(0.12 * h)), (int(0.7 * w), int(0.5 * h)), (60, 70, 90), 6
            )
        x0 = int(rng.uniform(0.55, 0.75) * w)
        cv2.rectangle(
            img, (x0, int(0.1 * h)), (x0 + int(0.22 * w), int(0.55 * h)), col((235, 200, 150)), -1
        )
        cv2.rectangle(
            img, (x0, int(0.1 * h)), (x0 + int(0.22 * w), int(0.55 * h)), (240, 240, 240), 8
        )
        cv2.line(
            img,
            (x0 + int(0.11 * w), int(0.1 * h)),
            (x0 + int(0.11 * w), int(0.55 * h)),
            (240, 240, 240),
            6,
        )
    elif kind == "street":
        img = _gradient(h, w, col((210, 170, 120)), col((240, 220, 210)))
        x = 0
        while x < w:
            bw, bh = int(rng.uniform(0.08, 0.2) * w), int(rng.uniform(0.3, 0.75) * h)
            c = col(tuple(int(v) for v in rng.integers(110, 200, 3)))
            cv2.rectangle(img, (x, h - bh), (x + bw, h), c, -1)
            for wy in range(h - bh + 20, h - 20, 40):
                for wx in range(x + 10, x + bw - 20, 30):
                    cv2.rectangle(img, (wx, wy), (wx + 14, wy + 20), shade(c, 1.2, 30), -1)
            x += bw + int(rng.uniform(0, 0.03) * w)
        cv2.rectangle(img, (0, int(0.88 * h)), (w, h), (110, 110, 110), -1)
    else:
        img = _gradient(h, w, col((200, 170, 230)), col((120, 200, 240)))
        for _ in range(int(rng.integers(4, 10))):
            c = col(tuple(int(v) for v in rng.integers(120, 256, 3)))
            center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            cv2.circle(img, center, int(rng.uniform(0.05, 0.25) * h), c, -1, cv2.LINE_AA)
    return img


def _table(gamma: float, gains: tuple, offsets: tuple) -> np.ndarray:
    """Per-channel (B, G, R) look-up table: 255 * gain * (x / 255) ** gamma + offset."""
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = [np.clip(255.0 * g * x**gamma + o, 0, 255) for g, o in zip(gains, offsets, strict=True)]
    return np.stack(lut, axis=1).astype(np.uint8).reshape(256, 1, 3)


LIGHT_TABLES = {
    "day": _table(1.0, (1.0, 1.0, 1.0), (0, 0, 0)),
    "sunset": _table(1.0, (0.7, 0.82, 1.0), (0, 8, 25)),
    # night: a strong gamma keeps lit faces readable while mid tones and shadows go dark blue
    "night": _table(1.8, (1.0, 0.85, 0.78), (8, 0, 0)),
}
# at night the unlit scenery behind the characters is darkened once more
NIGHT_SCENERY = _table(1.0, (0.55, 0.42, 0.36), (12, 4, 0))


# ---------------------------------------------------------------- rendering


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


# ---------------------------------------------------------------- cast sheet and entry point


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


def _frames(s: Settings) -> int:
    return max(1, round(s.seconds * s.fps))


def plan_show(s: Settings) -> Iterator[tuple[str, Iterator[Shot]]]:
    """(video stem, its shots) for every video, in order.

    Consume each video's shots before asking for the next video: screen-time counts carry
    over from one video to the next. Each video and each cast pool has its own random stream.
    """

    def rng(*stream: int) -> np.random.Generator:
        return np.random.default_rng([s.seed, *stream])

    cast = Casting(named_cast(s.characters), rng(11))
    extras = Casting(random_extras(s.seed, s.extras), rng(12))
    for i in range(s.episodes):
        shots = plan_video(rng(7, i), cast, extras, _frames(s), s.fps, s.width, s.height)
        yield f"ep{i + 1:02d}", shots
    others, nobody = Casting(other_show_cast(), rng(13)), Casting([], rng(14))
    for i in range(s.other_show_episodes):
        shots = plan_video(rng(8, i), others, nobody, _frames(s), s.fps, s.width, s.height)
        yield f"othershow{i + 1:02d}", shots


def render_demo(params: dict, out_dir: Path) -> dict:
    """Render the demo show described by the `make_demo` params into `out_dir` (atomically)."""
    s = settings_from(params)
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
        write_json(
            tmp / "cast.json",
            {"box_offset": BOX_OFFSET, "characters": characters, "settings": asdict(s)},
        )
        sheet = cast_sheet([("named cast", cast), ("extras", extras[:8]), ("other show", others)])
        cv2.imwrite(str(tmp / "cast.png"), sheet)
    roles = Counter()
    for (role, _), n in counts.items():
        roles[role] += n
    return {
        "videos": s.episodes + s.other_show_episodes,
        "frames_per_video": _frames(s),
        "faces": dict(sorted(roles.items())),
        "per_character": {name: n for (role, name), n in sorted(counts.items()) if role != "extra"},
    }
