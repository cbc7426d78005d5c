"""Draw one anime-style character (hair, head, neck, shoulders) with OpenCV primitives.

All shapes are defined in *face units*: the origin is the centre of the face shape (the skin
area from forehead to chin), x to the right, y down, and 1.0 is the face-shape width `fw`.
The face shape spans x in [-0.5, 0.5] and y in [-0.65, 0.65]. A `Pen` maps face units to
pixels (position, scale, rotation) so that every part stays consistent when a character moves.

What makes anime-face detectors fire (measured on the animeface and LBP-cascade detectors):
large dark eyes with an iris colour and a white highlight, a pointed chin, dark line art and a
fringe of bangs framing the face. The drawing keeps those strong at every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from charaid.demo.cast import BGR, Design

SHIFT = 4  # sub-pixel bits for cv2 drawing, so slow motion is smooth
ONE = 1 << SHIFT
BOX_OFFSET = 0.23  # canonical face box centre lies this many face widths below the shape centre
# Face proportions, tuned so that animeface returns a box of side ~0.98 fw and the LBP cascade
# ~1.35 fw, both centred ~0.23 fw below the shape centre (the canonical box convention).
FACE_HH = 0.65  # half height of the face shape
EYE_X, EYE_Y = 0.215, 0.1  # right eye centre
BROW_Y, NOSE_Y, MOUTH_Y = -0.13, 0.335, 0.49


@dataclass(frozen=True)
class Pose:
    """Where and how a character is drawn in one frame."""

    cx: float  # face-shape centre, pixels
    cy: float
    fw: float  # face-shape width, pixels
    angle: float = 0.0  # head roll, degrees (positive = clockwise on screen)
    eyes_open: float = 1.0  # 1 open, 0.5 half closed, 0 closed (blink)
    mouth: str = "closed"  # closed | smile | open
    gaze: float = 0.0  # iris shift, -1 (left) .. 1 (right)


@dataclass(frozen=True)
class FaceGeometry:
    """The drawn face: shape centre, width and the canonical face box."""

    cx: float
    cy: float
    fw: float

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Canonical box (x, y, w, h): side fw, centred BOX_OFFSET*fw below the shape centre."""
        side = round(self.fw)
        x = round(self.cx - self.fw / 2)
        y = round(self.cy + BOX_OFFSET * self.fw - self.fw / 2)
        return x, y, side, side


def shade(color: BGR, factor: float, add: float = 0.0) -> BGR:
    """Scale a colour (darker < 1 < lighter) and clip to 0..255."""
    return tuple(int(min(255, max(0, c * factor + add))) for c in color)  # type: ignore[return-value]


def ellipse(cx: float, cy: float, ax: float, ay: float, t0=0.0, t1=360.0, n=28) -> np.ndarray:
    """Points on an ellipse arc from angle t0 to t1 (degrees, y down)."""
    t = np.radians(np.linspace(t0, t1, n))
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def bezier(p0, p1, p2, p3, n: int = 10) -> np.ndarray:
    """Cubic Bezier curve through control points, as n points."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = [np.asarray(p, dtype=float) for p in (p0, p1, p2, p3)]
    return (
        (1 - t) ** 3 * pts[0]
        + 3 * (1 - t) ** 2 * t * pts[1]
        + 3 * (1 - t) * t**2 * pts[2]
        + t**3 * pts[3]
    )


def mirror(pts) -> np.ndarray:
    """Mirror face-unit points left/right and reverse them (keeps polygon orientation)."""
    return (np.asarray(pts, dtype=float) * [-1.0, 1.0])[::-1]


class Pen:
    """Draws face-unit shapes onto a BGR image at one pose."""

    def __init__(self, img: np.ndarray, cx: float, cy: float, fw: float, angle: float, line=1.0):
        a = math.radians(angle)
        self.img = img
        self.fw = fw
        self.line_scale = line
        self.m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * fw
        self.t = np.array([cx, cy])
        self.pivot = np.zeros(2)

    def turned(self, pivot: tuple[float, float], angle: float) -> Pen:
        """A pen for the same figure whose parts below `pivot` are rolled by `angle` only."""
        x, y = self.to_image(pivot)
        pen = Pen(self.img, x, y, self.fw, angle, self.line_scale)
        pen.pivot = np.asarray(pivot, dtype=float)
        return pen

    def to_image(self, pt) -> tuple[float, float]:
        x, y = (np.asarray(pt, dtype=float) - self.pivot) @ self.m.T + self.t
        return float(x), float(y)

    def px(self, pts) -> np.ndarray:
        """Face units -> fixed-point pixel coordinates."""
        p = (np.asarray(pts, dtype=float).reshape(-1, 2) - self.pivot) @ self.m.T + self.t
        return np.round(p * ONE).astype(np.int32)

    def width(self, w: float) -> int:
        """Line thickness in pixels for a face-unit width, rounded up: small faces keep bold
        line art, which is what lets detectors find them through blur and darkness."""
        return max(1, round(w * self.fw * self.line_scale + 0.5))

    def fill(self, pts, color: BGR, outline: BGR | None = None, w: float = 0.02) -> None:
        p = self.px(pts)
        cv2.fillPoly(self.img, [p], color, cv2.LINE_AA, SHIFT)
        if outline is not None:
            cv2.polylines(self.img, [p], True, outline, self.width(w), cv2.LINE_AA, SHIFT)

    def stroke(self, pts, color: BGR, w: float = 0.02, closed: bool = False) -> None:
        p = self.px(pts)
        cv2.polylines(self.img, [p], closed, color, self.width(w), cv2.LINE_AA, SHIFT)


# ---------------------------------------------------------------- shapes in face units


def face_outline(chin: float) -> np.ndarray:
    """Skin shape: round forehead and cheeks, tapering to a chin (0 round .. 1 pointed)."""
    h, round_jaw = FACE_HH, 1.0 - chin
    upper = ellipse(0.0, 0.0, 0.5, h, 180, 360, 24)
    jaw = (0.12 + 0.3 * round_jaw, h * (0.87 + 0.09 * round_jaw))
    right = bezier((0.5, 0.0), (0.5, 0.47 * h), jaw, (0.0, h), 12)
    return np.concatenate([upper, right[1:], mirror(right)[1:-1]])


SKULL = (0.0, -0.1, 0.63, 0.68)  # centre x, y and half axes of the top of the head


def fringe(bangs: str) -> np.ndarray:
    """Zig-zag lower edge of the bangs, from the right temple to the left one."""
    if bangs == "parted":
        half = [(0.44, -0.16), (0.37, -0.04), (0.3, -0.26), (0.22, -0.07), (0.14, -0.3),
                (0.07, -0.13), (0.0, -0.5)]  # fmt: skip
        return np.concatenate([half, mirror(half)[1:]])
    if bangs == "swept":
        return np.array([(0.44, -0.16), (0.4, -0.01), (0.3, -0.24), (0.2, -0.04), (0.08, -0.28),
                         (-0.04, -0.1), (-0.14, -0.33), (-0.24, -0.18), (-0.32, -0.38),
                         (-0.4, -0.26), (-0.44, -0.36)])  # fmt: skip
    if bangs == "spiky":
        return np.array([(0.44, -0.16), (0.36, -0.03), (0.26, -0.32), (0.15, 0.0), (0.05, -0.34),
                         (-0.05, -0.08), (-0.15, -0.34), (-0.25, -0.02), (-0.33, -0.3),
                         (-0.39, -0.07), (-0.44, -0.2)])  # fmt: skip
    # straight (hime cut): level tips with shallow notches
    xs = np.linspace(0.44, -0.44, 15)
    ys = np.where(np.arange(15) % 2 == 1, -0.07, -0.2)
    ys[0] = ys[-1] = -0.16
    return np.stack([xs, ys], axis=1)


def curved(zigzag: np.ndarray, n: int = 5) -> np.ndarray:
    """Bend each straight zig-zag edge into a concave curve: pointed, brush-like hair strands."""
    out = [zigzag[:1]]
    for a, b in zip(zigzag[:-1], zigzag[1:], strict=True):
        hi, lo = (a, b) if a[1] < b[1] else (b, a)  # notch (higher) and tip (lower)
        control = (0.65 * lo[0] + 0.35 * hi[0], 0.7 * hi[1] + 0.3 * lo[1])
        seg = bezier(a, (a + 2 * np.asarray(control)) / 3, (b + 2 * np.asarray(control)) / 3, b, n)
        out.append(seg[1:])
    return np.concatenate(out)


LOCK_LENGTH = {
    "long": 0.55,
    "bob": 0.5,
    "twintails": 0.42,
    "ponytail": 0.38,
    "short": 0.22,
    "spiky": 0.16,
}


def front_hair(design: Design) -> np.ndarray:
    """Bangs + side locks + crown, one polygon (drawn over the face)."""
    tip = LOCK_LENGTH.get(design.hair_style, 0.4)
    right_lock = [(0.63, -0.1), (0.61, 0.15), (0.54, tip), (0.43, 0.12), (0.44, -0.16)]
    crown = ellipse(*SKULL, 180, 360, 30)
    edge = curved(fringe(design.bangs))
    return np.concatenate([right_lock[:-1], edge, mirror(right_lock)[1:], crown[1:-1]])


def back_hair(style: str) -> np.ndarray:
    """Hair behind the head (and behind the body for long styles)."""
    top = ellipse(0.0, -0.1, 0.68, 0.72, 180, 360, 30)
    if style == "long":
        right = [(0.74, 0.6), (0.8, 1.35), (0.62, 1.45), (0.45, 1.33), (0.25, 1.42), (0.0, 1.3)]
    elif style == "bob":
        right = [(0.74, 0.25), (0.7, 0.55), (0.55, 0.62), (0.3, 0.58), (0.0, 0.6)]
    elif style == "spiky":
        t = np.radians(np.linspace(180, 360, 15))
        r = np.where(np.arange(15) % 2 == 1, 1.16, 1.0)
        spikes = np.stack([0.68 * r * np.cos(t), -0.1 + 0.72 * r * np.sin(t)], axis=1)
        return np.concatenate([spikes, [(0.6, 0.1), (-0.6, 0.1)]])
    else:  # short, twintails, ponytail: hair ends just below the ears
        right = [(0.7, 0.15), (0.6, 0.3), (0.0, 0.3)]
    right = np.asarray(right, dtype=float)
    return np.concatenate([top, right, mirror(right)[1:]])


TWIN_TAIL = np.array([(0.58, -0.5), (0.85, -0.4), (1.06, 0.05), (1.08, 0.7), (0.98, 1.3),
                      (0.86, 1.65), (0.8, 1.15), (0.78, 0.55), (0.7, 0.0),
                      (0.56, -0.3)])  # fmt: skip
PONY_TAIL = np.array([(0.25, -0.78), (0.7, -0.65), (0.98, -0.15), (1.02, 0.5), (0.86, 1.15),
                      (0.76, 0.55), (0.7, 0.05), (0.52, -0.42)])  # fmt: skip
LONG_LOCK = np.array([(0.5, 0.3), (0.63, 0.5), (0.72, 1.0), (0.68, 1.45), (0.58, 1.1),
                      (0.5, 0.7), (0.44, 0.45)])  # fmt: skip
TORSO = np.array([(0.14, 0.88), (0.55, 1.0), (0.86, 1.13), (1.0, 1.43), (1.12, 2.4), (1.2, 12.0)])
RIBBON_WING = np.array([(0.0, 0.0), (0.22, -0.14), (0.2, 0.1)])
NECK = np.array([(-0.13, 0.3), (-0.14, 1.03), (0.14, 1.03), (0.13, 0.3)])
# the torso runs far down so that bodies always reach the bottom of the frame


# ---------------------------------------------------------------- drawing parts


def draw_body(head: Pen, pen: Pen, d: Design, line: BGR) -> None:
    """Neck (turns with the head) and torso (pen: turns much less)."""
    head.fill(NECK, d.skin)
    head.stroke(NECK[:2], line, 0.015)
    head.stroke(NECK[2:], line, 0.015)
    neck_shadow = [(-0.14, 0.4), (0.14, 0.4), (0.14, 0.62), (0.0, 0.78), (-0.14, 0.62)]
    head.fill(neck_shadow, shade(d.skin, 0.82))
    torso = np.concatenate([mirror(TORSO), TORSO])
    pen.fill(torso, d.outfit, line, 0.02)
    for side in (1, -1):  # arms hanging along the sides
        pen.stroke([(0.8 * side, 1.7), (0.86 * side, 12.0)], shade(d.outfit, 0.6), 0.02)
    # sailor-style collar with a V neck and a tie: a cheap, readable uniform
    collar = np.array([(-0.14, 0.82), (-0.62, 0.95), (-0.34, 1.2), (0.0, 1.3), (0.34, 1.2),
                       (0.62, 0.95), (0.14, 0.82), (0.0, 1.08)]) + [0.0, 0.08]  # fmt: skip
    pen.fill(collar, shade(d.outfit, 0.6, 150), line, 0.012)
    pen.fill([(-0.13, 0.92), (0.13, 0.92), (0.0, 1.14)], d.skin)
    bow = np.array([(0.0, 1.14), (-0.14, 1.06), (-0.14, 1.24), (0.0, 1.16), (0.14, 1.24),
                    (0.14, 1.06)]) + [0.0, 0.08]  # fmt: skip
    pen.fill(bow, (60, 60, 200), line, 0.01)  # one school tie colour: no clue to who is who


def draw_back(pen: Pen, d: Design, line: BGR) -> None:
    """Hair behind the head (and a ponytail behind that)."""
    if d.hair_style == "ponytail":
        pen.fill(PONY_TAIL, d.hair, line, 0.022)
    pen.fill(back_hair(d.hair_style), shade(d.hair, 0.8), line, 0.022)


def draw_tails(pen: Pen, d: Design, line: BGR) -> None:
    """Hair in front of the shoulders: twin tails, long locks, hair ties."""
    if d.hair_style == "twintails":
        for tail in (TWIN_TAIL, mirror(TWIN_TAIL)):
            pen.fill(tail, d.hair, line, 0.022)
        tie = d.accessory_color if d.accessory == "ribbon" else shade(d.hair, 0.4)
        for s in (1, -1):
            pen.fill(ellipse(0.6 * s, -0.45, 0.07, 0.09), tie, line, 0.012)
    elif d.hair_style == "long":
        for lock in (LONG_LOCK, mirror(LONG_LOCK)):
            pen.fill(lock, d.hair, line, 0.02)
    elif d.hair_style == "ponytail":
        pen.fill(ellipse(0.55, -0.62, 0.07, 0.06), shade(d.hair, 0.4), line, 0.01)


def draw_face(pen: Pen, d: Design, line: BGR) -> None:
    """Skin with a dark outline (and the fringe's shadow on the forehead)."""
    outline = face_outline(d.style.chin)
    pen.fill(outline, d.skin, line, 0.022)
    if d.style.shading:
        # shadow under the fringe: the same zig-zag moved down, closed above
        edge = fringe(d.bangs)[1:-1] + [0.0, 0.05]
        pen.fill(np.concatenate([edge, [(-0.42, -0.45), (0.42, -0.45)]]), shade(d.skin, 0.86))


def draw_eye(pen: Pen, d: Design, side: int, p: Pose) -> None:
    """One eye; side = +1 for the eye on the right of the image. Shapes are for the right eye."""
    k, st = d.style.eye_scale, d.style
    ex, ey = EYE_X * side, EYE_Y
    tilt = st.eye_tilt

    def place(pts) -> np.ndarray:
        pts = np.asarray(pts, dtype=float) * k
        if side < 0:
            pts = pts * [-1.0, 1.0]
        return pts + [ex, ey]

    lash_top = [(-0.125, -0.02), (-0.085, -0.105), (0.0, -0.135), (0.08, -0.12),
                (0.14, -0.065 - tilt), (0.175, -0.035 - tilt)]  # fmt: skip
    lash_bottom = [(0.13, -0.045 - tilt), (0.07, -0.095), (0.0, -0.105), (-0.08, -0.082),
                   (-0.115, -0.01)]  # fmt: skip
    lower = [(-0.115, -0.01), (-0.07, 0.1), (0.0, 0.128), (0.07, 0.11), (0.13, -0.045 - tilt)]
    line = st.line_color
    if p.eyes_open < 0.25:  # closed: a thick curved lid line
        pen.stroke(place([(-0.12, 0.02), (-0.05, 0.065), (0.05, 0.07), (0.15, 0.01)]), line, 0.035)
        return
    pen.fill(place(lash_bottom + lower[1:-1]), (250, 246, 246))
    g = p.gaze * 0.025
    iris = d.eyes
    pen.fill(place(ellipse(g, 0.015, 0.083, 0.113)), shade(iris, 0.8), line, 0.012)
    pen.fill(place(ellipse(g, 0.015, 0.083, 0.113, 180, 360, 16)), shade(iris, 0.45))
    pen.fill(place(ellipse(g, 0.07, 0.052, 0.038)), shade(iris, 1.15, 40))
    pen.fill(place(ellipse(g, 0.025, 0.036, 0.056)), shade(line, 1.0))
    pen.fill(place(ellipse(g - 0.03, -0.035, 0.03, 0.03, n=12)), (255, 255, 255))
    if st.highlights > 1:
        pen.fill(place(ellipse(g + 0.035, 0.07, 0.015, 0.015, n=10)), (255, 255, 255))
    if p.eyes_open < 0.75:  # half-closed lid: skin over the top of the eye, lash moved down
        drop = [0.0, 0.06]
        lid = np.concatenate([np.asarray(lash_top), np.asarray(lash_bottom[::-1]) + drop])
        pen.fill(place(lid[::-1]), d.skin)
        lash_top = [(x, y + 0.06) for x, y in lash_top]
        lash_bottom = [(x, y + 0.06) for x, y in lash_bottom]
    pen.fill(place(lash_top + lash_bottom), line)
    pen.stroke(place([(0.0, 0.128), (0.07, 0.11), (0.11, 0.04)]), line, 0.012)


def draw_features(pen: Pen, d: Design, p: Pose) -> None:
    """Brows, eyes, nose and mouth for the pose's expression."""
    line = d.style.line_color
    brow, brow_pts = shade(d.hair, 0.5), np.array([(0.1, 0.0), (0.22, -0.03), (0.34, 0.0)])
    for side in (1, -1):
        pen.stroke(brow_pts * [side, 1] + [0, BROW_Y], brow, 0.018)
        draw_eye(pen, d, side, p)
    pen.stroke([(0.015, NOSE_Y), (0.0, NOSE_Y + 0.025)], shade(d.skin, 0.6), 0.014)
    y = MOUTH_Y
    mouth_line = shade(d.skin, 0.35)
    if p.mouth == "open":
        lips = np.concatenate([[(-0.075, y - 0.02)], ellipse(0, y - 0.02, 0.075, 0.08, 0, 180)])
        pen.fill(lips, (70, 60, 160), line, 0.012)
        pen.fill(ellipse(0.0, y + 0.035, 0.04, 0.022, n=12), (140, 140, 235))
    elif p.mouth == "smile":
        curve = bezier((-0.085, y - 0.02), (-0.03, y + 0.03), (0.03, y + 0.03), (0.085, y - 0.02))
        pen.stroke(curve, mouth_line, 0.016)
    else:
        pen.stroke([(-0.055, y), (0.0, y + 0.01), (0.055, y)], mouth_line, 0.014)


def draw_front_hair(pen: Pen, d: Design, line: BGR) -> None:
    """Bangs and side locks over the face: what frames a face for the detectors."""
    pen.fill(front_hair(d), d.hair, line, 0.022)
    # "angel ring" highlight and a few strand lines give the hair some volume
    ring = np.concatenate(
        [ellipse(0, -0.1, 0.55, 0.6, 205, 335, 14), ellipse(0, -0.08, 0.5, 0.5, 335, 205, 14)]
    )
    pen.fill(ring, shade(d.hair, 1.15, 45))
    strand = shade(d.hair, 0.6)
    for x in (-0.25, 0.0, 0.25):
        pen.stroke([(x * 0.6, -0.62), (x, -0.35)], strand, 0.012)


def draw_accessory(pen: Pen, d: Design, line: BGR) -> None:
    """The one accessory that tells a look-alike pair apart."""
    kind, color = d.accessory, d.accessory_color
    if kind == "ribbon" and d.hair_style != "twintails":  # twin tails wear it at the ties
        knot = (0.46, -0.62)
        for wing in (RIBBON_WING, RIBBON_WING * [-1.0, 1.0] + [0.02, -0.04]):
            pen.fill(wing + knot, color, line, 0.014)
        pen.fill(ellipse(*knot, 0.05, 0.05, n=12), shade(color, 0.8), line, 0.01)
    elif kind == "hairclip":
        for dy in (0.0, 0.07):
            bar = np.array([(-0.4, -0.3), (-0.2, -0.4), (-0.19, -0.37), (-0.39, -0.27)]) + [0, dy]
            pen.fill(bar, color, line, 0.01)
    elif kind == "glasses":  # thin frames: thick ones hide the eyes from the detectors
        for side in (1, -1):
            frame = ellipse(EYE_X * side, EYE_Y, 0.16, 0.13, n=24)
            pen.stroke(frame, color, 0.01, closed=True)
            pen.stroke([(0.375 * side, 0.08), (0.5 * side, 0.05)], color, 0.01)
        pen.stroke([(-0.06, 0.06), (0.06, 0.06)], color, 0.01)
    elif kind == "headband":
        band = np.concatenate(
            [
                ellipse(0, -0.06, 0.645, 0.66, 190, 350, 18),
                ellipse(0, -0.05, 0.61, 0.56, 350, 190, 18),
            ]
        )
        pen.fill(band, color, line, 0.012)
    elif kind == "ahoge":
        strand = [(-0.02, -0.76), (0.06, -0.98), (0.24, -1.02), (0.1, -0.94), (0.06, -0.77)]
        pen.fill(strand, d.hair, line, 0.014)


def draw_character(img: np.ndarray, design: Design, pose: Pose) -> FaceGeometry:
    """Draw `design` in `pose` onto `img` (BGR, in place); return where its face is."""
    st = design.style
    pen = Pen(img, pose.cx, pose.cy, pose.fw, pose.angle, st.line)
    line = st.line_color
    draw_back(pen, design, line)
    draw_body(pen, pen.turned((0.0, 0.95), 0.25 * pose.angle), design, line)
    draw_tails(pen, design, line)
    draw_face(pen, design, line)
    draw_features(pen, design, pose)
    draw_front_hair(pen, design, line)
    draw_accessory(pen, design, line)
    return FaceGeometry(pose.cx, pose.cy, pose.fw)


# ---------------------------------------------------------------- occluders


def draw_bubble(img: np.ndarray, x: float, y: float, w: float, h: float, tail: tuple) -> None:
    """Speech bubble centred at (x, y) with a tail pointing at `tail`, with scribbled text."""
    pen = Pen(img, x, y, 1.0, 0.0)
    body = ellipse(0, 0, w / 2, h / 2, n=40)
    tx, ty = tail[0] - x, tail[1] - y
    base = np.array([tx, ty]) / max(1e-6, math.hypot(tx, ty))
    normal = np.array([-base[1], base[0]]) * w * 0.08
    root = base * min(w, h) * 0.4
    pen.fill([root + normal, (tx, ty), root - normal], (255, 255, 255), (20, 20, 20), 2.0)
    pen.fill(body, (255, 255, 255), (20, 20, 20), 2.0)
    rows = max(1, int(h / 22))
    for r in range(rows):
        yy = -h * 0.25 + (r + 0.5) * (h * 0.5 / rows)
        half = w * 0.32 * math.sqrt(max(0.0, 1 - (2 * yy / h) ** 2))
        for i, x0 in enumerate(np.arange(-half, half, max(6.0, w / 9))):
            x1 = min(half, x0 + max(4.0, w / 12) * (0.6 + 0.4 * ((r + i) % 3) / 2))
            pen.stroke([(x0, yy), (x1, yy)], (40, 40, 40), 2.0)


def draw_hand(img: np.ndarray, x: float, y: float, size: float, angle: float, skin: BGR) -> None:
    """A raised hand (palm + four fingers), e.g. in front of a chin or mouth."""
    pen = Pen(img, x, y, size, angle)
    line = (40, 30, 35)
    for i, fx in enumerate((-0.3, -0.1, 0.1, 0.3)):
        length = (0.55, 0.68, 0.64, 0.5)[i]
        finger = np.concatenate(
            [ellipse(fx, -length, 0.09, 0.1, 180, 360, 8), [(fx + 0.09, -0.1), (fx - 0.09, -0.1)]]
        )
        pen.fill(finger, skin, line, 0.025)
    pen.fill(ellipse(0, 0.05, 0.42, 0.3), skin, line, 0.025)
    pen.fill([(-0.25, 0.25), (0.25, 0.25), (0.22, 0.8), (-0.22, 0.8)], skin, line, 0.025)


def draw_prop(img: np.ndarray, x: float, y: float, size: float, kind: str, color: BGR) -> None:
    """A held object: 'book' (tilted rectangle) or 'cup' (mug with a handle)."""
    pen = Pen(img, x, y, size, -12.0 if kind == "book" else 0.0)
    line = (30, 30, 30)
    if kind == "book":
        pen.fill([(-0.5, -0.35), (0.5, -0.35), (0.5, 0.35), (-0.5, 0.35)], color, line, 0.03)
        pen.stroke([(0.0, -0.35), (0.0, 0.35)], shade(color, 0.5), 0.03)
    else:
        pen.fill(ellipse(0.32, 0.0, 0.16, 0.18), color, line, 0.03)
        pen.fill([(-0.3, -0.35), (0.3, -0.35), (0.26, 0.4), (-0.26, 0.4)], color, line, 0.03)
        pen.fill(ellipse(0, -0.35, 0.3, 0.07), shade(color, 0.5), line, 0.02)
