"""The seeded plan of the demo show: which characters appear in which shot, where they stand and
how they move, each shot's backdrop, lighting and degradations.

`plan_show(params)` yields every video's shots lazily; `charaid.demo.render` draws them, and
`charaid.detect_eval.demo_lighting` replays them for the lighting of each frame. Every random
draw comes from numpy Generators seeded from `make_demo.seed`, in a fixed order: the same
params give the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from charaid.config import MakeDemoParams
from charaid.demo.cast import Design, named_cast, other_show_cast, random_extras
from charaid.demo.draw import BOX_OFFSET
from charaid.demo.scenery import NIGHT_SCENERY, make_background, weighted_choice

# Shot composition. Tuned so that params.yaml's settings give ~180 faces per named character,
# extras a bit more often than one named character and a few hundred other-show faces.
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


def frames_per_video(s: MakeDemoParams) -> int:
    """Frames of each demo video: `seconds` at `fps`, at least one."""
    return max(1, round(s.seconds * s.fps))


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
    kind = weighted_choice(rng, {"bubble": 0.4, "hand": 0.3, "book": 0.15, "cup": 0.15})
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
    lighting = weighted_choice(rng, LIGHTING)
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


def plan_show(s: MakeDemoParams) -> Iterator[tuple[str, Iterator[Shot]]]:
    """(video stem, its shots) for every video, in order.

    Consume each video's shots before asking for the next video: screen-time counts carry
    over from one video to the next. Each video and each cast pool has its own random stream.
    """

    def rng(*stream: int) -> np.random.Generator:
        return np.random.default_rng([s.seed, *stream])

    frames = frames_per_video(s)
    cast = Casting(named_cast(s.characters), rng(11))
    extras = Casting(random_extras(s.seed, s.extras), rng(12))
    for i in range(s.episodes):
        shots = plan_video(rng(7, i), cast, extras, frames, s.fps, s.width, s.height)
        yield f"ep{i + 1:02d}", shots
    others, nobody = Casting(other_show_cast(), rng(13)), Casting([], rng(14))
    for i in range(s.other_show_episodes):
        shots = plan_video(rng(8, i), others, nobody, frames, s.fps, s.width, s.height)
        yield f"othershow{i + 1:02d}", shots
