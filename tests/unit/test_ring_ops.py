"""The ring layout's ops (FaceNet's fast path) against Chainer's own functions: forward values,
gradients (float64 numerical checks), the zero ring every op keeps, and thread splits."""

from __future__ import annotations

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
import pytest
from chainer import gradient_check

from charaid import fastops
from charaid.fastops.blas import sgemm
from charaid.fastops.ring_layout import from_ring, to_ring
from charaid.fastops.ring_norm import BatchNormReLURing

# (N, C, H, W), out channels, kernel, stride: odd and even sides, 1 to 16 channels
CONVS = [
    ((2, 3, 8, 10), 5, 3, 1),
    ((2, 4, 9, 7), 6, 3, 2),
    ((2, 6, 8, 8), 3, 3, 2),
    ((3, 5, 6, 6), 4, 1, 1),
    ((1, 16, 12, 20), 8, 3, 1),
]
# maps too small to split by rows over the threads, wide enough to split their channels
SMALL_WIDE = [((1, 64, 4, 6), 64, 3, 1), ((1, 64, 6, 8), 64, 3, 2), ((1, 64, 3, 5), 64, 1, 1)]


def _ring_conv(x, w, stride):
    return from_ring(fastops.convolution_ring(to_ring(x), w, stride))


def _ring_of(a: np.ndarray) -> np.ndarray:
    """The ring cells of a (N, H+2, W+2, C) array."""
    inside = np.zeros(a.shape[1:3], bool)
    inside[1:-1, 1:-1] = True
    return a[:, ~inside]


@pytest.mark.parametrize("shape,out,k,stride", CONVS)
def test_ring_convolution_matches_chainer_with_gradients(shape, out, k, stride):
    rng = np.random.default_rng(40)
    x, w = rng.standard_normal(shape), rng.standard_normal((out, shape[1], k, k))
    ref = F.convolution_2d(x, w, stride=stride, pad=k // 2).array
    np.testing.assert_allclose(_ring_conv(x, w, stride).array, ref, rtol=1e-10, atol=1e-10)
    gy = rng.standard_normal(ref.shape)
    gradient_check.check_backward(
        lambda a, b: _ring_conv(a, b, stride), (x, w), gy, eps=1e-3, atol=1e-6, rtol=1e-5
    )


@pytest.mark.parametrize("shape,out,k,stride", CONVS + SMALL_WIDE)
def test_ring_convolution_in_float32_goes_through_blas_and_agrees(shape, out, k, stride):
    rng = np.random.default_rng(41)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out, shape[1], k, k)).astype(np.float32)
    xr, wr = chainer.Variable(x), chainer.Variable(w)
    y = fastops.convolution_ring(to_ring(xr), wr, stride)
    assert not _ring_of(y.array).any()  # the next op reads the ring as padding
    xc, wc = chainer.Variable(x), chainer.Variable(w)
    ref = F.convolution_2d(xc, wc, stride=stride, pad=k // 2)
    gy = rng.standard_normal(ref.shape).astype(np.float32)
    F.sum(from_ring(y) * gy).backward()
    F.sum(ref * gy).backward()
    for got, want in ((from_ring(y).array, ref.array), (xr.grad, xc.grad), (wr.grad, wc.grad)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,out,k,stride", CONVS + SMALL_WIDE)
def test_ring_convolutions_with_a_bias_add_it_and_relu_in_one_pass(shape, out, k, stride, threads):
    from charaid.fastops import ring_conv as rc

    rng = np.random.default_rng(47)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out, shape[1], k, k)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    want = F.relu(F.convolution_2d(x, w, b, stride=stride, pad=k // 2)).array
    h = to_ring(x).array
    before = fastops.get_num_threads()
    fastops.set_num_threads(threads)
    try:
        if k == 1:
            y = rc.conv1x1(h, rc.matrix_1x1(w), b)
        elif stride == 2:
            y = rc.conv3x3_s2(h, rc.matrix_3x3_s2(w), b)[0]
        else:
            y = rc.conv3x3(h, rc.taps_3x3(w), b)
    finally:
        fastops.set_num_threads(before)
    assert not _ring_of(y).any()  # relu(bias) must not leak into the padding
    assert (want == 0).any() and (want > 0).any()
    np.testing.assert_allclose(from_ring(y).array, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_to_ring_and_back_keep_every_value_and_zero_the_ring():
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 7)).astype(np.float32)
    ring = to_ring(x).array
    assert ring.shape == (2, 7, 9, 3)
    np.testing.assert_array_equal(ring[:, 1:-1, 1:-1], x.transpose(0, 2, 3, 1))
    border = np.ones(ring.shape, bool)
    border[:, 1:-1, 1:-1] = False
    assert not ring[border].any()
    np.testing.assert_array_equal(from_ring(ring).array, x)
    # each one's gradient is the other's layout change
    gradient_check.check_backward(
        lambda a: from_ring(to_ring(a) * 2.0),
        x.astype(np.float64),
        2.0 * np.ones_like(x, np.float64),
    )


def test_ring_convolution_refuses_what_it_does_not_compute():
    x = to_ring(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="3x3 at stride 1 or 2, or 1x1"):
        fastops.convolution_ring(x, np.zeros((2, 2, 5, 5), np.float32))


def test_ring_upsample_matches_repeat_and_gradients():
    rng = np.random.default_rng(42)
    x = rng.standard_normal((2, 3, 4, 5))
    ref = F.repeat(F.repeat(x, 2, axis=2), 2, axis=3).array
    y = fastops.upsample_2x_ring(to_ring(x))
    assert not _ring_of(y.array).any()
    np.testing.assert_array_equal(from_ring(y).array, ref)
    gradient_check.check_backward(
        lambda a: from_ring(fastops.upsample_2x_ring(to_ring(a))),
        x,
        rng.standard_normal(ref.shape),
        eps=1e-3,
        atol=1e-6,
    )


def _bn_pair(channels: int, rng) -> tuple[L.BatchNormalization, L.BatchNormalization]:
    ours, chainers = L.BatchNormalization(channels), L.BatchNormalization(channels)
    ours.gamma.array[:] = rng.uniform(0.5, 1.5, channels)
    ours.beta.array[:] = rng.uniform(-0.5, 0.5, channels)
    chainers.copyparams(ours)
    return ours, chainers


def test_ring_batch_norm_relu_matches_chainer_in_training_and_inference():
    rng = np.random.default_rng(43)
    x = rng.standard_normal((3, 6, 5, 7)) * 2 + 1  # a mean far from 0: the variance's pass
    ours, chainers = _bn_pair(6, rng)
    y = fastops.batch_normalization_relu_ring(to_ring(x), ours)
    assert not _ring_of(y.array).any()
    np.testing.assert_allclose(from_ring(y).array, F.relu(chainers(x)).array, atol=1e-10)
    # running statistics updated as the link does (decay, unbiased variance; float32 there)
    np.testing.assert_allclose(ours.avg_mean, chainers.avg_mean, rtol=1e-6)
    np.testing.assert_allclose(ours.avg_var, chainers.avg_var, rtol=1e-6)
    with chainer.using_config("train", False):
        got = from_ring(fastops.batch_normalization_relu_ring(to_ring(x), ours)).array
        np.testing.assert_allclose(got, F.relu(chainers(x)).array, atol=1e-10)


def test_ring_batch_norm_statistics_in_float32_hold_with_a_mean_far_from_the_pivot():
    # one pass of sums about the running mean (0 at the first step): no float32 cancellation
    rng = np.random.default_rng(47)
    x = (rng.standard_normal((8, 4, 32, 32)) * 0.5 + 3).astype(np.float32)
    ours, chainers = _bn_pair(4, rng)
    y = fastops.batch_normalization_relu_ring(to_ring(x), ours)
    want = F.relu(chainers(x.astype(np.float64))).array
    np.testing.assert_allclose(from_ring(y).array, want, rtol=1e-4, atol=1e-4)


def test_ring_batch_norm_relu_gradients():
    rng = np.random.default_rng(44)
    x = rng.standard_normal((3, 6, 5, 7)) * 2 + 1
    gamma, beta = rng.uniform(0.5, 1.5, 6), rng.uniform(-0.5, 0.5, 6)
    pre = F.batch_normalization(x, gamma, beta, eps=2e-5).array
    x[np.abs(pre) < 1e-2] += 0.05  # clear of relu's kink for the numerical gradient
    gradient_check.check_backward(
        lambda a, g, b: from_ring(BatchNormReLURing(2e-5).apply((to_ring(a), g, b))[0]),
        (x, gamma, beta),
        rng.standard_normal(x.shape),
        eps=1e-4,
        atol=1e-5,
        rtol=1e-4,
    )


def test_accumulating_sgemm_adds_into_its_output_on_views():
    rng = np.random.default_rng(45)
    a = rng.standard_normal((40, 9)).astype(np.float32)
    b = rng.standard_normal((6, 7)).astype(np.float32)  # used through a (6, 5) view
    c = rng.standard_normal((20, 5)).astype(np.float32)
    want = a[10:30, 2:8] @ b[:, :5] + c
    sgemm(a[10:30, 2:8], b[:, :5], c, 1.0)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
    sgemm(a[10:30, 2:8], b[:, :5], c, 0.0)  # beta 0: overwritten
    np.testing.assert_allclose(c, a[10:30, 2:8] @ b[:, :5], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 3, 9, 7), (3, 4, 8, 10), (2, 2, 12, 5)])
@pytest.mark.parametrize("block_cells", [1, 10**6])
def test_stride_2_input_gradient_block_by_block_matches_chainer(
    shape, threads, block_cells, monkeypatch
):
    """The input gradient of a stride-2 convolution is built a block of output rows at a time,
    each thread from the row above its first block on: one row per block, blocks spanning
    pictures, and threads whose rows start inside a picture all give Chainer's gradient."""
    from charaid.fastops import ring_conv

    monkeypatch.setattr(ring_conv, "_S2_BLOCK_CELLS", block_cells)
    rng = np.random.default_rng(47)
    x = chainer.Variable(rng.standard_normal(shape))
    w = rng.standard_normal((5, shape[1], 3, 3))
    before = fastops.get_num_threads()
    fastops.set_num_threads(threads)
    try:
        y = _ring_conv(x, w, 2)
        gy = rng.standard_normal(y.shape)
        F.sum(y * gy).backward()
    finally:
        fastops.set_num_threads(before)
    xc = chainer.Variable(x.array.copy())
    F.sum(F.convolution_2d(xc, w, stride=2, pad=1) * gy).backward()
    np.testing.assert_allclose(x.grad, xc.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [2, 3])
def test_ring_ops_give_the_same_results_on_any_thread_count(threads, monkeypatch):
    from charaid.fastops import ring_conv

    monkeypatch.setattr(ring_conv, "_GRAIN", 8)  # small maps split too
    monkeypatch.setattr(ring_conv, "_CHUNK_ROWS", 64)  # and in many chunks
    rng = np.random.default_rng(46)
    x = rng.standard_normal((4, 5, 14, 12)).astype(np.float32)
    w1 = rng.standard_normal((8, 5, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
    w3 = rng.standard_normal((4, 6, 1, 1)).astype(np.float32)
    results = []
    before = fastops.get_num_threads()
    for n in (1, threads):
        fastops.set_num_threads(n)
        try:
            bn = L.BatchNormalization(8)
            params = [chainer.Variable(a) for a in (x, w1, w2, w3)]
            h = fastops.convolution_ring(to_ring(params[0]), params[1], 1)
            h = fastops.batch_normalization_relu_ring(h, bn)
            h = fastops.convolution_ring(h, params[2], 2)
            h = fastops.convolution_ring(fastops.upsample_2x_ring(h), params[3])
            y = from_ring(h)
            y.grad = np.ones_like(y.array)
            y.backward()
            results.append([y.array] + [p.grad for p in params])
        finally:
            fastops.set_num_threads(before)
    for got, want in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
