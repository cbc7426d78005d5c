"""Open-set rejection: kNN feature similarity with a threshold calibrated on known faces."""

import dataclasses

import chainer
import cv2
import numpy as np
import pytest

from charaid.dataset import load_dataset
from charaid.errors import CharaidError
from charaid.evaluate import evaluate
from charaid.frames import read_index
from charaid.openset import (
    GALLERY,
    MIN_HELD_OUT,
    Gallery,
    features_of,
    knn_similarity,
    normalize,
    save_gallery,
)
from charaid.predict import Recognizer
from tests.helpers import section_with

KNN = section_with("predict", unknown_method="knn", unknown_quantile=0.02, unknown_threshold=0.5)


def test_knn_similarity_and_leave_one_out():
    g = normalize(np.array([[1, 0], [1, 0.1], [0, 1]], np.float32))
    near = knn_similarity(normalize(np.array([[1, 0.05]], np.float32)), g, k=2)
    far = knn_similarity(normalize(np.array([[-1, -1]], np.float32)), g, k=2)
    assert near[0] > 0.99 and far[0] < 0
    loo = knn_similarity(g, g, k=1, leave_one_out=True)
    assert loo[0] == pytest.approx(g[0] @ g[1]) and loo[2] < 0.2  # own match skipped


def test_gallery_threshold_is_the_quantile_of_training_scores(tmp_path):
    feats = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    save_gallery(tmp_path / GALLERY, feats)
    train_scores = Gallery(tmp_path / GALLERY, 0.0).train_scores
    assert len(train_scores) == 200
    for q in (0.0, 0.1, 0.5):
        gal = Gallery(tmp_path / GALLERY, q)
        assert np.mean(train_scores < gal.threshold) == pytest.approx(q, abs=0.01)
    with pytest.raises(CharaidError, match="predict.unknown_method: softmax"):
        Gallery(tmp_path / "none.npz", 0.02)


def test_gallery_calibrates_on_held_out_faces_when_it_has_enough(tmp_path):
    """A network fits its training faces tightly: the cast's new faces score lower than the
    training faces score among themselves, so the threshold comes from held-out faces."""
    rng = np.random.default_rng(0)
    centres = normalize(rng.standard_normal((4, 16)).astype(np.float32))
    train = np.repeat(centres, 50, axis=0) + 0.05 * rng.standard_normal((200, 16))
    new = np.repeat(centres, 25, axis=0) + 0.4 * rng.standard_normal((100, 16))
    save_gallery(tmp_path / GALLERY, train.astype(np.float32), new.astype(np.float32))
    gal = Gallery(tmp_path / GALLERY, 0.1)
    assert gal.calibrated_on == "held-out faces" and len(gal.train_scores) == 100
    new_scores = gal.scores(new.astype(np.float32))
    assert np.mean(new_scores < gal.threshold) == pytest.approx(0.1, abs=0.011)
    save_gallery(tmp_path / GALLERY, train.astype(np.float32))  # none held out: the old rule
    tight = Gallery(tmp_path / GALLERY, 0.1)
    assert tight.calibrated_on == "training faces" and tight.threshold > gal.threshold
    assert np.mean(new_scores < tight.threshold) > 0.5  # most new faces would be "unknown"
    save_gallery(tmp_path / GALLERY, train.astype(np.float32), new[: MIN_HELD_OUT - 1])
    assert Gallery(tmp_path / GALLERY, 0.1).calibrated_on == "training faces"


def test_features_of_a_mirrored_model_average_both_views():
    class Probe:  # features that see left from right: the mean of both views is symmetric
        def features(self, x):
            return chainer.Variable(x[:, 0, 0, :].copy())

    x = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    plain = features_of(Probe(), x)
    both = features_of(Probe(), x, mirror=True)
    assert not np.allclose(plain, plain[:, ::-1])
    np.testing.assert_allclose(both, (plain + plain[:, ::-1]) / 2)
    np.testing.assert_allclose(both, both[:, ::-1])


def test_gallery_of_one_face_is_refused_with_one_line(tmp_path):
    save_gallery(tmp_path / GALLERY, np.ones((1, 4), np.float32))
    with pytest.raises(CharaidError, match="fewer than 2 training faces to calibrate on"):
        Gallery(tmp_path / GALLERY, 0.02)


def test_small_k_rejects_a_look_alike_that_averaging_many_neighbours_accepts(tmp_path):
    """The demo's failure mode in miniature: every training pose of a character has a near twin
    (frames of one pose), a new face of the cast matches one pose closely, and a stranger
    resembles the character's average without matching any pose. Averaging 5 neighbours lets
    the stranger through; 2 (the default) rejects it and still accepts the new cast faces."""
    rng = np.random.default_rng(0)
    unit = lambda n: normalize(rng.standard_normal((n, 64)).astype(np.float32))  # noqa: E731
    centres = unit(3)
    poses = np.concatenate([c + 0.8 * unit(40) for c in centres])
    twin = lambda x: x + 0.02 * rng.standard_normal(x.shape).astype(np.float32)  # noqa: E731
    save_gallery(tmp_path / GALLERY, np.concatenate([twin(poses), twin(poses)]))
    new_cast, strangers = twin(poses[::7]), centres + 0.5 * unit(3)
    default = Gallery(tmp_path / GALLERY, 0.02)
    assert default.k == 2 and len(default.train_scores) == 240
    assert np.all(default.scores(new_cast) >= default.threshold)
    assert np.all(default.scores(strangers) < default.threshold)
    wide = Gallery(tmp_path / GALLERY, 0.02, k=5)
    assert np.all(wide.scores(strangers) >= wide.threshold)


def test_unknown_k_reaches_the_gallery_and_is_validated(trained, sample_params):
    from charaid.config import Params

    tmp, _ = trained
    for k in (1, 7):
        rec = Recognizer.from_params(tmp / "models", dataclasses.replace(KNN, unknown_k=k))
        assert rec.gallery.k == k
        expected = knn_similarity(rec.gallery.features, rec.gallery.features, k, True)
        assert np.allclose(rec.gallery.train_scores, expected)
    assert Params.from_mapping(sample_params).predict.unknown_k == 2
    for bad in (0, 51, 2.5, True):
        sample_params["predict"]["unknown_k"] = bad
        with pytest.raises(CharaidError, match="predict.unknown_k"):
            Params.from_mapping(sample_params)


def test_unfamiliar_faces_come_out_unknown(trained):
    tmp, _ = trained
    predict = KNN
    rec = Recognizer.from_params(tmp / "models", predict)
    images, rows = load_dataset(tmp / "dataset")
    test_ids = {r["id"]: r["label"] for r in read_index(tmp / "split" / "test.csv")}
    held_out = [i for i, r in enumerate(rows) if r["id"] in test_ids]  # never trained on
    stranger = np.full((1, 50, 50, 3), 255, np.uint8)
    cv2.line(stranger[0], (0, 0), (49, 49), (0, 0, 0), 5)  # nothing like any training face
    probs, scores = rec.probabilities(np.concatenate([images[held_out], stranger]), scores=True)
    names = [rec.name(p, 0.5, score=s)[0] for p, s in zip(probs, scores, strict=True)]
    truth = [rows[i]["label"] for i in held_out]
    assert np.mean([n == t for n, t in zip(names, truth, strict=False)]) >= 0.75
    assert names[-1] == "unknown" and scores[-1] < rec.gallery.threshold
    # a lax quantile rejects nothing it was trained on; a strict one rejects more
    lax = Recognizer.from_params(tmp / "models", dataclasses.replace(KNN, unknown_quantile=0.0))
    strict = Recognizer.from_params(tmp / "models", dataclasses.replace(KNN, unknown_quantile=0.5))
    assert lax.gallery.threshold < strict.gallery.threshold


def test_evaluate_reports_open_set_with_and_without_threshold(trained):
    tmp, _ = trained
    predict = KNN
    m = evaluate(tmp / "dataset", tmp / "split", tmp / "models", tmp / "metrics", predict, "other")
    assert m["open_set"]["method"] == "knn"
    assert m["open_set"]["threshold"] == pytest.approx(
        Recognizer.from_params(tmp / "models", predict).gallery.threshold, abs=1e-4
    )
    assert 0 <= m["open_set"]["unknown_rate"] <= 1 and m["accuracy"] >= 0.9
