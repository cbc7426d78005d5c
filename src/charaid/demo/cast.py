"""Character designs of the synthetic demo show (and of a second, unrelated show).

The named cast is built to be hard for a classifier: it comes in look-alike pairs that share
skin, hair, eye and uniform colours and differ only in hair style or an accessory, so colour
alone cannot tell them apart. The extras (the "other" class) are random people whose colours
often come close to the named cast's. The second show ("othershow") is drawn in a slightly
different style; it exists only to check that another show's faces are not taken for our cast.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TypeVar

import numpy as np

BGR = tuple[int, int, int]
T = TypeVar("T")

HAIR_STYLES = ("long", "bob", "twintails", "ponytail", "short", "spiky")
BANGS = ("straight", "parted", "swept", "spiky")
ACCESSORIES = ("none", "ribbon", "hairclip", "glasses", "headband", "ahoge")


@dataclass(frozen=True)
class DrawStyle:
    """Per-show drawing conventions (line weight, eye size and shape, shading)."""

    line: float = 1.0  # line-art thickness multiplier
    eye_scale: float = 1.0  # eye size multiplier
    eye_tilt: float = 0.0  # outer eye corners raised (>0) for a sharper look
    chin: float = 0.5  # 0 = round jaw, 1 = very pointed chin
    shading: bool = True  # cel shadows under the bangs and the chin
    highlights: int = 2  # white highlights per eye
    line_color: BGR = (40, 30, 35)


@dataclass(frozen=True)
class Design:
    """Everything needed to draw one character the same way in every frame."""

    name: str
    role: str  # "cast", "extra" or "othershow"
    skin: BGR
    hair: BGR
    eyes: BGR
    outfit: BGR
    hair_style: str
    bangs: str
    accessory: str = "none"
    accessory_color: BGR = (60, 60, 220)
    style: DrawStyle = field(default_factory=DrawStyle)

    def summary(self) -> dict:
        """JSON-friendly description (colours as #rrggbb) for cast.json."""
        out = asdict(self)
        for key in ("skin", "hair", "eyes", "outfit", "accessory_color"):
            out[key] = to_hex(getattr(self, key))
        out.pop("style")
        if self.accessory == "none":
            out["accessory_color"] = None
        return out


def to_hex(bgr: BGR) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


SKIN_LIGHT: BGR = (214, 228, 252)
SKIN_WARM: BGR = (190, 214, 246)
SKIN_TAN: BGR = (150, 186, 228)
UNIFORM_NAVY: BGR = (92, 52, 40)
UNIFORM_GREY: BGR = (120, 112, 108)

# Look-alike pairs: (Akari, Hikari), (Sora, Ren), (Mio, Yui) share every colour.
PINK_HAIR: BGR = (170, 120, 240)
AMBER_EYES: BGR = (40, 120, 200)
BLUE_HAIR: BGR = (200, 130, 60)
BLUE_EYES: BGR = (170, 90, 40)
BROWN_HAIR: BGR = (50, 80, 120)
GREEN_EYES: BGR = (80, 140, 50)

NAMED_CAST: tuple[Design, ...] = (
    Design("Akari", "cast", SKIN_LIGHT, PINK_HAIR, AMBER_EYES, UNIFORM_NAVY,
           "twintails", "straight", "ribbon", (70, 60, 220)),
    Design("Hikari", "cast", SKIN_LIGHT, PINK_HAIR, AMBER_EYES, UNIFORM_NAVY,
           "bob", "straight", "hairclip", (60, 200, 240)),
    Design("Sora", "cast", SKIN_WARM, BLUE_HAIR, BLUE_EYES, UNIFORM_GREY,
           "long", "parted", "none"),
    Design("Ren", "cast", SKIN_WARM, BLUE_HAIR, BLUE_EYES, UNIFORM_GREY,
           "long", "parted", "glasses", (50, 40, 40)),
    Design("Mio", "cast", SKIN_LIGHT, BROWN_HAIR, GREEN_EYES, UNIFORM_NAVY,
           "ponytail", "swept", "headband", (200, 200, 240)),
    Design("Yui", "cast", SKIN_LIGHT, BROWN_HAIR, GREEN_EYES, UNIFORM_NAVY,
           "bob", "swept", "ribbon", (200, 200, 240)),
)  # fmt: skip

OTHER_STYLE = DrawStyle(
    line=1.5,
    eye_scale=0.86,
    eye_tilt=0.035,
    chin=0.85,
    shading=False,
    highlights=1,
    line_color=(20, 20, 20),
)

OTHER_SHOW_CAST: tuple[Design, ...] = (
    Design("Kaito", "othershow", SKIN_TAN, (40, 40, 60), (40, 60, 160), (40, 110, 60),
           "spiky", "spiky", "none", style=OTHER_STYLE),
    Design("Natsuki", "othershow", SKIN_WARM, (60, 200, 230), (150, 60, 110), (200, 200, 200),
           "long", "swept", "hairclip", (220, 120, 60), style=OTHER_STYLE),
    Design("Rin", "othershow", SKIN_LIGHT, (180, 180, 190), (60, 50, 170), (40, 40, 40),
           "bob", "straight", "ribbon", (40, 40, 170), style=OTHER_STYLE),
    Design("Tomo", "othershow", SKIN_WARM, (40, 100, 190), (60, 120, 60), (140, 70, 50),
           "short", "parted", "glasses", (30, 30, 30), style=OTHER_STYLE),
)  # fmt: skip

# Colours for extras: deliberately including (near) copies of the named cast's colours.
HAIR_PALETTE: tuple[BGR, ...] = (
    PINK_HAIR, BLUE_HAIR, BROWN_HAIR, (30, 30, 40), (40, 60, 90), (90, 200, 240),
    (200, 200, 210), (60, 60, 200), (120, 170, 90), (160, 90, 160), (30, 120, 210),
)  # fmt: skip
EYE_PALETTE: tuple[BGR, ...] = (
    AMBER_EYES, BLUE_EYES, GREEN_EYES, (60, 60, 150), (120, 60, 120), (80, 80, 80),
    (30, 80, 110),
)  # fmt: skip
OUTFIT_PALETTE: tuple[BGR, ...] = (
    UNIFORM_NAVY, UNIFORM_GREY, (200, 200, 200), (60, 60, 160), (60, 130, 60), (150, 100, 60),
    (40, 40, 40), (120, 190, 230),
)  # fmt: skip
ACCENT_PALETTE: tuple[BGR, ...] = (
    (70, 60, 220), (60, 200, 240), (200, 200, 240), (220, 120, 60), (50, 40, 40), (180, 80, 200),
)  # fmt: skip


def named_cast(count: int) -> list[Design]:
    """The first `count` named characters (look-alike pairs stay together)."""
    return list(NAMED_CAST[:count])


def _jitter(rng: np.random.Generator, color: BGR, amount: int) -> BGR:
    # Small colour noise so that extras are not exact copies of a palette entry.
    b, g, r = np.clip(np.array(color) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return int(b), int(g), int(r)


def _pick(rng: np.random.Generator, options: tuple[T, ...]) -> T:
    return options[int(rng.integers(len(options)))]


def random_extra(rng: np.random.Generator, index: int) -> Design:
    """One random background person; its colours may match a named character's."""
    skins = (SKIN_LIGHT, SKIN_WARM, SKIN_TAN)
    style = DrawStyle(eye_scale=float(rng.uniform(0.92, 1.05)), chin=float(rng.uniform(0.3, 0.7)))
    return Design(
        name=f"extra{index:02d}",
        role="extra",
        skin=_jitter(rng, _pick(rng, skins), 6),
        hair=_jitter(rng, _pick(rng, HAIR_PALETTE), 18),
        eyes=_jitter(rng, _pick(rng, EYE_PALETTE), 15),
        outfit=_jitter(rng, _pick(rng, OUTFIT_PALETTE), 10),
        hair_style=_pick(rng, HAIR_STYLES),
        bangs=_pick(rng, BANGS),
        accessory=_pick(rng, ACCESSORIES),
        accessory_color=_pick(rng, ACCENT_PALETTE),
        style=style,
    )


def random_extras(seed: int, count: int) -> list[Design]:
    """The extras pool: `count` different people, deterministic in `seed`."""
    rng = np.random.default_rng([seed, 101])
    extras: list[Design] = []
    seen: set[tuple] = set()
    while len(extras) < count:
        extra = random_extra(rng, len(extras) + 1)
        # Two extras with the same style, bangs and accessory would be the same person.
        key = (extra.hair_style, extra.bangs, extra.accessory, tuple(v // 48 for v in extra.hair))
        if key not in seen and not any(looks_like(extra, c) for c in NAMED_CAST):
            seen.add(key)
            extras.append(extra)
    return extras


def looks_like(a: Design, b: Design) -> bool:
    """Would `a` pass for `b`? Same hair style and accessory in (almost) the same hair colour."""
    close = sum(abs(x - y) for x, y in zip(a.hair, b.hair, strict=True)) < 90
    return close and (a.hair_style, a.accessory) == (b.hair_style, b.accessory)


def other_show_cast() -> list[Design]:
    """The second show's characters."""
    return list(OTHER_SHOW_CAST)
