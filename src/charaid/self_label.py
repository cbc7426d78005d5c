"""Features for sorting a new show's crops without a model: a network trained on its own clusters.

Image features (`label_helper.simple_features`: colour layout, hair and eye colour, HOG) group
crops by look, but no fixed recipe says which looks make a character. Self-labelling
(DeepCluster, Caron et al., ECCV 2018) learns that from the crops themselves: cluster them,
train a small CNN (`BNCNN`, augmented: mirrored, shifted, colour-jittered) to tell the clusters
apart, cluster its features, and go round again with the same network and a fresh last layer.
A character's crops that the image features split or mix share what the network learns to
see (hair shape, face, drawing style), so each round's clusters are purer than the last.
Each round trains only on the crops most of whose nearest neighbours share their cluster
(`agreeing`): the misfits of a mixed cluster are the labels most likely wrong (holoen-faces'
first clusters: 0.82 pure where kept, 0.59 where dropped, 21% of the crops).

The training clusters are twice the folders `charaid label` makes (over-clustering: a mixed
cluster costs a training round more than a split one). Every draw is seeded, so the same
crops and seed give the same features.
"""

from __future__ import annotations

import chainer
import chainer.links as L
import numpy as np
from chainer import iterators, training
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from tqdm import tqdm

from charaid import fastops
from charaid.augment import AugmentedDataset
from charaid.models import BNCNN, resize_crops, to_input
from charaid.openset import features_of
from charaid.trainer import EpochOrderSampler, seed_everything

SIDE = 64  # network input side
WIDTHS = (16, 32, 64, 128, 192)  # a BNCNN narrower than train's: about 0.3 M weights
ROUNDS = 5  # `charaid label --rounds`: holoen-faces purity 0.75 -> 0.81-0.83 in ~6 min (docs)
EPOCHS = 6  # per round
BATCH = 64
LR = 0.002  # Adam's alpha, falling linearly to 0 over each round
MIN_CROPS = 200  # fewer: too few to learn from; the image features alone
CROPS_PER_CLUSTER = 20  # training clusters hold at least this many crops on average
NEIGHBOURS = 10  # `agreeing`: a crop's nearest neighbours asked
AGREE = 0.5  # share of them in its cluster for a crop to be trained on


def training_clusters(n: int, folders: int) -> int:
    """Clusters the network learns to tell apart: twice the folders, at most n / 20."""
    return max(2, min(2 * folders, n // CROPS_PER_CLUSTER))


def _train_round(
    model: BNCNN, x: np.ndarray, labels: np.ndarray, seed: int, epochs: int, bar: tqdm
) -> None:
    """Fit the model (its last layer fresh) to tell `labels` apart, `epochs` passes over x."""
    dataset = AugmentedDataset(x, labels.astype(np.int32), seed)
    order = EpochOrderSampler(seed)
    it = iterators.SerialIterator(dataset, min(BATCH, len(x)), order_sampler=order)
    order.iterator = it
    classifier = L.Classifier(model)
    optimizer = fastops.FastAdam(alpha=LR)
    optimizer.setup(classifier)
    updater = training.updaters.StandardUpdater(it, optimizer)
    steps = epochs * -(-len(x) // it.batch_size)
    for step in range(steps):
        optimizer.alpha = LR * (1 - step / steps)
        updater.update()
        if it.is_new_epoch:
            bar.update(1)
            bar.set_postfix(loss=f"{float(classifier.loss.array):.2f}")


def agreeing(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Crops (a mask) at least AGREE of whose NEIGHBOURS nearest, in the PCA space `cluster`
    uses, share their cluster."""
    x = features - features.mean(axis=0)
    x = PCA(n_components=min(64, x.shape[1], len(x) - 1), random_state=0).fit_transform(x)
    near = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(x).kneighbors(x)[1][:, 1:]
    return (labels[near] == labels[:, None]).mean(axis=1) >= AGREE


def learned_features(
    crops: np.ndarray,
    folders: int,
    rounds: int,
    seed: int,
    start: np.ndarray,
    epochs: int = EPOCHS,
) -> np.ndarray:
    """Features (N, D) of uint8 BGR crops after `rounds` of self-labelling, starting from the
    image features `start`; `folders` is the cluster count the caller will make. With fewer
    than MIN_CROPS crops or no rounds, `start` itself."""
    from charaid.label_helper import cluster  # its clustering, not a second one

    if rounds < 1 or len(crops) < MIN_CROPS:
        return start
    k = training_clusters(len(crops), folders)
    labels, _ = cluster(start, k, seed)
    x = to_input(resize_crops(np.asarray(crops), SIDE))
    fastops.tune_allocator()
    seed_everything(seed)
    model = BNCNN(k, WIDTHS)
    feats = start
    with tqdm(total=rounds * epochs, desc="label: learning features", unit="epoch") as bar:
        for r in range(rounds):
            if r:  # the same network, a new last layer for the new clusters
                del model.fc
                with model.init_scope():
                    model.fc = L.Linear(WIDTHS[-1], k)
            keep = agreeing(feats, labels)
            if keep.sum() < len(x) // 2:  # clusters this split say little: learn them all
                keep[:] = True
            with chainer.using_config("train", True):
                _train_round(model, x[keep], labels[keep], seed * 1000 + r, epochs, bar)
            feats = features_of(model, x, mirror=True)  # augmentation mirrors: both views
            feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-9)
            if r + 1 < rounds:
                labels, _ = cluster(feats, k, seed)
    return feats.astype(np.float32)
