"""The demo's detector under other train_detector params: train it on the demo's frames, then
score it as detect_eval does on the videos it never trained on (`holdout_videos`), one line.

Run from the repository root after `dvc repro extract_frames` (one heavy job at a time):

    python bench/demo_detector.py                      # params.yaml as it is
    python bench/demo_detector.py -S epochs=16 -S lr=0.004 -S patch=192
    python bench/demo_detector.py -S "truth=''" -S pseudo=animeface   # animeface's boxes, no truth
    python bench/demo_detector.py -S seed=2 --keep /tmp/detector      # keep the weights to look at

The held-out videos are scored against params.yaml's ground truth whatever `-S truth=...` says.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from settings import apply_settings

from charaid.config import load_params, parse_section
from charaid.detect import make_detector
from charaid.detect_eval import Tally
from charaid.detector.scenes import truth_scenes
from charaid.media import read_image
from charaid.train_detector import train_detector

FRAMES = Path("data/frames")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-S", dest="changes", action="append", default=[], metavar="KEY=V")
    ap.add_argument("--keep", type=Path, help="also copy the trained detector folder here")
    args = ap.parse_args()
    params = load_params()
    values = apply_settings(params.train_detector.to_dict(), args.changes)
    train = parse_section("train_detector", values)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        trained = train_detector(train, FRAMES, out, out, out / "work", params.detect_faces)
        detector = make_detector(replace(params.detect_faces, detector=str(out)))
        tally = Tally()
        truth = Path(params.train_detector.truth)
        for scene in truth_scenes(FRAMES, truth, list(train.holdout_videos)):
            found = detector.detect(read_image(scene.picture))
            tally.add([d.box for d in found], scene.boxes)
        if args.keep:
            shutil.copytree(out, args.keep, ignore=shutil.ignore_patterns("work"))
    scored = tally.summary()
    print(
        json.dumps(
            {
                "changes": args.changes,
                "train_pictures": trained["train_pictures"],
                "train_seconds": trained["seconds"],
                "total_seconds": round(time.perf_counter() - started, 1),
                "faces": scored["faces"],
                "recall_iou50": scored["recall_iou50"],
                "precision_iou50": scored["precision_iou50"],
            }
        )
    )


if __name__ == "__main__":
    main()
