"""Training samples for FaceNet: annotated pictures from every source, drawn as augmented patches.

Sources, mixed into one list of `Scene`s (a picture and its square face boxes):
- YOLO folders (`train_detector.scenes`): public sets, a user's own boxes, a corrected
  detect-eval folder;
- ground-truth CSVs of videos in `data/frames` (the synthetic cast's scenes, or a user's);
- composites: face crops pasted onto those pictures (`charaid.detector.composite`).

Each sample is one square patch cut from a picture seen at about the scale detection will see it
(the picture's long side resized to the detector's input size, times a random zoom), maybe
mirrored, with jittered colours and sometimes blur; faces whose centre falls outside are not
the patch's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from charaid.boxes import Box
from charaid.detector.composite import BLENDS, carry, face_in_crop, paste
from charaid.errors import CharaidError
from charaid.media import IMAGE_EXTS, list_media, read_image

GREY = (114, 114, 114)  # where a patch overhangs its picture


@dataclass(frozen=True)
class Scene:
    picture: Path
    boxes: tuple[Box, ...]
    # the picture's path inside its folder: what decides its side of the train/val split, so
    # the split is the same wherever the data lies
    name: str
    # pictures that share a side of the split, so validation is not near-copies of training
    # pictures (a stretch of a video: its shots); "" = the picture alone
    group: str = ""


SHOT_SECONDS = 4.0  # a video's frames this close in time share a side of the split


@dataclass(frozen=True)
class Draw:
    """How samples are drawn (train_detector params)."""

    input_size: int  # long side of a picture as the detector sees it
    patch: int  # side of a training patch
    zoom: tuple[float, float] = (0.6, 1.6)  # random scale about the detector's own
    composites: float = 0.0  # share of samples that get pasted faces
    crop_face: float = 0.7  # the face's share of a pasted crop's side


def yolo_scenes(folder: str | Path) -> list[Scene]:
    """The readable pictures of a YOLO folder with their faces (box files checked first)."""
    from charaid.yolo import read_folder

    return [
        Scene(p, tuple(boxes), p.relative_to(folder).as_posix())
        for p, size, boxes in read_folder(folder)
        if size
    ]


def truth_scenes(frames_dir: Path, truth_dir: Path, videos: list[str]) -> list[Scene]:
    """Frames of `videos` (extract_frames' index) with their ground-truth faces (none where a
    frame has no truth row)."""
    from charaid.frames import read_index
    from charaid.truth import read_truth

    truth = read_truth(truth_dir)
    scenes = []
    for row in read_index(frames_dir / "index.csv"):
        if row["video"] in videos:
            faces = truth.get((row["video"], str(row["frame"])), [])
            boxes = tuple(tuple(float(f[k]) for k in "xywh") for f in faces)
            scenes.append(
                Scene(frames_dir / row["path"], boxes, Path(row["path"]).as_posix(), stretch(row))
            )
    return scenes


def stretch(row: dict) -> str:
    """The stretch of its video an extract_frames index row's frame belongs to ("" for a
    picture: it stands alone)."""
    from charaid.frames import PICTURES

    if row["video"] == PICTURES:
        return ""
    return f"{row['video']}@{int(float(row['time']) // SHOT_SECONDS)}"


def crop_pool(folder: str | Path, limit: int = 2000) -> list[np.ndarray]:
    """Up to `limit` face crops (every picture under `folder`, evenly thinned), to paste."""
    paths = list_media(Path(folder), IMAGE_EXTS)
    if not paths:
        raise CharaidError(f"{folder}: no face crops found (train_detector.crops)")
    step = max(1, math.ceil(len(paths) / limit))
    crops = [read_image(p) for p in paths[::step]]
    return [c for c in crops if c is not None]


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour cast, contrast, brightness, saturation; sometimes grey or blurred.

    Contrast, brightness, cast and saturation are each affine in the colour, so they compose
    into one 3x4 colour map that cv2.transform applies in a single saturating pass (0.08 ms
    against 3.1 ms of float32 passes for a 256-px patch: the loader shares the cores with
    training)."""
    contrast, brightness = rng.uniform(0.7, 1.3), rng.uniform(-30, 30)
    cast = rng.uniform(0.85, 1.15, size=3)
    sat = 0.0 if rng.random() < 0.08 else rng.uniform(0.6, 1.4)
    mix = sat * np.eye(3) + (1 - sat) / 3  # grey + (c - grey) * sat, grey the channels' mean
    gain = mix * (cast * contrast)[None, :]
    offset = mix @ (cast * brightness)
    out = cv2.transform(image, np.hstack([gain, offset[:, None]]).astype(np.float32))
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    return out


def _paste_faces(
    patch: np.ndarray, boxes: list[Box], crops: list[np.ndarray], draw: Draw, rng
) -> tuple[np.ndarray, list[Box]]:
    """Paste 1-3 random crops at random squares; a face mostly hidden by a pasted crop is no
    longer a face of the patch."""
    from charaid.boxes import covered

    side_max = draw.patch
    for _ in range(int(rng.integers(1, 4))):
        crop = crops[int(rng.integers(len(crops)))]
        face = math.exp(rng.uniform(math.log(16), math.log(side_max * 0.6)))
        side = max(8, round(face / draw.crop_face))
        x = int(rng.integers(-side // 4, draw.patch - side * 3 // 4))
        y = int(rng.integers(-side // 4, draw.patch - side * 3 // 4))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        blend = BLENDS[int(rng.integers(len(BLENDS)))]
        patch = paste(patch, np.ascontiguousarray(crop), x, y, side, blend)
        pasted = (x, y, side, side)
        boxes = [b for b in boxes if covered(b, pasted) < 0.5]
        fx, fy, fw, fh = face_in_crop(side, draw.crop_face)
        boxes.append((x + fx, y + fy, fw, fh))
    return patch, boxes


def place(
    image: np.ndarray, boxes: tuple[Box, ...], rng: np.random.Generator, draw: Draw
) -> tuple[np.ndarray, list[Box]]:
    """The geometry of a sample: a (patch, boxes in patch pixels) cut at a random zoom and
    place, maybe mirrored; a face belongs to the patch when its centre lies inside."""
    height, width = image.shape[:2]
    base = draw.input_size / max(height, width)
    scale = base * math.exp(rng.uniform(*np.log(draw.zoom)))
    p = draw.patch
    if boxes and rng.random() < 0.7:  # mostly around a face: faces are few, background is not
        bx, by, bw, bh = boxes[int(rng.integers(len(boxes)))]
        cx = (bx + bw / 2) * scale + rng.uniform(-0.4, 0.4) * p
        cy = (by + bh / 2) * scale + rng.uniform(-0.4, 0.4) * p
    else:
        cx = rng.uniform(0, max(1.0, width * scale))
        cy = rng.uniform(0, max(1.0, height * scale))
    dx, dy = p / 2 - cx, p / 2 - cy
    flip = bool(rng.random() < 0.5)
    m = np.array([[scale, 0, dx], [0, scale, dy]], np.float64)
    if flip:  # x -> p - x after the move
        m = np.array([[-1, 0, p], [0, 1, 0]], np.float64) @ np.vstack([m, [0, 0, 1]])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    patch = cv2.warpAffine(image, m, (p, p), flags=interp, borderValue=GREY)
    moved = [carry(b, scale, dx, dy, p if flip else None) for b in boxes]
    return patch, [b for b in moved if 0 <= b[0] + b[2] / 2 < p and 0 <= b[1] + b[3] / 2 < p]


def draw_sample(
    image: np.ndarray,
    boxes: tuple[Box, ...],
    rng: np.random.Generator,
    draw: Draw,
    crops: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, list[Box]]:
    """One augmented (patch, face boxes in patch pixels) from a picture and its faces."""
    patch, kept = place(image, boxes, rng, draw)
    if crops and rng.random() < draw.composites:
        patch, kept = _paste_faces(patch, kept, crops, draw, rng)
    return _jitter(patch, rng), kept
