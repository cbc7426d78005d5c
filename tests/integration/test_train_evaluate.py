"""Train a real (tiny) Chainer model on separable crops, then evaluate and predict with it."""

import json

import cv2
import numpy as np
import pytest

from charaid.errors import CharaidError
from charaid.evaluate import evaluate
from charaid.frames import read_index
from charaid.predict import Recognizer
from charaid.train import train
from tests.helpers import CLASSES, section_with, softmax_at


def test_training_writes_model_metrics_and_curves(trained):
    tmp, result = trained
    meta = json.loads((tmp / "models" / "model.json").read_text())
    assert meta["classes"] == sorted(CLASSES) and meta["input_size"] == 50
    log = read_index(tmp / "metrics" / "train_log.csv")
    assert [int(r["epoch"]) for r in log] == [1, 2, 3, 4]
    assert float(log[-1]["loss"]) < float(log[0]["loss"])
    assert result["test_accuracy"] >= 0.9
    for name in ("train.json", "train_speed.json", "train_loss.png", "train_accuracy.png"):
        assert (tmp / "metrics" / name).is_file()
    assert not (tmp / "snapshots").exists() or not any((tmp / "snapshots").iterdir())


def test_evaluate_reports_per_class_and_confusion(trained):
    tmp, _ = trained
    metrics = evaluate(
        tmp / "dataset", tmp / "split", tmp / "models", tmp / "metrics", softmax_at(0.5), "other"
    )
    assert metrics["accuracy"] >= 0.9 and metrics["test_faces"] == 12
    assert set(metrics["per_class"]) == set(CLASSES)
    assert all(v["support"] == 4 for v in metrics["per_class"].values())
    confusion = read_index(tmp / "metrics" / "confusion.csv")
    assert len(confusion) == 12 and set(confusion[0]) == {"actual", "predicted"}


def test_recognizer_threshold_gives_unknown(trained):
    tmp, _ = trained
    rec = Recognizer(tmp / "models")
    probs = np.array([0.5, 0.3, 0.2])
    assert rec.name(probs, 0.4)[0] == rec.classes[0]
    name, top = rec.name(probs, 0.6)
    assert name == "unknown" and [t[0] for t in top] == rec.classes
    crop = np.zeros((1, 50, 50, 3), np.uint8)
    cv2.circle(crop[0], (25, 25), 14, CLASSES["Sora"], -1)
    assert rec.classes[int(rec.probabilities(crop).argmax())] == "Sora"


def test_model_from_another_class_set_is_refused(trained, tmp_path):
    tmp, _ = trained
    meta = json.loads((tmp / "models" / "model.json").read_text())
    meta["classes"] = ["a", "b", "c", "d", "e"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    (tmp_path / "model.npz").write_bytes((tmp / "models" / "model.npz").read_bytes())
    with pytest.raises(CharaidError, match="does not match model.json"):
        Recognizer(tmp_path)
    with pytest.raises(CharaidError, match="no trained model"):
        Recognizer(tmp_path / "empty")


def test_linear_lr_decay_falls_towards_zero_by_the_last_update(trained, tmp_path):
    tmp, _ = trained
    params = section_with(
        "train",
        model="seed_cnn",
        seed=0,
        epochs=3,
        batch_size=10,
        lr=0.002,
        fast=True,
        lr_decay="linear",
    )
    for sub in ("models", "metrics"):
        (tmp_path / sub).mkdir()
    train(
        params,
        tmp / "dataset",
        tmp / "split",
        tmp_path / "models",
        tmp_path / "metrics",
        tmp_path / "snapshots",
    )
    lrs = [float(r["lr"]) for r in read_index(tmp_path / "metrics" / "train_log.csv")]
    # 18 updates: the last one's step is lr/18 (the logged value is the one the update used)
    assert lrs[0] < 0.002 and lrs == sorted(lrs, reverse=True) and 0 < lrs[-1] <= 0.002 / 10
    # constant (the default) stays at lr
    constant = [float(r["lr"]) for r in read_index(tmp / "metrics" / "train_log.csv")]
    assert constant == [0.002] * 4
