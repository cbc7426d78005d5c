"""train: fit a Chainer classifier on the train split, following Chainer's own examples.

`training.Trainer` with an `Evaluator` on the held-out split (for curves only: no model selection
happens on it), `LogReport`, `PlotReport`, `ProgressBar`, and a snapshot each epoch so a killed
run resumes where it stopped. Every random source is seeded from params.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import time
from pathlib import Path

import chainer
import chainer.links as L
import numpy as np
from chainer import iterators, optimizers, serializers, training
from chainer.training import extensions

from charaid.atomic import atomic_path, write_json
from charaid.augment import AugmentedDataset
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.models import build_model, classes_for, resize_crops
from charaid.openset import GALLERY, features_of, save_gallery

LOG_FIELDS = ["epoch", "loss", "accuracy", "test_loss", "test_accuracy"]


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) BGR -> float32 (N, 3, H, W) in [0, 1], contiguous for the convolutions."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # Chainer's initializers and dropout draw from numpy's global state


def arrays_for(images: np.ndarray, ids: list[str], split_rows: list[dict], classes: list[str]):
    """(x, y) for the rows of a split manifest."""
    where = {crop_id: i for i, crop_id in enumerate(ids)}
    missing = [r["id"] for r in split_rows if r["id"] not in where]
    if missing:
        raise CharaidError(f"split lists crops the dataset lacks (e.g. {missing[0]}); rerun split")
    pick = np.array([where[r["id"]] for r in split_rows], dtype=np.int64)
    label_of = {c: i for i, c in enumerate(classes)}
    y = np.array([label_of[r["label"]] for r in split_rows], dtype=np.int32)
    return to_input(images[pick]), y


class EpochCsv(training.Extension):
    """Append each epoch's LogReport entry to a CSV that `dvc plots` reads."""

    trigger = (1, "epoch")
    priority = training.PRIORITY_READER

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, trainer: training.Trainer) -> None:
        log = trainer.get_extension("LogReport").log
        rows = [
            {
                "epoch": e["epoch"],
                "loss": e.get("main/loss"),
                "accuracy": e.get("main/accuracy"),
                "test_loss": e.get("validation/main/loss"),
                "test_accuracy": e.get("validation/main/accuracy"),
            }
            for e in log
        ]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}
                )


def run_key(params: dict, split_dir: Path, dataset_dir: Path) -> str:
    """Identifies a training run: a snapshot is only resumed by the very same run."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path in (split_dir / "train.csv", split_dir / "test.csv", dataset_dir / "crops.npz"):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def train(
    params: dict,
    dataset_dir: Path,
    split_dir: Path,
    model_dir: Path,
    metrics_dir: Path,
    work_dir: Path,
) -> dict:
    """Train, then write `model_dir/model.npz`, `model_dir/model.json` and training metrics."""
    from charaid.labels import load_dataset

    images, rows = load_dataset(dataset_dir)
    # keys added by issue 4; a params dict without them means the seed's behaviour
    params = {"augment": False, "pretrained": "", "one_vs_rest": "", **params}
    images = resize_crops(images, params.get("input_size") or images.shape[1])
    ids = [r["id"] for r in rows]
    train_rows = read_index(split_dir / "train.csv")
    test_rows = read_index(split_dir / "test.csv")
    classes, train_rows, test_rows = classes_for(params["one_vs_rest"], train_rows, test_rows)
    x_train, y_train = arrays_for(images, ids, train_rows, classes)
    x_test, y_test = arrays_for(images, ids, test_rows, classes)

    seed_everything(params["seed"])
    if params["fast"]:
        from charaid.fastops import tune_allocator

        tune_allocator()
    model = build_model(params["model"], len(classes), params["fast"], params["pretrained"])
    classifier = L.Classifier(model)
    optimizer = optimizers.Adam(alpha=params["lr"])
    optimizer.setup(classifier)

    batch = min(params["batch_size"], len(x_train))
    order = iterators.ShuffleOrderSampler(np.random.RandomState(params["seed"]))
    if params["augment"]:
        train_data = AugmentedDataset(x_train, y_train, params["seed"])
    else:
        train_data = chainer.datasets.TupleDataset(x_train, y_train)
    train_iter = iterators.SerialIterator(train_data, batch, order_sampler=order)
    test_iter = iterators.SerialIterator(
        chainer.datasets.TupleDataset(x_test, y_test), 256, repeat=False, shuffle=False
    )
    run_dir = work_dir / run_key(params, split_dir, dataset_dir)
    updater = training.updaters.StandardUpdater(train_iter, optimizer)
    trainer = training.Trainer(updater, (params["epochs"], "epoch"), out=str(run_dir))
    trainer.extend(extensions.Evaluator(test_iter, classifier))
    trainer.extend(extensions.LogReport())
    trainer.extend(EpochCsv(metrics_dir / "train_log.csv"))
    for key in ("loss", "accuracy"):
        trainer.extend(
            extensions.PlotReport(
                [f"main/{key}", f"validation/main/{key}"], "epoch", filename=f"{key}.png"
            )
        )
    trainer.extend(extensions.ProgressBar(update_interval=10))
    trainer.extend(extensions.snapshot(filename="snapshot", autoload=True), trigger=(1, "epoch"))

    started = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - started

    log = trainer.get_extension("LogReport").log
    last = log[-1]
    with atomic_path(model_dir / "model.npz") as tmp:
        serializers.save_npz(str(tmp), model)
    meta = {
        "model": params["model"],
        "classes": classes,
        "input_size": int(images.shape[1]),
        "fast": params["fast"],
        "one_vs_rest": params["one_vs_rest"],
    }
    write_json(model_dir / "model.json", meta)
    save_gallery(model_dir / GALLERY, features_of(model, x_train))  # open-set scoring
    for key in ("loss", "accuracy"):
        shutil.copyfile(run_dir / f"{key}.png", metrics_dir / f"train_{key}.png")
    shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "epochs": params["epochs"],
        "train_images": len(x_train),
        "loss": round(last["main/loss"], 5),
        "accuracy": round(last["main/accuracy"], 5),
        "test_accuracy": round(last["validation/main/accuracy"], 5),
    }
    write_json(metrics_dir / "train.json", result)
    # Timing varies run to run, so it lives apart from the deterministic metrics.
    speed = {
        "seconds": round(seconds, 1),
        "images_per_second": round(len(x_train) * params["epochs"] / seconds, 1),
    }
    write_json(metrics_dir / "train_speed.json", speed)
    return {**result, **speed}
