"""LiveLog: a real Chainer trainer logging each epoch to a real DVCLive summary."""

from __future__ import annotations

import json
import subprocess

import chainer
import chainer.links as L
import numpy as np
import pytest
from chainer import iterators, optimizers, training
from chainer.training import extensions

from charaid.errors import CharaidError
from charaid.live import LiveLog


def run_trainer(out, epochs=3) -> list[dict]:
    np.random.seed(0)
    rng = np.random.RandomState(0)
    x = rng.rand(40, 4).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int32)
    model = L.Classifier(L.Linear(4, 2))
    optimizer = optimizers.Adam()
    optimizer.setup(model)
    data = chainer.datasets.TupleDataset(x, y)
    order = iterators.ShuffleOrderSampler(np.random.RandomState(0))
    train_iter = iterators.SerialIterator(data, 10, order_sampler=order)
    test_iter = iterators.SerialIterator(data, 20, repeat=False, shuffle=False)
    updater = training.updaters.StandardUpdater(train_iter, optimizer)
    trainer = training.Trainer(updater, (epochs, "epoch"), out=str(out / "run"))
    trainer.extend(extensions.Evaluator(test_iter, model))
    trainer.extend(extensions.LogReport())
    trainer.extend(LiveLog(out / "live"))
    trainer.run()
    return trainer.get_extension("LogReport").log


def test_each_epoch_lands_in_the_dvclive_summary(tmp_path):
    log = run_trainer(tmp_path)
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    last = log[-1]
    assert summary["epoch"] == 3 and summary["step"] == 2  # DVCLive counts steps from 0
    assert summary["train"]["loss"] == round(last["main/loss"], 5)
    assert summary["test"]["accuracy"] == round(last["validation/main/accuracy"], 5)
    # summary only: the curves live in metrics/train_log.csv; no dvc.yaml, report or timestamps
    assert sorted(p.name for p in (tmp_path / "live").iterdir()) == ["metrics.json"]


def test_summary_is_the_same_for_the_same_run(tmp_path):
    run_trainer(tmp_path / "a")
    run_trainer(tmp_path / "b")
    first = (tmp_path / "a" / "live" / "metrics.json").read_bytes()
    assert first == (tmp_path / "b" / "live" / "metrics.json").read_bytes()


def test_a_git_repository_without_commits_is_one_clear_error(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CharaidError, match="commit once first"):
        run_trainer(tmp_path, epochs=1)
    assert not (tmp_path / "live" / "metrics.json").exists()
