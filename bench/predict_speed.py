"""How fast `charaid predict` names faces, with batching on (one forward pass per chunk of
pictures) vs off (one forward pass per picture).

Two measurements per mode, interleaved round by round (on, off, off, on, ...) so both see the same
machine load; the median over rounds is printed with the min..max:

- end to end: detect + crop + classify, what `charaid predict` does per chunk of pictures;
- classify only: the same crops (detected once, up front) through the model, which is the part
  batching changes.

    python bench/predict_speed.py --model models --frames data/frames
    python bench/predict_speed.py --model models --frames data/frames --images 48 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models", help="model.npz + model.json folder")
    parser.add_argument("--params", default="params.yaml", help="detector settings")
    parser.add_argument("--frames", default="data/frames", help="folder of demo frames (JPEG)")
    parser.add_argument("--images", type=int, default=48, help="frames used (spread evenly)")
    parser.add_argument("--batch", type=int, default=16, help="pictures per batch when on")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--classify-repeats",
        type=int,
        default=10,
        help="passes over the crops per classify-only round (short otherwise)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    return parser.parse_args()


def load_frames(folder: Path, count: int) -> list[np.ndarray]:
    from charaid.media import read_image

    paths = sorted(p for p in folder.rglob("*.jpg") if not p.name.startswith("."))
    if not paths:
        sys.exit(f"error: no .jpg frames under {folder} (run `dvc repro extract_frames`)")
    step = max(1, len(paths) // count)
    return [read_image(p) for p in paths[::step][:count]]


def chunked(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def main() -> None:
    args = parse_args()
    from charaid.config import load_params
    from charaid.predict import Predictor, concat, crop_faces, detect_sorted

    predictor = Predictor.load(args.model, load_params(args.params))
    rec = predictor.recognizer
    images = load_frames(Path(args.frames), args.images)
    dets = [detect_sorted(predictor.detector, image) for image in images]
    crops = [
        crop_faces(im, d, predictor.margin, rec.input_size)
        for im, d in zip(images, dets, strict=True)
    ]
    n_faces = sum(len(d) for d in dets)
    predictor.predict_many(images[:2])  # warm-up: allocator, BLAS threads

    def end_to_end(batched: bool) -> float:
        groups = chunked(images, args.batch) if batched else [[im] for im in images]
        start = time.perf_counter()
        for group in groups:
            predictor.predict_many(group)
        return time.perf_counter() - start

    def classify_only(batched: bool) -> float:
        groups = (
            [concat(g, rec.input_size) for g in chunked(crops, args.batch)] if batched else crops
        )
        start = time.perf_counter()
        for _ in range(args.classify_repeats):
            for group in groups:
                rec.probabilities(group)
        return (time.perf_counter() - start) / args.classify_repeats

    results: dict[str, list[float]] = {}
    for r in range(args.rounds):
        order = (True, False) if r % 2 == 0 else (False, True)  # ABBA: cancels slow drift
        for batched in order:
            tag = "on" if batched else "off"
            results.setdefault(f"end_to_end_{tag}", []).append(end_to_end(batched))
            results.setdefault(f"classify_{tag}", []).append(classify_only(batched))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    h, w = images[0].shape[:2]
    print(
        f"predict speed: {len(images)} demo frames {w}x{h}, {n_faces} faces, "
        f"{len(rec.classes)} classes, batch {args.batch} pictures, {args.rounds} rounds "
        "(median, min..max)"
    )
    print(f"{'':28}{'images/s':>10}{'':14}{'faces/s':>10}")
    summary = {}
    for key, label in (
        ("end_to_end_on", "end to end, batched"),
        ("end_to_end_off", "end to end, one by one"),
        ("classify_on", "classify only, batched"),
        ("classify_off", "classify only, one by one"),
    ):
        secs = results[key]
        img = [len(images) / s for s in secs]
        fac = [n_faces / s for s in secs]
        summary[key] = {
            "images_per_s": statistics.median(img),
            "faces_per_s": statistics.median(fac),
        }
        print(
            f"{label:28}{statistics.median(img):10.1f} {f'({min(img):.1f}..{max(img):.1f})':13}"
            f"{statistics.median(fac):10.1f} ({min(fac):.1f}..{max(fac):.1f})"
        )
    for stage in ("end_to_end", "classify"):
        ratio = [
            off / on
            for on, off in zip(results[f"{stage}_on"], results[f"{stage}_off"], strict=True)
        ]
        summary[f"{stage}_speedup"] = statistics.median(ratio)
        print(f"speed-up from batching, {stage.replace('_', ' ')}: x{statistics.median(ratio):.2f}")
    if args.json:
        print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
