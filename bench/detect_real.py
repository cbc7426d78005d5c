"""Face detection on real anime frames: every backend on the hand-annotated sakurasou set.

Cuts the annotated frames (tests/data/night_scene_boxes/frameNNNN.txt) out of
../shared/data/videos/sakurasou-1080p.mp4 into a temporary YOLO folder and runs
`charaid detect-eval`'s scoring on it once per backend, with params.yaml's detector settings.

    python bench/detect_real.py [--backends animeface,lbp,ensemble] [--scale 0.125]
    python bench/detect_real.py --errors real_errors/    # + real_errors/<backend>.png

`--scale` shrinks the frames (the boxes are normalised, so they still fit): the clip's faces are
all close-ups, and 0.125 makes them 57-95 px wide, small faces in real line art.
"""

from __future__ import annotations

# first: importing charaid picks OpenBLAS's kernels for this CPU (charaid.blas_core), which
# only works before numpy loads
import charaid  # noqa: F401

# isort: split

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import cv2

from charaid.config import load_params
from charaid.detect_eval import score_folder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.helpers import CASCADE, annotated_sakurasou  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="animeface,lbp,ensemble")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--scale", type=float, default=1.0, help="resize the frames first")
    parser.add_argument(
        "--errors", type=Path, help="folder for a picture of each backend's misses (<backend>.png)"
    )
    args = parser.parse_args()
    params = load_params(args.params).detect_faces
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = annotated_sakurasou(Path(tmp))
        if args.scale != 1:
            for png in folder.glob("*.png"):
                image = cv2.imread(str(png))
                size = (round(image.shape[1] * args.scale), round(image.shape[0] * args.scale))
                cv2.imwrite(str(png), cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        for backend in args.backends.split(","):
            run = replace(params, backend=backend, cascade=str(CASCADE))
            sheet = args.errors / f"{backend}.png" if args.errors else None
            result = score_folder(folder, run, sheet)["overall"]
            rows.append((backend, result))
    head = ("backend", "faces", "found", "R@0.5", "P@0.5", "R@0.3", "P@0.3")
    print(f"{head[0]:<10}" + "".join(f"{h:>7}" for h in head[1:]))
    keys = ("recall_iou50", "precision_iou50", "recall_iou30", "precision_iou30")
    for backend, r in rows:
        cells = [f"{r['faces']:>7}", f"{r['detections']:>7}"] + [f"{r[k]:>7.3f}" for k in keys]
        print(f"{backend:<10}" + "".join(cells))


if __name__ == "__main__":
    main()
