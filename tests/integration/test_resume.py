"""A training run stopped after an epoch resumes from its snapshot and ends with the very model an
uninterrupted run gives, bit for bit (with and without augmentation)."""

import hashlib

import pytest

from charaid import train as train_module
from charaid.dataset import load_dataset
from charaid.labels import build_dataset
from charaid.split import split_rows, write_split
from tests.helpers import SEED_CNN, make_crops, section_with

pytestmark = pytest.mark.slow  # four tiny trainings


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    make_crops(tmp / "labeled", n=12)
    params = section_with("label", from_="folders", path=str(tmp / "labeled"), other_class="other")
    build_dataset(params, 50, tmp, tmp / "dataset")
    write_split(split_rows(load_dataset(tmp / "dataset")[1], 3, 0), tmp / "split")
    return tmp


def run(data, out, params):
    for name in ("models", "metrics"):
        (out / name).mkdir(parents=True, exist_ok=True)
    train_module.train(
        params, data / "dataset", data / "split", out / "models", out / "metrics", out / "snap"
    )
    return hashlib.md5((out / "models" / "model.npz").read_bytes()).hexdigest()


@pytest.mark.parametrize("augment", [False, True])
def test_resumed_training_equals_uninterrupted(data, tmp_path, monkeypatch, capsys, augment):
    params = section_with(
        "train",
        **{**SEED_CNN, "augment": augment},
        seed=3,
        epochs=3,
        batch_size=7,  # not a divisor of the training set: epochs end mid-batch
        lr=0.002,
        fast=True,
    )
    clean = run(data, tmp_path / "clean", params)

    original = train_module.EpochCsv.__call__

    def die_in_epoch_2(self, trainer):  # after epoch 1's snapshot, before epoch 2's
        if trainer.updater.epoch == 2:
            raise Killed
        original(self, trainer)

    monkeypatch.setattr(train_module.EpochCsv, "__call__", die_in_epoch_2)
    with pytest.raises(Killed):
        run(data, tmp_path / "killed", params)
    monkeypatch.setattr(train_module.EpochCsv, "__call__", original)
    capsys.readouterr()
    resumed = run(data, tmp_path / "killed", params)
    assert "resuming from the snapshot of epoch 1" in capsys.readouterr().out
    assert resumed == clean
