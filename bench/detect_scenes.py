"""The learned detector on a public annotated set: train on its train split, score every backend
on its val split, one table.

`train_detector` runs with params.yaml's section, its `scenes` set to `<set>/images/train` and no
ground-truth videos; then `charaid detect-eval`'s scoring (`score_folder`) runs on
`<set>/images/val` once per backend, with params.yaml's detect_faces settings (the learned
backend reading the weights just trained). Train splits fit, val splits only measure.

    python bench/detect_scenes.py ../shared/data/scenes/icartoonface
    python bench/detect_scenes.py ../shared/data/scenes/dexter --set epochs=30 --backends learned
    python bench/detect_scenes.py SET --skip-train --out runs/icf   # score weights trained before
    python bench/detect_scenes.py SET --skip-train --recalibrate    # choose their score cuts anew
    python bench/detect_scenes.py ../shared/data/scenes/icartoonface \
        --train-also ../shared/data/scenes/dexter/images/train --out runs/both   # one for both
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from settings import apply_settings

from charaid.atomic import write_json
from charaid.config import TrainDetectorParams, load_params, parse_section
from charaid.detect_eval import score_folder
from charaid.detector import backend
from charaid.train_detector import gather_scenes, score_pictures, split_scenes, train_detector

ROOT = Path(__file__).resolve().parents[1]
CASCADE = ROOT.parent / "shared" / "data" / "lbpcascade_animeface.xml"


def recalibrate(train: TrainDetectorParams, out: Path) -> dict:
    """The detector in `out` scored on its own validation pictures (the same split training
    drew) and its cuts in detector.json replaced by the ones chosen there."""
    net, meta = backend.load(out)
    scenes = gather_scenes(train, out / "frames")
    _, val = split_scenes(scenes, train.val_fraction, train.val_pictures, train.seed)
    chosen = score_pictures(net, val, meta["input_size"], train.mirror)
    cuts = {k: chosen[k] for k in ("min_score", "min_score_by_side")}
    cuts["mirror"] = train.mirror
    write_json(out / backend.META, {**meta, **cuts})
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="a folder with images/{train,val} + labels/")
    parser.add_argument("--out", type=Path, help="where the detector goes (default runs/<set>)")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument(
        "--set",
        dest="changes",
        action="append",
        default=[],
        metavar="KEY=V",
        help="change a train_detector param (YAML value), e.g. epochs=12",
    )
    parser.add_argument(
        "--train-also",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="another YOLO folder to train on too (e.g. another set's images/train)",
    )
    parser.add_argument("--backends", default="learned,animeface,lbp,ensemble")
    parser.add_argument("--skip-train", action="store_true", help="score the weights in --out")
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="with --skip-train: choose the weights' score cuts again on their validation "
        "pictures, as train_detector's last step does (after a change to the calibration)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    params = load_params(args.params)
    out = args.out or ROOT / "runs" / args.set.name
    values = {
        **params.train_detector.to_dict(),
        "scenes": [str(args.set / "images" / "train"), *map(str, args.train_also)],
        "truth": "",
        "holdout_videos": [],
    }
    train = parse_section("train_detector", apply_settings(values, args.changes), args.params)
    report: dict = {"set": str(args.set), "train_detector": train.to_dict(), "backends": {}}
    if not args.skip_train:
        result = train_detector(train, out / "frames", out, out, out / "snapshots")
        report["training"] = result
        print(f"trained in {result['seconds']} s: {json.dumps(result)}", file=sys.stderr)
    elif args.recalibrate:
        report["calibration"] = recalibrate(train, out)
        print(f"recalibrated: {json.dumps(report['calibration'])}", file=sys.stderr)
    val = args.set / "images" / "val"
    rows = []
    for name in args.backends.split(","):
        if name in ("lbp", "ensemble") and not CASCADE.is_file():
            continue
        detect = replace(params.detect_faces, backend=name, cascade=str(CASCADE), detector=str(out))
        start = time.perf_counter()
        r = score_folder(val, detect)
        o = r["overall"]
        report["backends"][name] = r
        rows.append((name, o, r["at_precision95"], time.perf_counter() - start))
    print(f"{val}: {rows[0][1]['faces'] if rows else 0} faces")
    head = ("backend", "found", "R@0.5", "P@0.5", "R@0.3", "P@0.3", "R@P.95", "s")
    print("".join(f"{h:>9}" for h in head))
    for name, o, best, seconds in rows:
        cells = [o["detections"], o["recall_iou50"], o["precision_iou50"], o["recall_iou30"]]
        cells += [o["precision_iou30"], best["recall"] if best["recall"] is not None else 0.0]
        print(
            f"{name:>9}"
            + "".join(f"{c:>9}" if isinstance(c, int) else f"{c:>9.3f}" for c in cells)
            + f"{seconds:>9.0f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
