"""FaceNet folded for inference (`charaid.detector.folded`) against the net itself."""

from __future__ import annotations

import chainer
import numpy as np
import pytest

from charaid import fastops
from charaid.detector.folded import fold
from charaid.detector.net import FaceNet


def _net_with_statistics(seed: int) -> FaceNet:
    """A FaceNet whose batch norms have non-trivial running statistics, scales and shifts."""
    np.random.seed(seed)
    net = FaceNet((8, 16, 64), neck=8)  # 64 channels at 1/8: that level splits its channels
    rng = np.random.default_rng(seed)
    for _, link in net.namedlinks():
        if isinstance(link, chainer.links.BatchNormalization):
            link.avg_mean[...] = rng.normal(0, 0.5, link.avg_mean.shape)
            link.avg_var[...] = rng.uniform(0.3, 2.0, link.avg_var.shape)
            link.gamma.array[...] = rng.uniform(0.5, 1.5, link.gamma.shape)
            link.beta.array[...] = rng.normal(0, 0.3, link.beta.shape)
    return net


@pytest.mark.parametrize("threads", [1, 2])
def test_folded_net_gives_the_nets_inference_maps(threads):
    net = _net_with_statistics(3)
    x = np.random.default_rng(4).random((2, 3, 64, 128), dtype=np.float32)
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        want = net(x).array
    before = fastops.get_num_threads()
    fastops.set_num_threads(threads)
    try:
        got = fold(net)(x)
    finally:
        fastops.set_num_threads(before)
    assert got.shape == want.shape == (2, 4, 16, 32)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_fold_takes_the_weights_of_the_moment():
    net = _net_with_statistics(5)
    x = np.random.default_rng(6).random((1, 3, 64, 64), dtype=np.float32)
    before = fold(net)
    first = before(x)
    net.head.b.array[:] += 1.0  # a training step's change
    np.testing.assert_array_equal(before(x), first)
    np.testing.assert_allclose(fold(net)(x), first + 1.0, rtol=1e-6, atol=1e-5)
