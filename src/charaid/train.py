"""train: fit a Chainer classifier on the train split, following Chainer's own examples.

`training.Trainer` with an `Evaluator` on the held-out split (for curves only: no model selection
happens on it), `LogReport`, `EpochPlot` (charaid.curves), `ProgressBar`, and a snapshot each
epoch so a killed run resumes where it stopped. Every random source is seeded from params.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
from chainer import iterators, optimizers, serializers, training
from chainer.training import extensions

from charaid import fastops
from charaid.atomic import write_json, write_npz
from charaid.augment import AugmentedDataset
from charaid.config import TrainParams
from charaid.curves import EpochPlot
from charaid.distributed import Workers
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.live import LiveLog
from charaid.models import build_model, classes_for, resize_crops, to_input
from charaid.openset import GALLERY, features_of, save_gallery
from charaid.trainer import (
    EpochCsv,
    EpochOrderSampler,
    SeededUpdater,
    epoch_snapshot,
    seed_everything,
)


def arrays_for(images: np.ndarray, ids: list[str], split_rows: list[dict], classes: list[str]):
    """(x, y) for the rows of a split manifest."""
    where = {crop_id: i for i, crop_id in enumerate(ids)}
    missing = [r["id"] for r in split_rows if r["id"] not in where]
    if missing:
        raise CharaidError(
            f"split lists crops the dataset lacks (e.g. {missing[0]}); run `dvc repro split`"
        )
    pick = np.array([where[r["id"]] for r in split_rows], dtype=np.int64)
    label_of = {c: i for i, c in enumerate(classes)}
    unknown = sorted({r["label"] for r in split_rows} - set(label_of))
    if unknown:
        raise CharaidError(
            f"split: test labels {', '.join(map(repr, unknown))} have no training crops; "
            "run `dvc repro split`"
        )
    y = np.array([label_of[r["label"]] for r in split_rows], dtype=np.int32)
    return to_input(images[pick]), y


def balanced_loss(y_train: np.ndarray, n_classes: int) -> Callable:
    """Softmax cross-entropy on logits shifted by the log of each class's share of the
    training crops (logit adjustment, Menon et al., ICLR 2021). The network then learns the
    class-balanced posterior: a class with few crops, typically `other` (every face outside
    the cast), is no longer out-voted by the cast's many at prediction, where logits are used
    unshifted."""
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float32)
    log_prior = np.log(np.maximum(counts, 1.0) / counts.sum()).astype(np.float32)

    def loss(y, t):
        return F.softmax_cross_entropy(y + np.broadcast_to(log_prior, y.shape).copy(), t)

    return loss


class DrawCounts(training.Extension):
    """Keeps an AugmentedDataset's per-example draw counts in the snapshot: its augmentations are
    seeded from them, so a resumed run augments exactly as the uninterrupted one did."""

    trigger = (1, "epoch")

    def __init__(self, dataset: AugmentedDataset) -> None:
        self.dataset = dataset

    def __call__(self, trainer: training.Trainer) -> None:
        pass

    def serialize(self, serializer) -> None:
        self.dataset.draws[...] = serializer("draws", self.dataset.draws)


def run_key(params: TrainParams, split_dir: Path, dataset_dir: Path) -> str:
    """Identifies a training run: a snapshot is only resumed by the very same run."""
    # the section as params.yaml spells it: the same key as before the typed config
    h = hashlib.sha256(json.dumps(params.to_dict(), sort_keys=True).encode())
    for path in (split_dir / "train.csv", split_dir / "test.csv", dataset_dir / "crops.npz"):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def train(
    params: TrainParams,
    dataset_dir: Path,
    split_dir: Path,
    model_dir: Path,
    metrics_dir: Path,
    work_dir: Path,
    workers: Workers | None = None,
) -> dict:
    """Train, then write `model_dir/model.npz`, `model_dir/model.json` and training metrics.

    `workers`: the MPI processes training together (charaid.distributed); only rank 0 writes
    outputs, and the other ranks return an empty dict.
    """
    workers = workers or Workers.single()
    from charaid.dataset import load_dataset

    images, rows = load_dataset(dataset_dir)
    images = resize_crops(images, params.input_size)
    ids = [r["id"] for r in rows]
    train_rows = read_index(split_dir / "train.csv")
    test_rows = read_index(split_dir / "test.csv")
    classes, train_rows, test_rows = classes_for(params.one_vs_rest, train_rows, test_rows)
    x_train, y_train = arrays_for(images, ids, train_rows, classes)
    x_test, y_test = arrays_for(images, ids, test_rows, classes)

    seed_everything(params.seed)
    if params.fast:
        fastops.tune_allocator()
        # N MPI processes already use N cores: split each one's kernels over its share only
        fastops.set_num_threads(max(1, fastops.default_num_threads() // workers.size))
    model = build_model(params.model, len(classes), params.fast, params.pretrained)
    seed = workers.seed(params.seed)
    if workers.distributed:  # own dropout masks per rank (rank 0's weights are broadcast)
        seed_everything(seed)
    lossfun = balanced_loss(y_train, len(classes)) if params.balance else F.softmax_cross_entropy
    classifier = L.Classifier(model, lossfun=lossfun)
    adam = fastops.FastAdam if params.fast else optimizers.Adam
    optimizer = workers.optimizer(adam(alpha=params.lr))
    optimizer.setup(classifier)

    if params.augment:
        train_data = AugmentedDataset(x_train, y_train, params.seed)
    else:
        train_data = chainer.datasets.TupleDataset(x_train, y_train)
    train_set = workers.scatter(train_data, params.seed)
    test_set = workers.scatter(
        chainer.datasets.TupleDataset(x_test, y_test), params.seed, equal=False
    )
    batch = min(workers.batch(params.batch_size), len(train_set))
    order = EpochOrderSampler(seed)
    train_iter = iterators.SerialIterator(train_set, batch, order_sampler=order)
    order.iterator = train_iter
    test_iter = iterators.SerialIterator(test_set, 256, repeat=False, shuffle=False)
    run_dir = work_dir / run_key(params, split_dir, dataset_dir)
    out_dir = run_dir / f"rank{workers.rank}" if workers.distributed else run_dir
    updater = SeededUpdater(seed, train_iter, optimizer)
    trainer = training.Trainer(updater, (params.epochs, "epoch"), out=str(out_dir))
    trainer.extend(workers.evaluator(extensions.Evaluator(test_iter, classifier)))
    if params.lr_decay == "linear":  # long runs end better with a small step (saved in snapshots)
        last_iteration = params.epochs * math.ceil(len(train_set) / batch)
        trainer.extend(extensions.LinearShift("alpha", (params.lr, 0.0), (0, last_iteration)))
    if workers.is_root:
        trainer.extend(
            extensions.observe_value("lr", lambda t: t.updater.get_optimizer("main").alpha)
        )
        trainer.extend(extensions.LogReport())
        trainer.extend(EpochCsv(metrics_dir / "train_log.csv"))
        trainer.extend(LiveLog(metrics_dir / "live"))
        for key, title, ylabel in (
            ("loss", "Classifier loss", "softmax cross-entropy"),
            ("accuracy", "Classifier accuracy", "share of crops named right"),
        ):
            names = {f"main/{key}": "training crops", f"validation/main/{key}": "held-out crops"}
            trainer.extend(EpochPlot(names, f"{key}.png", title, ylabel))
        trainer.extend(extensions.ProgressBar(update_interval=10))
    if isinstance(train_data, AugmentedDataset):
        trainer.extend(DrawCounts(train_data))
    trainer.extend(epoch_snapshot(), trigger=(1, "epoch"))
    snapshot = out_dir / "snapshot"
    if snapshot.is_file():  # a killed run of these very params and data: go on from its epoch
        serializers.load_npz(str(snapshot), trainer)
        if workers.is_root:
            print(f"train: resuming from the snapshot of epoch {updater.epoch} ({snapshot})")

    started = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - started
    if not workers.is_root:
        shutil.rmtree(out_dir, ignore_errors=True)
        return {}

    log = trainer.get_extension("LogReport").log
    last = log[-1]
    weights = serializers.DictionarySerializer()  # what save_npz writes, without timestamps
    weights.save(model)
    write_npz(model_dir / "model.npz", weights.target)
    meta = {
        "model": params.model,
        "classes": classes,
        "input_size": int(images.shape[1]),
        "fast": params.fast,
        "one_vs_rest": params.one_vs_rest,
        "mirror": params.augment,  # augmentation mirrors: inference averages both views
    }
    write_json(model_dir / "model.json", meta)
    # open-set scoring: the training faces, and the held-out ones its threshold comes from
    gallery = features_of(model, x_train, mirror=params.augment)
    save_gallery(model_dir / GALLERY, gallery, features_of(model, x_test, mirror=params.augment))
    for key in ("loss", "accuracy"):
        shutil.copyfile(out_dir / f"{key}.png", metrics_dir / f"train_{key}.png")
    shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "epochs": params.epochs,
        "train_images": len(x_train),
        "loss": round(last["main/loss"], 5),
        "accuracy": round(last["main/accuracy"], 5),
        "test_accuracy": round(last["validation/main/accuracy"], 5),
    }
    write_json(metrics_dir / "train.json", result)
    # Timing varies run to run, so it lives apart from the deterministic metrics.
    speed = {
        "seconds": round(seconds, 1),
        "images_per_second": round(len(x_train) * params.epochs / seconds, 1),
        "processes": workers.size,
    }
    write_json(metrics_dir / "train_speed.json", speed)
    return {**result, **speed}
