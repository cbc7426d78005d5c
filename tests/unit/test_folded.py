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


def _left_sighted(x: np.ndarray) -> np.ndarray:
    """A stand-in network that sees faces only in the left half of its input: each 4x4 block's
    mean of channel 0 as the face-centre logit, of channel 1 as the log side (0 on the right
    half); offsets 0.25 everywhere."""
    from charaid.detector.net import HEAT, OFFSET_X, OFFSET_Y, SIZE

    n, _, h, w = x.shape
    blocks = x.reshape(n, 3, h // 4, 4, w // 4, 4).mean(axis=(3, 5))
    blocks[..., w // 8 :] = 0.0
    maps = np.zeros((n, 4, h // 4, w // 4), np.float32)
    maps[:, HEAT], maps[:, SIZE] = blocks[:, 0], blocks[:, 1]
    maps[:, OFFSET_X] = maps[:, OFFSET_Y] = 0.25
    return maps


def test_the_mirror_view_averages_centre_probabilities_and_sides_flipped_back():
    from charaid.detector.backend import head_maps
    from charaid.detector.heatmap import sigmoid
    from charaid.detector.net import HEAT, OFFSET_X, SIZE

    x = np.zeros((1, 3, 64, 128), np.float32)
    x[0, 0, 8:12, 16:20] = 3.0  # cell (2, 4): a face-centre logit of 3, a log side of 2
    x[0, 1, 8:12, 16:20] = 2.0
    plain = head_maps(_left_sighted, x, mirror=False)
    assert np.array_equal(plain, _left_sighted(x)[0])
    both = head_maps(_left_sighted, x, mirror=True)
    # the picture's own view sees the face; its mirror image has it on the right, unseen
    assert sigmoid(both[HEAT][2, 4]) == pytest.approx((sigmoid(3.0) + 0.5) / 2, abs=1e-6)
    assert both[SIZE][2, 4] == pytest.approx(1.0)
    assert sigmoid(both[HEAT][2, 27]) == pytest.approx(0.5, abs=1e-6)  # no face there
    assert np.all(both[OFFSET_X] == 0.25)  # offsets are the picture's own view's
    # a real FaceNet's averaged maps mirror with the picture
    run = fold(_net_with_statistics(5))
    picture = np.random.default_rng(6).random((1, 3, 64, 128), dtype=np.float32)
    a = head_maps(run, picture, mirror=True)
    b = head_maps(run, np.ascontiguousarray(picture[..., ::-1]), mirror=True)
    np.testing.assert_allclose(a[HEAT], b[HEAT][:, ::-1], atol=1e-4)
    np.testing.assert_allclose(a[SIZE], b[SIZE][:, ::-1], atol=1e-4)
