"""train_detector: fit charaid's own face detector (FaceNet) on every annotated source given.

Samples are augmented square patches drawn afresh each epoch (`charaid.detector.scenes`) from
YOLO folders, ground-truth frames and, optionally, composites of pasted face crops. Training
follows Chainer's examples: `training.Trainer` with `LogReport`, `PlotReport`, `ProgressBar`,
a snapshot each epoch (a killed run resumes where it stopped) and an extension that scores the
detector on whole validation pictures (pictures held out of training, seeded) after each epoch.
Every random draw is seeded from (seed, epoch, sample), so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import chainer
import numpy as np
from chainer import iterators, training
from chainer.training import extensions

from charaid import fastops
from charaid.atomic import write_json, write_text
from charaid.detector import backend, heatmap
from charaid.detector.net import FaceNet
from charaid.detector.scenes import Draw, Scene, crop_pool, draw_sample, truth_scenes, yolo_scenes
from charaid.errors import CharaidError
from charaid.media import read_image
from charaid.train import EpochCsv, SeededUpdater, derived_seed, seed_everything

LOG_COLUMNS = {
    "epoch": "epoch",
    "loss": "main/loss",
    "heat_loss": "main/heat",
    "size_loss": "main/size",
    "offset_loss": "main/offset",
    "val_recall": "validation/recall",
    "val_precision": "validation/precision",
}


class Patches(chainer.dataset.DatasetMixin):
    """`samples` augmented patches for each of `epochs` epochs: patch i is drawn from (seed,
    epoch, index in the epoch) = (seed, i // samples, i % samples): the scene, the zoom, the
    crop, the colours. The index alone says what to draw, so a prefetching iterator and a
    resumed run draw exactly the same patches."""

    def __init__(
        self, scenes: list[Scene], draw: Draw, seed: int, samples: int, epochs: int, crops=None
    ):
        self.scenes, self.draw, self.seed, self.samples = scenes, draw, seed, samples
        self.epochs, self.crops = epochs, crops

    def __len__(self) -> int:
        return self.samples * self.epochs

    def get_example(self, i: int) -> tuple[np.ndarray, dict]:
        epoch, k = divmod(int(i), self.samples)
        rng = np.random.default_rng(derived_seed(self.seed, "sample", epoch, k))
        scene = self.scenes[int(rng.integers(len(self.scenes)))]
        image = read_image(scene.picture)
        if image is None:
            raise CharaidError(f"{scene.picture}: cannot be read as a picture")
        patch, boxes = draw_sample(image, scene.boxes, rng, self.draw, self.crops)
        target = heatmap.encode(boxes, self.draw.patch, self.draw.patch)
        return patch, target


class EpochSlices(iterators.OrderSampler):
    """Epoch e walks patches e * samples ... (e + 1) * samples - 1, in order."""

    def __init__(self, samples: int) -> None:
        self.samples = samples
        self.first = True  # the iterator's own first call, before any snapshot is loaded

    def __call__(self, current_order: np.ndarray, current_position: int) -> np.ndarray:
        if self.first:
            self.first = False
            return np.arange(self.samples)
        return current_order + self.samples


def convert(batch: list, device=None) -> dict:
    """Patches (uint8 HWC BGR) -> x (N, 3, P, P) in [0, 1], with the collated targets."""
    x = np.stack([p for p, _ in batch]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    targets = heatmap.collate([t for _, t in batch])
    return {"x": np.ascontiguousarray(x), **targets}


class DetectorLoss(chainer.Chain):
    def __init__(self, net: FaceNet) -> None:
        super().__init__()
        with self.init_scope():
            self.net = net

    def forward(self, x: np.ndarray, **targets: np.ndarray) -> chainer.Variable:
        total, parts = heatmap.loss(self.net(x), targets)
        chainer.report({"loss": total, **parts}, self)
        return total


def score_pictures(net: FaceNet, scenes: list[Scene], input_size: int, min_score: float) -> dict:
    """Recall and precision at IoU 0.5 of `net` on whole pictures (as detect_faces runs it)."""
    from charaid.detect_eval import Tally

    tally = Tally()
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        for scene in scenes:
            image = read_image(scene.picture)
            x, scale = backend.letterbox(image, input_size)
            found = heatmap.decode(net(x).array[0], min_score, scale)
            tally.add([box for box, _ in found], list(scene.boxes))
    s = tally.summary()
    return {"recall": s["recall_iou50"], "precision": s["precision_iou50"]}


class Validation(training.Extension):
    trigger = (1, "epoch")
    priority = training.PRIORITY_WRITER

    def __init__(self, net, scenes, input_size, min_score) -> None:
        self.net, self.scenes = net, scenes
        self.input_size, self.min_score = input_size, min_score

    def __call__(self, trainer: training.Trainer) -> None:
        if self.scenes:
            result = score_pictures(self.net, self.scenes, self.input_size, self.min_score)
            chainer.report({f"validation/{k}": v for k, v in result.items()})


def gather_scenes(params: dict, frames_dir: Path) -> list[Scene]:
    """Every annotated picture the params name: YOLO folders, then ground-truth frames."""
    scenes: list[Scene] = []
    for folder in params["scenes"]:
        scenes += yolo_scenes(folder)
    if params["truth"]:
        truth_dir = Path(params["truth"])
        videos = sorted(p.stem for p in truth_dir.glob("*.csv"))
        keep = [v for v in videos if v not in params["holdout_videos"]]
        scenes += truth_scenes(frames_dir, truth_dir, keep)
    return scenes


def split_scenes(scenes: list[Scene], fraction: float, limit: int, seed: int):
    """(train, validation): each picture's side decided by a hash of its path and the seed,
    so adding pictures never moves the others."""

    def held(scene: Scene) -> bool:
        digest = hashlib.sha256(f"{seed}:{scene.picture}".encode()).digest()
        return int.from_bytes(digest[:4], "little") / 2**32 < fraction

    val = [s for s in scenes if held(s)][:limit]
    chosen = {s.picture for s in val}
    return [s for s in scenes if s.picture not in chosen], val


def run_key(params: dict, scenes: list[Scene]) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for scene in scenes:
        h.update(f"{scene.picture}:{scene.boxes}".encode())
    return h.hexdigest()[:16]


def train_detector(
    params: dict, frames_dir: Path, model_dir: Path, metrics_dir: Path, work_dir: Path
) -> dict:
    """Train, then write `model_dir/detector.{npz,json}`, metrics and the per-epoch log.

    With nothing to learn from (no scenes, no truth) the folder only says so, and the
    `learned` backend refuses it with what to set: a show without annotations can still run
    the pipeline on a classical backend."""
    scenes = gather_scenes(params, frames_dir)
    if not scenes:
        backend.save_untrained(model_dir)
        write_text(metrics_dir / "detector_log.csv", ",".join(LOG_COLUMNS) + "\n")
        result = {"epochs": 0, "train_pictures": 0, "val_pictures": 0, "loss": None}
        write_json(metrics_dir / "train_detector.json", {**result, "trained": False})
        return {**result, "val_recall": None, "val_precision": None, "seconds": 0.0}
    train_scenes, val_scenes = split_scenes(
        scenes, params["val_fraction"], params["val_pictures"], params["seed"]
    )
    if not train_scenes:
        raise CharaidError("train_detector: every picture went to validation; lower val_fraction")
    draw = Draw(
        params["input_size"],
        params["patch"],
        composites=params["composites"],
        crop_face=params["crop_face"],
    )
    crops = crop_pool(params["crops"]) if params["crops"] else None
    seed_everything(params["seed"])
    fastops.tune_allocator()
    if params["init"]:  # fine-tune a trained detector: its own architecture and weights
        net, _ = backend.load(params["init"])
    else:
        net = FaceNet(tuple(params["widths"]), params["neck"])
    model = DetectorLoss(net)
    optimizer = fastops.FastAdam(alpha=params["lr"])
    optimizer.setup(model)
    samples = params["samples_per_epoch"] or len(train_scenes)
    data = Patches(train_scenes, draw, params["seed"], samples, params["epochs"], crops)
    # one thread draws the next batch while the network trains on this one
    it = iterators.MultithreadIterator(
        data, params["batch_size"], n_threads=1, order_sampler=EpochSlices(samples)
    )
    run_dir = work_dir / run_key(params, scenes)
    updater = SeededUpdater(params["seed"], it, optimizer, converter=convert)
    trainer = training.Trainer(updater, (params["epochs"], "epoch"), out=str(run_dir))
    last = params["epochs"] * -(-samples // params["batch_size"])
    # the step falls linearly over the second half: the last epochs settle instead of bouncing
    trainer.extend(
        extensions.LinearShift("alpha", (params["lr"], params["lr"] * 0.05), (last // 2, last))
    )
    trainer.extend(Validation(net, val_scenes, params["input_size"], params["min_score"]))
    trainer.extend(extensions.LogReport())
    trainer.extend(EpochCsv(metrics_dir / "detector_log.csv", LOG_COLUMNS))
    trainer.extend(
        extensions.PlotReport(["main/loss", "main/heat", "main/size"], "epoch", filename="loss.png")
    )
    trainer.extend(
        extensions.PlotReport(
            ["validation/recall", "validation/precision"], "epoch", filename="val.png"
        )
    )
    trainer.extend(extensions.ProgressBar(update_interval=5))
    trainer.extend(extensions.snapshot(filename="snapshot"), trigger=(1, "epoch"))
    snapshot = run_dir / "snapshot"
    if snapshot.is_file():
        chainer.serializers.load_npz(str(snapshot), trainer)
        print(f"train_detector: resuming from the snapshot of epoch {updater.epoch} ({snapshot})")
    started = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - started

    log = trainer.get_extension("LogReport").log
    backend.save(net, model_dir, params["input_size"], {"min_score": params["min_score"]})
    for name in ("loss", "val"):
        if (run_dir / f"{name}.png").is_file():
            shutil.copyfile(run_dir / f"{name}.png", metrics_dir / f"detector_{name}.png")
    shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "epochs": params["epochs"],
        "train_pictures": len(train_scenes),
        "val_pictures": len(val_scenes),
        "loss": round(log[-1]["main/loss"], 5),
        "val_recall": log[-1].get("validation/recall"),
        "val_precision": log[-1].get("validation/precision"),
    }
    write_json(metrics_dir / "train_detector.json", result)
    return {**result, "seconds": round(seconds, 1)}
