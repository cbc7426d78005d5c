"""train_detector: fit charaid's own face detector (FaceNet) on every annotated source given.

Samples are augmented square patches drawn afresh each epoch (`charaid.detector.scenes`) from
YOLO folders, ground-truth frames and, optionally, composites of pasted face crops. Training
follows Chainer's examples: `training.Trainer` with `LogReport`, `EpochPlot` (charaid.curves),
`ProgressBar`, a snapshot each epoch (a killed run resumes where it stopped) and an extension
that scores the detector on whole validation pictures (pictures held out of training, seeded)
after each epoch, or every few when epochs are short (`validation_epochs`). Every random draw
is seeded from (seed, epoch, sample), so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import chainer
import numpy as np
from chainer import iterators, training
from chainer.training import extensions, triggers

from charaid import fastops
from charaid.atomic import write_json, write_text
from charaid.config import DetectFacesParams, TrainDetectorParams
from charaid.curves import EpochPlot, draw_curves
from charaid.detector import backend, heatmap
from charaid.detector.folded import fold
from charaid.detector.net import FaceNet
from charaid.detector.pseudo import pseudo_scenes
from charaid.detector.scenes import Draw, Scene, crop_pool, draw_sample, truth_scenes, yolo_scenes
from charaid.detector.threshold import (
    FLOOR,
    UNCALIBRATED,
    at_cut,
    calibrate_bands,
    pr_curve,
)
from charaid.errors import CharaidError
from charaid.media import read_image
from charaid.trainer import (
    EpochCsv,
    SeededUpdater,
    derived_seed,
    epoch_snapshot,
    seed_everything,
)

# metrics/detector_log.csv: every epoch's loss; metrics/detector_val.csv: the scored epochs only
LOG_COLUMNS = {
    "epoch": "epoch",
    "loss": "main/loss",
    "heat_loss": "main/heat",
    "size_loss": "main/size",
    "offset_loss": "main/offset",
}
VAL_COLUMNS = {
    "epoch": "epoch",
    "val_recall": "validation/recall",
    "val_precision": "validation/precision",
    "val_min_score": "validation/min_score",
}
LOGS = {
    "detector_log.csv": (LOG_COLUMNS, None),
    "detector_val.csv": (VAL_COLUMNS, "validation/recall"),
}


# the per-epoch pictures (metrics/detector_<name>.png): {name: (log keys, title, y label)}
PLOTS = {
    "loss": (
        {
            "main/loss": "total",
            "main/heat": "face centres (focal loss)",
            "main/size": "box side (L1, log)",
            "main/offset": "centre offset (L1)",
        },
        "Detector training loss",
        "loss per face",
    ),
    "val": (
        {"validation/recall": "recall", "validation/precision": "precision"},
        "Detector on its validation pictures (IoU 0.5, best-F1 cuts per face size)",
        "share of faces / of detections",
    ),
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


def best_threshold(curve: list[dict]) -> dict:
    """The point of a precision-recall curve (IoU 0.5) with the best F1: its recall and precision,
    and a threshold halfway between the lowest score it keeps and the next score below, which
    keeps the same detections on these pictures with a margin for new ones (demo, 24 epochs,
    held-out episodes: recall 0.984 -> 0.995, precision 0.998 -> 0.995, against a cut at the
    lowest kept score).
    A partly trained net's scores are low but well ordered (dexter val after 8 epochs: at 0.3 it
    kept 0.21 of the faces, at 0.15 0.91 at IoU 0.3), so a fixed cut would throw away what it
    found."""
    if not curve:
        return {"min_score": UNCALIBRATED, "recall": 0.0, "precision": 0.0}

    def f1(row: dict) -> float:
        r, p = row["recall"], row["precision"]
        return 2 * r * p / (r + p) if r + p else 0.0

    k = max(range(len(curve)), key=lambda i: (f1(curve[i]), curve[i]["score"]))
    best = curve[k]
    below = curve[k + 1]["score"] if k + 1 < len(curve) else FLOOR  # rows run best score first
    return {
        "min_score": round((best["score"] + below) / 2, 4),
        "recall": round(best["recall"], 4),
        "precision": round(best["precision"], 4),
    }


def score_pictures(net: FaceNet, scenes: list[Scene], input_size: int, mirror: bool) -> dict:
    """`net` on whole pictures (as detect_faces runs it, with its mirror view if `mirror`): the
    single score cut with the best F1 at IoU 0.5 (`best_threshold`), the per-size cuts that
    improve on it (`calibrate_bands`), and the recall and precision those keep."""
    frames = []
    run = fold(net)  # as detect_faces runs it: batch norm folded in
    for scene in scenes:
        image = read_image(scene.picture)
        x, scale = backend.letterbox(image, input_size)
        maps = backend.head_maps(run, x, mirror)
        found = heatmap.decode(maps, FLOOR)  # boxes in input pixels: size bands
        truths = [tuple(v * scale for v in box) for box in scene.boxes]
        frames.append(([b for b, _ in found], [s for _, s in found], truths))
    single = best_threshold(pr_curve(frames))
    cut = calibrate_bands(frames, single["min_score"])
    kept = at_cut(frames, cut)
    return {
        "min_score": single["min_score"],
        "min_score_by_side": list(cut.scores),
        "recall": round(kept["recall"], 4),
        "precision": round(kept["precision"], 4),
    }


class Validation(training.Extension):
    """Scores the detector on whole validation pictures (trigger: `validation_epochs`)."""

    priority = training.PRIORITY_WRITER

    def __init__(self, net, scenes, input_size, mirror) -> None:
        self.net, self.scenes, self.input_size, self.mirror = net, scenes, input_size, mirror
        self.last: dict | None = None  # the latest epoch's calibration

    def __call__(self, trainer: training.Trainer) -> None:
        if self.scenes:
            self.last = score_pictures(self.net, self.scenes, self.input_size, self.mirror)
            scalars = {k: v for k, v in self.last.items() if not isinstance(v, list)}
            chainer.report({f"validation/{k}": v for k, v in scalars.items()})


VAL_STEPS = 100  # training steps at least between two validation passes

# Patches a detector for real art needs, whatever the number of pictures. dexter, 204 training
# pictures: 4,896 patches found R 0.73 at P 0.63 (IoU 0.5), 30,000 0.87 at 0.86, 60,000 0.91 at
# 0.85; 940 pictures, seeds 0 / 1: F1 0.90 / 0.88 after 30,000, 0.93 / 0.91 after 60,000
# (docs/measurements.md)
REAL_ART_PATCHES = 60_000


def validation_epochs(epochs: int, steps_per_epoch: int) -> triggers.ManualScheduleTrigger:
    """The epochs after which the detector is scored (and its curves drawn): every epoch when
    an epoch has VAL_STEPS steps or more, else every few epochs, and always the last (its
    threshold is the one calibrated). The demo's epochs are 32 steps: scoring each one took
    an eighth of its training time."""
    every = -(-VAL_STEPS // max(1, steps_per_epoch))
    points = sorted({*range(every, epochs + 1, every), epochs})
    return triggers.ManualScheduleTrigger(points, "epoch")


def real_art_per_epoch(epochs: int) -> int:
    """Patches an epoch for REAL_ART_PATCHES in all."""
    return -(-REAL_ART_PATCHES // epochs)


def patches_per_epoch(params: TrainDetectorParams, pictures: int) -> int:
    """`samples_per_epoch`, or with 0 one patch per training picture; with annotated `scenes`
    (real art) at least enough that training sees REAL_ART_PATCHES in all, however few the
    pictures (the demo's drawn cast needs fewer)."""
    if params.samples_per_epoch:
        return params.samples_per_epoch
    if params.scenes:
        return max(pictures, real_art_per_epoch(params.epochs))
    return pictures


def short_training_note(params: TrainDetectorParams, samples: int) -> str | None:
    """A line saying so when a detector for annotated scenes (`scenes`, real art) trains on
    fewer patches than REAL_ART_PATCHES; None otherwise."""
    total = samples * params.epochs
    if not params.scenes or total >= REAL_ART_PATCHES:
        return None
    return (
        f"train_detector: {total:,} training patches in all ({params.epochs} epochs of"
        f" {samples}); a detector for real art wants about {REAL_ART_PATCHES:,} whatever the"
        " number of pictures: set train_detector.samples_per_epoch: 0 (enough, automatically)"
        f" or {real_art_per_epoch(params.epochs):,} (about 20 minutes on 2 cores)"
    )


def gather_scenes(
    params: TrainDetectorParams, frames_dir: Path, detect: DetectFacesParams | None = None
) -> list[Scene]:
    """Every annotated picture the params name: YOLO folders, ground-truth frames, then the
    pseudo-boxes of `params.pseudo` (with `detect`'s settings for that backend) on the frames
    of the other videos, the held-out ones aside."""
    scenes: list[Scene] = []
    for folder in params.scenes:
        scenes += yolo_scenes(folder)
    with_truth: set[str] = set()
    if params.truth:
        truth_dir = Path(params.truth)
        videos = sorted(p.stem for p in truth_dir.glob("*.csv"))
        keep = [v for v in videos if v not in params.holdout_videos]
        scenes += truth_scenes(frames_dir, truth_dir, keep)
        with_truth = set(videos)
    if params.pseudo:
        if detect is None:
            raise CharaidError("train_detector.pseudo needs detect_faces' settings")
        skip = with_truth | set(params.holdout_videos)
        scenes += pseudo_scenes(frames_dir, skip, detect, params.pseudo, params.pseudo_min_score)
    return scenes


# at most this share of the pictures is held out to reach `val_pictures`
VAL_MAX_SHARE = 0.25


def split_scenes(scenes: list[Scene], fraction: float, least: int, seed: int):
    """(train, validation): a hash of each picture's group (else its name in its folder) and the
    seed draws a number in [0, 1); groups are held out lowest draw first until `fraction` of
    the pictures, or `least` if that is more (at most VAL_MAX_SHARE of them). So moving the
    folder moves no picture to the other side, and a folder sorted by character or episode
    gives a validation set from all of it (cut in folder order, dexter's 60 were 50 of dad and
    10 of deedee).
    Frames of one stretch of a video go to one side: a validation frame whose shot was trained
    on scores like a training frame, and the score cut chosen on it is too strict for new
    episodes. A cut chosen on a few dozen pictures moves from run to run: dexter's 1,000
    training pictures, seed 1, R / P on its val split 0.958 / 0.872 with 60 held out, 0.935 /
    0.941 with 150 (docs/measurements.md)."""

    def key(scene: Scene) -> str:
        return scene.group or scene.name

    def draw(group: str) -> float:
        digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
        return int.from_bytes(digest[:4], "little") / 2**32

    sizes = Counter(key(s) for s in scenes)
    target = max(fraction * len(scenes), min(least, VAL_MAX_SHARE * len(scenes)))
    held: set[str] = set()
    count = 0
    for group in sorted(sizes, key=lambda g: (draw(g), g)):
        if count >= target:
            break
        held.add(group)
        count += sizes[group]
    return [s for s in scenes if key(s) not in held], [s for s in scenes if key(s) in held]


def run_key(params: TrainDetectorParams, scenes: list[Scene]) -> str:
    # the section as params.yaml spells it: the same key as before the typed config
    h = hashlib.sha256(json.dumps(params.to_dict(), sort_keys=True).encode())
    for scene in scenes:
        h.update(f"{scene.picture}:{scene.boxes}".encode())
    return h.hexdigest()[:16]


def train_detector(
    params: TrainDetectorParams,
    frames_dir: Path,
    model_dir: Path,
    metrics_dir: Path,
    work_dir: Path,
    detect: DetectFacesParams | None = None,
) -> dict:
    """Train, then write `model_dir/detector.{npz,json}`, metrics and the per-epoch log.

    With nothing to learn from (no scenes, no truth) the folder only says so, and the
    `learned` backend refuses it with what to set: a show without annotations can still run
    the pipeline on a classical backend."""
    scenes = gather_scenes(params, frames_dir, detect)
    if not scenes:
        backend.save_untrained(model_dir)
        for name, (columns, _) in LOGS.items():
            write_text(metrics_dir / name, ",".join(columns) + "\n")
        for name, (names, title, ylabel) in PLOTS.items():  # dvc.yaml's plots must exist
            path = metrics_dir / f"detector_{name}.png"
            draw_curves([], names, path, title, ylabel, "no annotated pictures: nothing trained")
        result = {"epochs": 0, "train_pictures": 0, "val_pictures": 0, "loss": None}
        write_json(metrics_dir / "train_detector.json", {**result, "trained": False})
        return {**result, "val_recall": None, "val_precision": None, "seconds": 0.0}
    train_scenes, val_scenes = split_scenes(
        scenes, params.val_fraction, params.val_pictures, params.seed
    )
    if not train_scenes:
        raise CharaidError("train_detector: every picture went to validation; lower val_fraction")
    draw = Draw(
        params.input_size,
        params.patch,
        composites=params.composites,
        crop_face=params.crop_face,
    )
    crops = crop_pool(params.crops) if params.crops else None
    seed_everything(params.seed)
    fastops.tune_allocator()
    if params.init:  # fine-tune a trained detector: its own architecture and weights
        net, _ = backend.load(params.init)
    else:
        net = FaceNet(params.widths, params.neck)
    model = DetectorLoss(net)
    optimizer = fastops.FastAdam(alpha=params.lr)
    optimizer.setup(model)
    samples = patches_per_epoch(params, len(train_scenes))
    if note := short_training_note(params, samples):
        print(note)
    data = Patches(train_scenes, draw, params.seed, samples, params.epochs, crops)
    # one thread draws the next batch while the network trains on this one
    it = iterators.MultithreadIterator(
        data, params.batch_size, n_threads=1, order_sampler=EpochSlices(samples)
    )
    run_dir = work_dir / run_key(params, scenes)
    updater = SeededUpdater(params.seed, it, optimizer, converter=convert)
    trainer = training.Trainer(updater, (params.epochs, "epoch"), out=str(run_dir))
    steps = -(-samples // params.batch_size)  # per epoch
    last = params.epochs * steps
    # the step falls linearly over the second half: the last epochs settle instead of bouncing
    trainer.extend(
        extensions.LinearShift("alpha", (params.lr, params.lr * 0.05), (last // 2, last))
    )
    validation = Validation(net, val_scenes, params.input_size, params.mirror)
    # a trigger each: a schedule trigger fires once per epoch it is asked about
    trainer.extend(validation, trigger=validation_epochs(params.epochs, steps))
    trainer.extend(extensions.LogReport())
    for name, (columns, required) in LOGS.items():
        trainer.extend(EpochCsv(metrics_dir / name, columns, required))
    for name, (names, title, ylabel) in PLOTS.items():
        plot = EpochPlot(names, f"{name}.png", title, ylabel)
        trainer.extend(plot, trigger=validation_epochs(params.epochs, steps))
    trainer.extend(extensions.ProgressBar(update_interval=5))
    trainer.extend(epoch_snapshot(), trigger=(1, "epoch"))
    snapshot = run_dir / "snapshot"
    if snapshot.is_file():
        chainer.serializers.load_npz(str(snapshot), trainer)
        print(f"train_detector: resuming from the snapshot of epoch {updater.epoch} ({snapshot})")
    started = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - started

    log = trainer.get_extension("LogReport").log
    # the last epoch's calibrated threshold travels with the weights (detector_min_score: auto);
    # a resumed run that had nothing left to train scores once more
    if val_scenes and validation.last is None:
        validation.last = score_pictures(net, val_scenes, params.input_size, params.mirror)
    calibrated = validation.last["min_score"] if validation.last else UNCALIBRATED
    cuts = {"min_score": calibrated}
    if validation.last:
        cuts["min_score_by_side"] = validation.last["min_score_by_side"]
    # the views the cuts were chosen on travel with them
    backend.save(net, model_dir, params.input_size, {**cuts, "mirror": params.mirror})
    for name in PLOTS:
        if (run_dir / f"{name}.png").is_file():
            shutil.copyfile(run_dir / f"{name}.png", metrics_dir / f"detector_{name}.png")
    shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "epochs": params.epochs,
        "train_pictures": len(train_scenes),
        "val_pictures": len(val_scenes),
        "loss": round(log[-1]["main/loss"], 5),
        "val_recall": log[-1].get("validation/recall"),
        "val_precision": log[-1].get("validation/precision"),
        **cuts,
    }
    write_json(metrics_dir / "train_detector.json", result)
    return {**result, "seconds": round(seconds, 1)}
