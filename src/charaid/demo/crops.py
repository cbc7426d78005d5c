"""Labelled face crops of the demo cast, drawn straight into crop-sized pictures.

For training checks and benchmarks that need the demo's faces but not its videos and detection
(seconds instead of minutes): each crop is one character in a random pose, size, roll, lighting
and background, framed like a detector's crop (canonical box plus margin). Deterministic in
`seed`. The result is a `data/labeled/<name>/*.png` tree, as `label.from: folders` reads it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from charaid.demo.cast import named_cast, random_extras
from charaid.demo.draw import BOX_OFFSET, Pose, draw_character


def draw_crop(design, rng: np.random.Generator, size: int = 50, margin: float = 0.2) -> np.ndarray:
    """One `size` x `size` BGR crop of `design`."""
    canvas = 4 * size
    background = rng.integers(30, 230, 3)
    img = np.empty((canvas, canvas, 3), np.uint8)
    img[:] = background
    fw = canvas / (1 + 2 * margin) / rng.uniform(1.6, 2.0)
    cx = canvas / 2 + rng.uniform(-0.08, 0.08) * fw
    cy = canvas / 2 - BOX_OFFSET * fw + rng.uniform(-0.08, 0.08) * fw
    pose = Pose(
        cx,
        cy,
        fw,
        angle=float(rng.uniform(-15, 15)),
        eyes_open=float(rng.choice([1.0, 1.0, 0.5, 0.0])),
        mouth=str(rng.choice(["closed", "smile", "open"])),
        gaze=float(rng.uniform(-1, 1)),
    )
    draw_character(img, design, pose)
    side = fw * (1 + 2 * margin)
    x0, y0 = round(canvas / 2 - side / 2), round(canvas / 2 - side / 2)
    crop = img[y0 : y0 + round(side), x0 : x0 + round(side)]
    light = rng.uniform(0.55, 1.15)  # night to bright day
    crop = np.clip(crop.astype(np.float32) * light, 0, 255).astype(np.uint8)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def write_demo_crops(
    root: Path,
    names: tuple[str, ...] = ("Akari", "Hikari", "Sora", "Ren"),
    extras: int = 6,
    per_class: int = 60,
    seed: int = 0,
) -> dict[str, int]:
    """Write `per_class` crops of each named character and of the extras (class `other`).

    The default names are two look-alike pairs (same colours, different hair and eyes).
    """
    rng = np.random.default_rng([seed, 7])
    cast = {d.name: d for d in named_cast(6)}
    classes = {name: [cast[name]] for name in names}
    classes["other"] = random_extras(seed, extras)
    counts = {}
    for name, designs in classes.items():
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            design = designs[i % len(designs)]
            cv2.imwrite(str(folder / f"{i:04d}.png"), draw_crop(design, rng))
        counts[name] = per_class
    return counts


def write_train_project(
    root: Path,
    params: dict,
    per_class: int = 60,
    test_fraction: float = 0.25,
    seed: int = 0,
    names: tuple[str, ...] = ("Akari", "Hikari", "Sora", "Ren"),
) -> Path:
    """A folder where `python stages/train.py` runs: params.yaml, data/dataset, data/split.

    `params` is the project's whole params mapping (validated by the stage); the crops are
    drawn at its `detect_faces.crop_size`.
    """
    import yaml

    from charaid.config import LabelParams
    from charaid.dataset import load_dataset
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split

    root = Path(root)
    labeled = root / "data" / "labeled"
    write_demo_crops(labeled, names, per_class=per_class, seed=seed)
    label = LabelParams(from_="folders", path=str(labeled), min_iou=0.5, other_class="other")
    size = params["detect_faces"]["crop_size"]
    build_dataset(label, size, root / "data" / "faces", root / "data" / "dataset")
    rows = load_dataset(root / "data" / "dataset")[1]
    write_split(split_rows(rows, test_fraction, seed), root / "data" / "split")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("models", "metrics"):
        (root / folder).mkdir(exist_ok=True)
    return root
