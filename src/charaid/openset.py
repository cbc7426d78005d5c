"""Open-set recognition: is this face one of the cast at all?

The max-softmax probability is a poor test (a CNN is confidently wrong on faces it never saw:
half of the demo's other show passed a 0.5 threshold). Instead, a face is compared with the
training faces in the model's feature space (the layer before the classifier): its score is the
mean cosine similarity to its `k` nearest training faces (`predict.unknown_k`). The threshold is
calibrated on known-class data only, by a fixed rule: the `unknown_quantile` quantile of the
scores of the cast's held-out faces (the split's test part, faces the model never trained on),
i.e. the score below which that fraction of the cast's new faces falls. It is computed when the
gallery is loaded, so `k` can change without retraining. Faces of other shows are never used to
choose it. Training faces' own scores (each left out of its own neighbours) were the rule
before: a network fits its training faces tightly, so new faces of the cast score lower, and a
2% budget called 10-20% of them unknown (the demo with `bn_cnn`: 19.6%; dexter: 10.7%). They
remain the fallback when fewer than MIN_HELD_OUT faces are held out.

Why a small `k` (2 by default, was 5): a stranger that resembles a character is moderately
close to many of its faces without matching any, while a new face of the cast nearly always has
one or two training faces of the same look; averaging over more neighbours blurs that
difference (on the demo's hardest seed, 2% of the cast called unknown rejects 0.95 of the other
show with k=2, 0.88 with k=5; README, "Unknown faces").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from charaid.atomic import write_npz
from charaid.errors import CharaidError

K = 2  # default neighbours averaged: more than one, so one look-alike training face alone does
# not make a stranger familiar
GALLERY = "gallery.npz"
MIN_HELD_OUT = 20  # held-out faces needed to calibrate on them (else the training faces)


def normalize(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-8)).astype(np.float32)


def knn_similarity(
    queries: np.ndarray, gallery: np.ndarray, k: int = K, leave_one_out: bool = False
) -> np.ndarray:
    """Mean cosine similarity of each (normalized) query to its k most similar gallery rows.

    With `leave_one_out` the queries are the gallery itself and each row skips its own match.
    """
    k = max(1, min(k, len(gallery) - int(leave_one_out)))
    out = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), 1024):  # chunks keep the similarity matrix small
        sim = queries[start : start + 1024] @ gallery.T
        if leave_one_out:
            rows = np.arange(len(sim))
            sim[rows, start + rows] = -np.inf
        top = np.partition(sim, -k, axis=1)[:, -k:]
        out[start : start + 1024] = top.mean(axis=1)
    return out


def features_of(model, x: np.ndarray, batch: int = 256, mirror: bool = False) -> np.ndarray:
    """The model's feature vectors (inference mode) for float32 (N, 3, S, S) inputs; with
    `mirror`, the mean of each input's and its mirror image's (a model trained on mirrored
    crops: two views of a face name it more surely than one, and the gallery must match)."""
    import chainer

    out = []
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        for i in range(0, len(x), batch):
            chunk = x[i : i + batch]
            h = model.features(chunk).array
            if mirror:
                h = (h + model.features(np.ascontiguousarray(chunk[..., ::-1])).array) / 2
            out.append(h)
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def save_gallery(path: Path, features: np.ndarray, held_out: np.ndarray | None = None) -> None:
    """Training faces' normalized features (float16: half the size), and the held-out faces'
    the threshold is calibrated on (`held_out`, the cast's faces the model never trained on)."""
    arrays = {"features": normalize(features).astype(np.float16)}
    if held_out is not None and len(held_out):
        arrays["held_out"] = normalize(held_out).astype(np.float16)
    write_npz(path, arrays)


class Gallery:
    """A model's training-face features; scores new faces and holds the calibrated threshold."""

    def __init__(self, path: Path, quantile: float, k: int = K) -> None:
        if not path.is_file():
            raise CharaidError(
                f"{path}: missing (the model predates open-set scoring); "
                "run `dvc repro train`, or set predict.unknown_method: softmax"
            )
        with np.load(path) as data:
            self.features = data["features"].astype(np.float32)
            held_out = data["held_out"].astype(np.float32) if "held_out" in data else None
        if len(self.features) < 2:
            raise CharaidError(
                f"{path}: fewer than 2 training faces to calibrate on; run `dvc repro train`"
            )
        self.k = k
        # scored exactly as new faces are (same float32 features)
        if held_out is not None and len(held_out) >= MIN_HELD_OUT:
            self.calibrated_on = "held-out faces"
            self.train_scores = knn_similarity(held_out, self.features, k)
        else:  # no held-out faces: the training faces, each without its own match
            self.calibrated_on = "training faces"
            self.train_scores = knn_similarity(self.features, self.features, k, leave_one_out=True)
        self.threshold = float(np.quantile(self.train_scores, quantile))

    def scores(self, features: np.ndarray) -> np.ndarray:
        return knn_similarity(normalize(features), self.features, self.k)
