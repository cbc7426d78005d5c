"""How pure `charaid label`'s clusters are without a model, on a folder of labeled crops.

Reads <folder>/<character>/*.{png,jpg,...} (default: the 11,679 holoen-faces crops of 20
characters beside the project), hides the labels, and runs the helper's own no-model path,
`charaid.label_helper.simple_features` -> `look_features` (`--rounds` of self-labelling) ->
`cluster` with `auto_clusters` (the calls `suggest` makes; it only adds reading index.csv and
writing the folders). Then, for each cluster count asked
for (default: the true number of characters, then the automatic count), it prints:

- purity: sum over clusters of its most common character's count / crops
- moves: crops not of their cluster's majority character ((1 - purity) x crops), one each
- merges: clusters whose majority character already has a bigger cluster (one action each)
- missing: characters that are the majority of no cluster (their crops are all moves)
- seconds: image features (computed once) + learning (per cluster count) + clustering

    python bench/label_purity.py                          # holoen-faces, N = 20 and automatic
    python bench/label_purity.py PATH --clusters 10 auto  # another labeled folder, other N
    python bench/label_purity.py --size 50                # crops shrunk to detect_faces' side
    python bench/label_purity.py --rounds 0               # image features only (seconds)
"""

from __future__ import annotations

# first: importing charaid picks OpenBLAS's kernels for this CPU (charaid.blas_core), which
# only works before numpy loads
import charaid  # noqa: F401

# isort: split

import argparse
import sys
import time
from pathlib import Path

import cv2

from charaid.label_helper import auto_clusters, cluster, look_features, quality, simple_features
from charaid.media import IMAGE_EXTS, read_image
from charaid.self_label import ROUNDS

HOLOEN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "holoen-faces"


def labeled_crops(folder: Path, size: int) -> tuple[list, list[str]]:
    """Every readable picture of folder/<character>/ (sorted), and its character."""
    crops, truth = [], []
    for character in sorted(p for p in folder.iterdir() if p.is_dir()):
        if character.name.startswith("."):
            continue
        for pic in sorted(character.rglob("*")):
            if pic.suffix.lower() not in IMAGE_EXTS or not pic.is_file():
                continue
            image = read_image(pic)
            if image is None:
                continue
            if size:
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            crops.append(image)
            truth.append(character.name)
    return crops, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=HOLOEN, help="<character>/ folders")
    ap.add_argument(
        "--clusters",
        nargs="+",
        default=["true", "auto"],
        help="cluster counts: a number, true (the number of characters) or auto (as label)",
    )
    ap.add_argument("--seed", type=int, default=0, help="as `charaid label --seed` (default 0)")
    ap.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help=f"as `charaid label --rounds`: self-labelling rounds (default {ROUNDS})",
    )
    ap.add_argument("--size", type=int, default=0, help="resize crops to this side first (0: no)")
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"error: {args.folder}: labeled folder not found")
    crops, truth = labeled_crops(args.folder, args.size)
    characters = len(set(truth))
    if characters < 2:
        sys.exit(f"error: {args.folder}: needs pictures in at least two character folders")
    started = time.perf_counter()
    features = simple_features(crops)
    feature_s = time.perf_counter() - started
    print(f"{args.folder}: {len(crops)} crops, {characters} characters; features {feature_s:.1f} s")
    for asked in args.clusters:
        if asked == "true":
            k, how = characters, "true count"
        elif asked == "auto":
            k, how = auto_clusters(len(crops)), "automatic"
        else:
            k, how = int(asked), "given"
        started = time.perf_counter()
        feats = look_features(crops, k, args.rounds, args.seed, features)
        learn_s = time.perf_counter() - started
        started = time.perf_counter()
        ids, _ = cluster(feats, k, args.seed)
        cluster_s = time.perf_counter() - started
        q = quality([str(i) for i in ids], truth)
        print(
            f"N={k} ({how}, {args.rounds} rounds): purity {q['purity']:.4f}  crops {q['crops']}  "
            f"clusters {q['folders']}  moves {q['moves']}  merges {q['merges']}  missing "
            f"{q['characters_without_folder']}  seconds {feature_s + learn_s + cluster_s:.1f} "
            f"({feature_s:.1f} image features + {learn_s:.1f} learning + {cluster_s:.1f} "
            "clustering)",
            flush=True,
        )


if __name__ == "__main__":
    main()
