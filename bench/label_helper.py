"""How much sorting the label helper leaves on real crops (labels hidden from it).

Builds a detect_faces-like folder (index.csv + crops named by a hash, so neither names nor
folders give the character away) from a labeled-folder tree, runs `charaid.label_helper.suggest`,
and scores its folders against the hidden labels: purity, crops to move, folders to merge.

    python bench/label_helper.py                      # no model, automatic cluster count
    python bench/label_helper.py --rounds 0           # image features only (no self-labelling)
    python bench/label_helper.py --clusters 20
    python bench/label_helper.py --model DIR --only-test SPLIT/test.csv   # a model's features

Results are merged into metrics/label_helper.json under --name.
"""

from __future__ import annotations

# first: importing charaid picks OpenBLAS's kernels for this CPU (charaid.blas_core), which
# only works before numpy loads
import charaid  # noqa: F401

# isort: split

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from charaid.atomic import write_json
from charaid.crops import crop_file, crop_key
from charaid.frames import read_index
from charaid.label_helper import SUGGESTIONS, quality, suggest
from charaid.media import read_image

HOLOEN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "holoen-faces"


def hidden_faces(src: Path, dst: Path, only: set[str] | None) -> dict[str, str]:
    """detect_faces' layout (one array file, keys named by hash) + index.csv; returns
    crop key -> true label (kept out of dst)."""
    truth, rows, crops = {}, [], []
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        for pic in sorted(folder.iterdir()):
            rel = f"{folder.name}/{pic.name}"
            if only is not None and rel not in only:
                continue
            image = read_image(pic)
            if image is None:
                continue
            key = crop_key("hidden", hashlib.sha256(rel.encode()).hexdigest()[:16], 0)
            crops.append(cv2.resize(image, (96, 96), interpolation=cv2.INTER_AREA))
            truth[key] = folder.name
            rows.append({"crop": key, "video": "hidden", "frame": ""})
    order = sorted(range(len(rows)), key=lambda i: rows[i]["crop"])
    crop_file(dst, "hidden").parent.mkdir(parents=True)
    np.savez(
        crop_file(dst, "hidden"),
        crops=np.stack([crops[i] for i in order]),
        keys=np.array([rows[i]["crop"] for i in order]),
    )
    with open(dst / "index.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["crop", "video", "frame"])
        writer.writeheader()
        writer.writerows(rows[i] for i in order)
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--name", default="image_features_auto")
    ap.add_argument("--folder", type=Path, default=HOLOEN)
    ap.add_argument("--clusters", type=int, default=0)
    ap.add_argument("--model", type=Path, help="model folder: cluster its features")
    ap.add_argument("--presort", action="store_true", help="with --model: pre-sort, not cluster")
    ap.add_argument("--rounds", type=int, help="as `charaid label --rounds` (default: its default)")
    ap.add_argument("--only-test", type=Path, help="a split's test.csv: only those crops")
    ap.add_argument("--out", type=Path, default=Path("metrics/label_helper.json"))
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"error: {args.folder}: labeled folder not found")
    only = {r["id"] for r in read_index(args.only_test)} if args.only_test else None
    with tempfile.TemporaryDirectory(prefix="charaid-label-helper-") as tmp_name:
        tmp = Path(tmp_name)
        truth = hidden_faces(args.folder, tmp / "faces", only)
        started = time.perf_counter()
        clusters = 0 if args.presort else args.clusters
        summary = suggest(tmp / "faces", tmp / "out", args.model, clusters, rounds=args.rounds)
        seconds = time.perf_counter() - started
        rows = read_index(tmp / "out" / SUGGESTIONS)
    record = quality([r["folder"] for r in rows], [truth[r["crop"]] for r in rows])
    record.update(
        mode=summary["mode"],
        characters=len(set(truth.values())),
        seconds=round(seconds, 1),
        command="python bench/label_helper.py " + " ".join(sys.argv[1:]),
    )
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results[args.name] = record
    write_json(args.out, dict(sorted(results.items())))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
