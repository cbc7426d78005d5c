"""Scenery of the demo show: backdrops (sky, room, classroom, street, abstract) and the lighting
look-up tables (day, sunset, night) applied to whole frames."""

from __future__ import annotations

import cv2
import numpy as np

from charaid.demo.draw import shade


def weighted_choice(rng: np.random.Generator, weights: dict) -> str:
    """One key of `weights`, drawn with probability proportional to its weight."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _gradient(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    col = (1 - t) * np.array(top, np.float32) + t * np.array(bottom, np.float32)
    return np.ascontiguousarray(np.broadcast_to(col.astype(np.uint8), (h, w, 3)))


def make_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A simple anime-ish backdrop: sky, room, classroom, street or an abstract pattern."""
    kind = weighted_choice(
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
