"""Accuracy on real art: label (folders) -> split -> train -> evaluate on a labeled-folder tree.

Runs the project's own stage functions (not a copy of them) in a scratch folder, with params.yaml's
sections and the overrides given here, and merges the result into a JSON file keyed by run name.
Run from the repository root (one heavy job at a time: `nice -n 10`):

    nice -n 10 python bench/labeled_folder.py --name seed_cnn_50 -S train.model=seed_cnn
    nice -n 10 python bench/labeled_folder.py --name bn_cnn_64 -S train.model=bn_cnn \
        -S train.input_size=64 -S train.augment=true -S train.epochs=12

`--folder` defaults to ../shared/data/holoen-faces (20 characters, 11,679 crops); `--classes` and
`--per-class` take a small subset for a quick check. `--other-show 5` keeps 5 characters (chosen
with the split seed) out of training: their crops are the "other show" the open-set check must
reject (`other_show.rejection_rate`), as the demo's other show is. `--other-faces DIR` adds a
folder of faces from other shows to training as `label.other_class`, as a user's `other/` folder
would be (the held-out characters are never among them).
"""

from __future__ import annotations

# first: importing charaid picks OpenBLAS's kernels for this CPU (charaid.blas_core), which
# only works before numpy loads
import charaid  # noqa: F401

# isort: split

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from settings import apply_settings

from charaid.atomic import write_json
from charaid.config import PARAMS_FILE, Params, load_params
from charaid.dataset import OTHERSHOW, load_dataset
from charaid.evaluate import evaluate
from charaid.labels import build_dataset
from charaid.split import split_rows, write_split
from charaid.train import train

HOLOEN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "holoen-faces"


def subset(src: Path, dst: Path, classes: int, per_class: int) -> Path:
    """The first `classes` folders, the first `per_class` pictures of each, as symlinks."""
    folders = sorted(p for p in src.iterdir() if p.is_dir())[:classes]
    for folder in folders:
        (dst / folder.name).mkdir(parents=True)
        for pic in sorted(folder.iterdir())[:per_class]:
            (dst / folder.name / pic.name).symlink_to(pic.resolve())
    return dst


def with_other_faces(folder: Path, faces: Path, other_class: str, dst: Path) -> Path:
    """`folder`'s class folders and `faces` as the class `other_class`, as symlinks in `dst`."""
    dst.mkdir(parents=True)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        (dst / sub.name).symlink_to(sub.resolve())
    (dst / other_class).symlink_to(faces.resolve())
    return dst


def hold_out_characters(rows: list[dict], n: int, seed: int, other_class: str) -> list[str]:
    """Relabel the crops of `n` characters (a seeded choice, never `other_class`) as the other
    show; return them."""
    names = sorted({r["label"] for r in rows} - {other_class})
    if not 0 <= n <= len(names) - 2:
        sys.exit(f"error: --other-show {n}: keep at least 2 of the {len(names)} characters known")
    chosen = sorted(np.random.default_rng(seed).choice(names, size=n, replace=False).tolist())
    for row in rows:
        if row["label"] in chosen:
            row["label"] = f"{OTHERSHOW}:{row['label']}"
    return chosen


def known_accuracy(metrics: dict, other_class: str) -> float:
    """Closed-set accuracy on the held-out crops of the named characters (other_class aside)."""
    known = [m for c, m in metrics["per_class"].items() if c != other_class]
    right = sum(m["recall"] * m["support"] for m in known)
    return round(right / max(1, sum(m["support"] for m in known)), 4)


def override(params: Params, settings: list[str]) -> Params:
    return Params.from_mapping(apply_settings(params.to_dict(), settings), PARAMS_FILE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--name", required=True, help="run name (key in the output JSON)")
    ap.add_argument("--folder", type=Path, default=HOLOEN, help="labeled folders <class>/*.jpg")
    ap.add_argument("-S", dest="set", action="append", default=[], help="section.key=value")
    ap.add_argument("--test-per-class", type=float, default=100)
    ap.add_argument("--classes", type=int, default=0, help="use only the first N classes")
    ap.add_argument("--per-class", type=int, default=0, help="use only N pictures per class")
    ap.add_argument(
        "--other-show", type=int, default=0, help="hold N characters out as the other show"
    )
    ap.add_argument(
        "--other-faces", type=Path, help="faces of other shows, trained as label.other_class"
    )
    ap.add_argument("--out", type=Path, default=Path("metrics/labeled_folder.json"))
    ap.add_argument(
        "--work", type=Path, help="scratch folder (default: $TMPDIR/charaid-holoen/NAME)"
    )
    args = ap.parse_args()
    if not args.folder.is_dir():
        sys.exit(f"error: {args.folder}: labeled folder not found")

    params = override(load_params(), args.set)
    if args.other_faces and not args.other_faces.is_dir():
        sys.exit(f"error: --other-faces {args.other_faces}: folder not found")
    if args.other_faces and (args.folder / params.label.other_class).exists():
        sys.exit(
            f"error: {args.folder} already has an {params.label.other_class}/ folder; "
            "leave out --other-faces"
        )
    work = args.work or Path(tempfile.gettempdir()) / "charaid-holoen" / args.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # the work folder stays, so its model, dataset and split can be looked at afterwards
    tmp = work
    folder = args.folder
    if args.classes or args.per_class:
        folder = subset(folder, tmp / "labeled", args.classes or 10**6, args.per_class or 10**9)
    if args.other_faces:
        folder = with_other_faces(folder, args.other_faces, params.label.other_class, tmp / "tree")
    label = replace(params.label, from_="folders", path=str(folder))
    started = time.perf_counter()
    size = params.train.input_size
    build_dataset(label, size, tmp / "faces", tmp / "dataset")
    _, rows = load_dataset(tmp / "dataset")
    others = hold_out_characters(rows, args.other_show, params.split.seed, params.label.other_class)
    parts = split_rows(rows, args.test_per_class, params.split.seed)
    write_split(parts, tmp / "split")
    (tmp / "models").mkdir()
    (tmp / "metrics").mkdir()
    trained = train(
        params.train, tmp / "dataset", tmp / "split", tmp / "models", tmp / "metrics",
        tmp / "snap",
    )  # fmt: skip
    metrics = evaluate(
        tmp / "dataset",
        tmp / "split",
        tmp / "models",
        tmp / "metrics",
        params.predict,
        params.label.other_class,
    )
    record = {
        "folder": str(args.folder.name),
        "classes": len({r["label"] for r in parts["train"]}),
        "train_faces": len(parts["train"]),
        "test_faces": len(parts["test"]),
        "train": params.train.to_dict(),
        "test_accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "open_set": metrics["open_set"],
        "known_accuracy": known_accuracy(metrics, params.label.other_class),
        "other_faces": str(args.other_faces) if args.other_faces else None,
        "other_show_characters": others,
        "other_show": metrics.get("other_show"),
        "train_seconds": trained["seconds"],
        "images_per_second": trained["images_per_second"],
        "total_seconds": round(time.perf_counter() - started, 1),
        "command": "python bench/labeled_folder.py " + " ".join(sys.argv[1:]),
    }
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results[args.name] = record
    write_json(args.out, dict(sorted(results.items())))
    keys = ("test_accuracy", "known_accuracy", "open_set", "other_show", "train_seconds")
    print(json.dumps({k: record[k] for k in keys}))


if __name__ == "__main__":
    main()
