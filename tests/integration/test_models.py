"""Models for real art: shapes, the VGG16 weights loader (with made-up weights), augmentation,
input size and one-vs-rest training."""

import json

import chainer
import numpy as np
import pytest

from charaid.augment import DRAWS, AugmentedDataset, augment, draws
from charaid.errors import CharaidError
from charaid.evaluate import evaluate
from charaid.models import VGG16Net, build_model, classes_for, resize_crops
from charaid.openset import GALLERY
from charaid.predict import Recognizer
from charaid.train import train
from tests.helpers import CLASSES, make_crops, section_with, softmax_at


@pytest.mark.parametrize("name,size", [("seed_cnn", 50), ("bn_cnn", 48), ("bn_cnn", 64)])
def test_models_give_logits_and_features(name, size):
    model = build_model(name, 5)
    x = np.random.default_rng(0).random((2, 3, size, size), dtype=np.float32)
    with chainer.using_config("train", False):
        logits = model(x)
        feats = model.features(x)
        assert logits.shape == (2, 5)
        np.testing.assert_allclose(model.head(feats).array, logits.array, rtol=1e-5, atol=1e-5)


def fake_vgg16(path, rng, shapes_from=None):
    """A VGG16Layers-style .npz with made-up weights (plus an fc6 the loader must ignore)."""
    net = shapes_from or VGG16Net(3)
    arrays = {"fc6/W": np.zeros((4, 4), np.float32)}
    for name in net.conv_names():
        conv = getattr(net, name)
        arrays[f"{name}/W"] = rng.standard_normal(conv.W.shape).astype(np.float32) * 0.05
        arrays[f"{name}/b"] = rng.standard_normal(conv.b.shape).astype(np.float32) * 0.05
    np.savez(path, **arrays)
    return arrays


def test_vgg16_loads_pretrained_weights_from_a_local_file(tmp_path):
    arrays = fake_vgg16(tmp_path / "vgg16.npz", np.random.default_rng(0))
    model = build_model("vgg16", 4, pretrained=tmp_path / "vgg16.npz")
    for name in model.conv_names():
        np.testing.assert_array_equal(getattr(model, name).W.array, arrays[f"{name}/W"])
        np.testing.assert_array_equal(getattr(model, name).b.array, arrays[f"{name}/b"])
    assert model.fc.W.shape == (4, 512) or model.fc.W.array is None
    with chainer.using_config("train", False):
        assert model(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 4)


def test_vgg16_weights_errors_are_one_line(tmp_path):
    with pytest.raises(CharaidError, match="pretrained weights not found"):
        build_model("vgg16", 3, pretrained=tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", something=np.zeros(3))
    with pytest.raises(CharaidError, match="not a Chainer VGG16 weights file"):
        build_model("vgg16", 3, pretrained=tmp_path / "other.npz")
    arrays = fake_vgg16(tmp_path / "bad.npz", np.random.default_rng(0))
    arrays["conv1_1/W"] = np.zeros((8, 3, 3, 3), np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(CharaidError, match="conv1_1/W has shape"):
        build_model("vgg16", 3, pretrained=tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CharaidError, match="cannot read pretrained weights"):
        build_model("vgg16", 3, pretrained=tmp_path / "junk.npz")
    with pytest.raises(CharaidError, match="only for model vgg16"):
        build_model("bn_cnn", 3, pretrained=tmp_path / "bad.npz")


def _augment_in_numpy(x, u, shift=0.1):
    """The augmentation spelled out in numpy: what the compiled pass must equal."""
    c, h, w = x.shape
    if u[0] < 0.5:
        x = x[:, :, ::-1]
    pad = max(1, int(round(shift * h)))
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    dy, dx = (int(v * (2 * pad + 1)) for v in u[1:3])
    x = padded[:, dy : dy + h, dx : dx + w].astype(np.float64)
    bright, contrast, sat = (0.8 + 0.4 * v for v in u[3:6])
    grey = x.mean(axis=0, keepdims=True)
    x = grey + (x - grey) * sat
    x = (x - x.mean()) * contrast + x.mean() * bright
    return np.clip(x, 0.0, 1.0)


@pytest.mark.parametrize("u", [(0.1, 0.0, 0.99, 0.0, 0.99, 0.5), (0.7, 0.5, 0.2, 0.9, 0.1, 0.0)])
def test_augment_equals_its_numpy_definition(u):
    x = np.random.default_rng(0).random((3, 20, 17), dtype=np.float32)
    np.testing.assert_allclose(augment(x, u), _augment_in_numpy(x, u), atol=1e-5)


def test_augment_draws_are_seeded_keep_shape_and_range_and_vary():
    x = np.random.default_rng(0).random((3, 20, 20), dtype=np.float32)
    u = draws(5, 0, 0)
    assert len(u) == DRAWS and all(0 <= v < 1 for v in u)
    assert draws(5, 0, 0) == u and len({draws(5, 0, k) for k in range(50)}) == 50
    assert draws(5, 1, 0) != u and draws(6, 0, 0) != u
    a = augment(x, u)
    assert a.shape == x.shape and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    # over many draws both flips and every shift turn up
    us = np.array([draws(1, 3, k) for k in range(400)])
    assert 0.4 < (us[:, 0] < 0.5).mean() < 0.6 and len({int(v * 5) for v in us[:, 1]}) == 5
    ds = AugmentedDataset(x[None].repeat(2, 0), np.array([0, 1], np.int32), seed=1)
    first, second = ds[0][0], ds[0][0]
    assert not np.array_equal(first, second)  # drawn afresh each time
    again = AugmentedDataset(x[None].repeat(2, 0), np.array([0, 1], np.int32), seed=1)
    np.testing.assert_array_equal(again[0][0], first)


def test_resize_crops_and_one_vs_rest_classes():
    crops = np.zeros((2, 50, 50, 3), np.uint8)
    assert resize_crops(crops, 50) is crops and resize_crops(crops, 64).shape == (2, 64, 64, 3)
    rows = [{"id": str(i), "label": c} for i, c in enumerate(["A", "B", "other"])]
    classes, train_rows = classes_for("B", rows)
    assert classes == ["B", "not B"]
    assert [r["label"] for r in train_rows] == ["not B", "B", "not B"]
    assert classes_for("", rows)[0] == ["A", "B", "other"]
    with pytest.raises(CharaidError, match="train.one_vs_rest is 'Z'"):
        classes_for("Z", rows)


@pytest.fixture(scope="module")
def crops_dataset(tmp_path_factory):
    from charaid.dataset import load_dataset
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split

    tmp = tmp_path_factory.mktemp("models")
    make_crops(tmp / "labeled")
    params = section_with("label", from_="folders", path=str(tmp / "labeled"), other_class="other")
    build_dataset(params, 50, tmp, tmp / "dataset")
    write_split(split_rows(load_dataset(tmp / "dataset")[1], 4, 0), tmp / "split")
    return tmp


def run_train(tmp, out, **changes):
    base = {
        "model": "seed_cnn", "input_size": 50, "augment": False, "pretrained": "",
        "one_vs_rest": "", "seed": 0, "epochs": 4, "batch_size": 10, "lr": 0.002, "fast": True,
    }  # fmt: skip
    params = section_with("train", **{**base, **changes})
    for d in ("models", "metrics"):
        (out / d).mkdir(parents=True)
    result = train(params, tmp / "dataset", tmp / "split", out / "models", out / "metrics", out)
    return result, json.loads((out / "models" / "model.json").read_text())


@pytest.mark.slow
def test_bn_cnn_with_augmentation_at_another_input_size(crops_dataset, tmp_path):
    result, meta = run_train(crops_dataset, tmp_path, model="bn_cnn", input_size=32, augment=True,
                             epochs=6, lr=0.01)  # fmt: skip
    assert meta["input_size"] == 32 and meta["model"] == "bn_cnn"
    assert meta["mirror"] is True  # trained on mirror images: named from both views
    assert Recognizer(tmp_path / "models").mirror
    test_rows = (crops_dataset / "split" / "test.csv").read_text().splitlines()[1:]
    with np.load(tmp_path / "models" / GALLERY) as gallery:  # the threshold's held-out faces
        assert len(gallery["held_out"]) == len(test_rows)
    metrics = evaluate(crops_dataset / "dataset", crops_dataset / "split", tmp_path / "models",
                       tmp_path / "metrics", softmax_at(0.5), "other")  # fmt: skip
    assert metrics["accuracy"] >= 0.9  # the 50 px dataset crops are resized for the model


@pytest.mark.slow
def test_vgg16_trains_from_made_up_pretrained_weights(crops_dataset, tmp_path):
    fake_vgg16(tmp_path / "vgg16.npz", np.random.default_rng(0))
    result, meta = run_train(crops_dataset, tmp_path / "run", model="vgg16", input_size=16,
                             pretrained=str(tmp_path / "vgg16.npz"), epochs=1)  # fmt: skip
    assert meta["model"] == "vgg16" and np.isfinite(result["loss"])
    from charaid.predict import Recognizer

    rec = Recognizer(tmp_path / "run" / "models")
    assert rec.probabilities(np.zeros((2, 50, 50, 3), np.uint8)).shape == (2, 3)


def test_one_vs_rest_trains_two_classes_and_evaluates(crops_dataset, tmp_path):
    result, meta = run_train(crops_dataset, tmp_path, one_vs_rest="Sora", epochs=4)
    assert meta["classes"] == ["Sora", "not Sora"] and meta["one_vs_rest"] == "Sora"
    metrics = evaluate(crops_dataset / "dataset", crops_dataset / "split", tmp_path / "models",
                       tmp_path / "metrics", softmax_at(0.5), "other")  # fmt: skip
    assert set(metrics["per_class"]) == {"Sora", "not Sora"}
    assert metrics["per_class"]["not Sora"]["support"] == 4 * (len(CLASSES) - 1)
    assert metrics["accuracy"] >= 0.9
