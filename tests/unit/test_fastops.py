"""charaid.fastops computes the same functions as Chainer's own layers, gradients included."""

from __future__ import annotations

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
import pytest
from chainer import gradient_check

from charaid import fastops
from charaid.models import SeedCNN, build_model

# (shape NCHW, ksize, stride, pad) pooling cases: the model's k5/s2/p2 on even and odd sizes,
# plus other combinations so that every boundary branch of the tap ranges is exercised
POOL_CASES = [
    ((2, 3, 10, 10), 5, 2, 2),
    ((2, 3, 7, 9), 5, 2, 2),
    ((1, 2, 25, 25), 5, 2, 2),
    ((2, 2, 6, 5), 3, 2, 1),
    ((2, 2, 8, 8), 2, 2, 0),
    ((2, 3, 7, 9), 2, 2, 0),  # tiling windows that leave the last row and column out
    ((1, 2, 10, 7), (3, 2), (3, 2), 0),
    ((1, 3, 5, 7), 3, 1, 0),
    ((1, 2, 9, 6), (3, 2), (2, 1), (1, 0)),
]

# (x shape NCHW, out channels, ksize, pad, stride)
CONV_CASES = [
    ((2, 3, 7, 7), 4, 5, 2, 1),
    ((2, 2, 6, 5), 3, 3, 1, 1),
    ((1, 3, 8, 7), 2, 3, 0, 2),
    ((2, 3, 9, 8), 4, 3, 1, 2),  # the detector's stride-2 layers, odd and even sides
    ((2, 5, 6, 7), 3, 1, 0, 1),  # pointwise: x itself is the patch matrix
]


def _spread(shape: tuple, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
    """Distinct values at least 0.01 apart: no max-pooling ties for the numerical gradient."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.01 - n * 0.005).reshape(shape).astype(dtype)


def _conv_inputs(x_shape, out_ch, k, pad, stride, rng, margin=2e-3):
    """Inputs whose conv pre-activations keep clear of relu's kink (for numerical gradients)."""
    c = x_shape[1]
    for _ in range(100):
        x = rng.uniform(-1, 1, x_shape)
        w = rng.uniform(-0.5, 0.5, (out_ch, c, k, k))
        b = rng.uniform(-0.2, 0.2, out_ch)
        pre = F.convolution_2d(x, w, b, stride=stride, pad=pad).array
        if np.abs(pre).min() > margin:
            return x, w, b
    raise AssertionError("could not draw inputs away from relu's kink")


def _chainer_pool(x, ksize, stride, pad):
    return F.max_pooling_2d(x, ksize, stride=stride, pad=pad, cover_all=False)


# --------------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("shape,ksize,stride,pad", POOL_CASES)
def test_max_pooling_forward_matches_chainer(shape, ksize, stride, pad):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ours = fastops.max_pooling_2d(x, ksize, stride, pad).array
    ref = _chainer_pool(x, ksize, stride, pad).array
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("shape,ksize,stride,pad", POOL_CASES)
def test_max_pooling_backward_numerical(shape, ksize, stride, pad):
    rng = np.random.default_rng(1)
    x = _spread(shape, rng)
    out_shape = _chainer_pool(x, ksize, stride, pad).shape
    gy = rng.standard_normal(out_shape)

    def f(v):
        return fastops.max_pooling_2d(v, ksize, stride, pad)

    gradient_check.check_backward(f, x, gy, eps=1e-3, atol=1e-6, rtol=1e-6, dtype=np.float64)


@pytest.mark.parametrize("shape,ksize,stride,pad", POOL_CASES)
def test_max_pooling_ties_route_like_chainer(shape, ksize, stride, pad):
    # few distinct values -> many ties; Chainer sends the gradient to the first maximum in
    # (ky, kx) order and so must we
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, shape).astype(np.float32)
    gy = rng.standard_normal(_chainer_pool(x, ksize, stride, pad).shape).astype(np.float32)
    grads = []
    for pool in (_chainer_pool, fastops.max_pooling_2d):
        v = chainer.Variable(x.copy())
        y = pool(v, ksize, stride, pad)
        y.grad = gy
        y.backward()
        grads.append(v.grad)
    # same routing; only the summation order of overlapping windows may differ (1 ulp)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 13, 25, 50])
def test_model_pooling_routes_ties_like_chainer_at_every_size(size):
    # the model's k5/s2/p2 on odd and even sizes, with ties everywhere: same maxima, and each
    # gradient lands on the input Chainer picks
    rng = np.random.default_rng(size)
    x = rng.integers(0, 3, (3, 2, size, size + 1)).astype(np.float32)
    ref = _chainer_pool(x, 5, 2, 2)
    gy = rng.standard_normal(ref.shape).astype(np.float32)
    grads = []
    for pool in (_chainer_pool, fastops.max_pooling_2d):
        v = chainer.Variable(x.copy())
        y = pool(v, 5, 2, 2)
        np.testing.assert_array_equal(y.array, ref.array)
        y.grad = gy
        y.backward()
        grads.append(v.grad)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)


def test_max_pooling_cwhn_layout():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    y = fastops.max_pooling_2d(fastops.to_cwhn(x), 5, 2, 2, layout="CWHN")
    np.testing.assert_array_equal(fastops.from_cwhn(y).array, _chainer_pool(x, 5, 2, 2).array)


# --------------------------------------------------------------------------------- convolution


@pytest.mark.parametrize("x_shape,out_ch,k,pad,stride", CONV_CASES)
def test_conv_relu_forward_matches_chainer(x_shape, out_ch, k, pad, stride):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((out_ch, x_shape[1], k, k)).astype(np.float32)
    b = rng.standard_normal(out_ch).astype(np.float32)
    ours = fastops.convolution_2d_relu(x, w, b, pad, stride).array
    ref = F.relu(F.convolution_2d(x, w, b, stride=stride, pad=pad)).array
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape,out_ch,k,pad,stride", CONV_CASES)
def test_conv_relu_backward_numerical(x_shape, out_ch, k, pad, stride):
    rng = np.random.default_rng(5)
    x, w, b = _conv_inputs(x_shape, out_ch, k, pad, stride, rng)
    gy = rng.standard_normal(F.convolution_2d(x, w, b, stride=stride, pad=pad).shape)

    def f(*args):
        return fastops.convolution_2d_relu(*args, pad=pad, stride=stride)

    gradient_check.check_backward(f, (x, w, b), gy, eps=1e-4, atol=1e-6, rtol=1e-5)


def test_fused_forward_matches_chainer_with_ties():
    # integer data: exact arithmetic, so conv outputs tie inside pooling windows
    rng = np.random.default_rng(6)
    x = rng.integers(0, 2, (2, 3, 11, 9)).astype(np.float32)
    w = rng.integers(-1, 2, (4, 3, 3, 3)).astype(np.float32)
    b = rng.integers(-1, 2, 4).astype(np.float32)
    xs = [chainer.Variable(x.copy()) for _ in range(2)]
    ws = [chainer.Variable(w.copy()) for _ in range(2)]
    bs = [chainer.Variable(b.copy()) for _ in range(2)]
    ref = _chainer_pool(F.relu(F.convolution_2d(xs[0], ws[0], bs[0], pad=1)), 5, 2, 2)
    ours = fastops.convolution_2d_relu_max_pooling_2d(xs[1], ws[1], bs[1], 1, 5, 2, 2)
    np.testing.assert_array_equal(ours.array, ref.array)
    gy = rng.standard_normal(ref.shape).astype(np.float32)
    for y in (ref, ours):
        y.grad = gy
        y.backward()
    for pair in (xs, ws, bs):
        np.testing.assert_allclose(pair[1].grad, pair[0].grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", fastops.LAYOUTS)
def test_fused_backward_numerical(layout):
    rng = np.random.default_rng(7)
    x, w, b = _conv_inputs((2, 2, 9, 8), 3, 5, 2, 1, rng)
    if layout == "CWHN":
        x = np.ascontiguousarray(x.transpose(1, 3, 2, 0))
    out = fastops.convolution_2d_relu_max_pooling_2d(x, w, b, 2, 5, 2, 2, layout=layout)
    gy = rng.standard_normal(out.shape)

    def f(*args):
        return fastops.convolution_2d_relu_max_pooling_2d(*args, 2, 5, 2, 2, layout=layout)

    gradient_check.check_backward(f, (x, w, b), gy, eps=1e-4, atol=1e-6, rtol=1e-5)


def test_inference_mode_skips_bookkeeping_but_matches():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 3, 12, 12)).astype(np.float32)
    w = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    b = np.zeros(4, np.float32)
    with chainer.no_backprop_mode():
        fast = fastops.convolution_2d_relu_max_pooling_2d(x, w, b, 2, 5, 2, 2).array
    ref = _chainer_pool(F.relu(F.convolution_2d(x, w, b, pad=2)), 5, 2, 2).array
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


def _threaded_layers(x, w, b, w2, gamma, beta, w_fc):
    """Every threaded kernel once: conv+relu+pool, conv, batch norm+relu, linear."""
    h = fastops.convolution_2d_relu_max_pooling_2d(x, w, b, 2, 5, 2, 2, layout="CWHN")
    h = fastops.convolution_2d(h, w2, pad=1, layout="CWHN")
    h = fastops.BatchNormReLUCWHN(2e-5).apply((h, gamma, beta))[0]
    return fastops.linear(fastops.from_cwhn(h), w_fc)


@pytest.mark.parametrize("threads", [2, 3])
def test_thread_split_gives_the_same_results(threads, monkeypatch):
    # chunks, channels and features are split over threads; only dW's sum order changes
    monkeypatch.setattr(fastops.conv, "_CHUNK_BYTES", 4096)  # many chunks even on small maps
    rng = np.random.default_rng(12)
    arrays = {
        "x": rng.standard_normal((5, 11, 10, 4)),
        "w": rng.standard_normal((7, 5, 5, 5)),
        "b": rng.standard_normal(7),
        "w2": rng.standard_normal((7, 7, 3, 3)),
        "gamma": rng.uniform(0.5, 1.5, 7),
        "beta": rng.uniform(-0.5, 0.5, 7),
        "w_fc": rng.standard_normal((300, 7 * 6 * 5)),  # x @ W.T above 1 MFLOP: split too
    }
    arrays["x"] = np.tile(arrays["x"], (1, 1, 1, 32))  # batch 128
    results = []
    before = fastops.get_num_threads()
    for n in (1, threads):
        fastops.set_num_threads(n)
        try:
            params = {k: chainer.Variable(v.astype(np.float32)) for k, v in arrays.items()}
            y = _threaded_layers(**params)
            y.grad = np.ones_like(y.array)
            y.backward()
            results.append([y.array] + [params[k].grad for k in arrays])
        finally:
            fastops.set_num_threads(before)
    for got, want in zip(results[1], results[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_blas_gets_its_threads_back_when_the_kernels_stop_splitting():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before, original = fastops.get_num_threads(), blas_threads()
    try:
        fastops.set_num_threads(2)
        fastops.linear(np.ones((64, 256), np.float32), np.ones((128, 256), np.float32))
        assert set(blas_threads()) == {1}  # each of our threads runs single-threaded BLAS
        fastops.set_num_threads(1)
        assert blas_threads() == original
    finally:
        fastops.set_num_threads(before)


def test_default_threads_are_the_cores_capped_by_omp_num_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = fastops.default_num_threads()
    assert cores >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert fastops.default_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "999")
    assert fastops.default_num_threads() == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a count: ignored
    assert fastops.default_num_threads() == cores


def test_linear_matches_chainer_and_gradients():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((6, 2, 3, 4))
    w, b = rng.standard_normal((5, 24)), rng.standard_normal(5)
    ref = F.linear(x, w, b).array
    np.testing.assert_allclose(fastops.linear(x, w, b).array, ref, rtol=1e-10)
    gradient_check.check_backward(fastops.linear, (x.reshape(6, -1), w, b), ref * 0 + 1, eps=1e-3)
    gradient_check.check_backward(
        fastops.linear, (x.reshape(6, -1), w), rng.standard_normal(ref.shape), eps=1e-3
    )


def test_bad_layout_rejected():
    with pytest.raises(ValueError, match="layout"):
        fastops.max_pooling_2d(np.zeros((1, 1, 4, 4), np.float32), 2, layout="NHWC")


def test_tune_allocator_is_safe_to_repeat():
    assert fastops.tune_allocator() in (True, False)
    assert fastops.tune_allocator() in (True, False)


# --------------------------------------------------------------------------------- SeedCNN


def _seed_pair(n_classes=5, size=50):
    np.random.seed(11)  # Chainer's initializers draw from numpy's global generator
    raw = SeedCNN(n_classes, fast=False)
    x = np.random.default_rng(9).random((4, 3, size, size), dtype=np.float32)
    with chainer.using_config("train", False):
        raw(x[:1])  # materialise fc3's lazily-sized weight
    fast = SeedCNN(n_classes, fast=True)
    with chainer.using_config("train", False):
        fast(x[:1])
    fast.copyparams(raw)
    return raw, fast, x


def test_seed_cnn_fast_and_raw_agree():
    raw, fast, x = _seed_pair()
    t = np.array([0, 1, 2, 3], np.int32)
    losses = []
    for model in (raw, fast):
        model.cleargrads()
        with chainer.using_config("train", False):  # no dropout: deterministic
            loss = F.softmax_cross_entropy(model(x), t)
        loss.backward()
        losses.append(loss.array)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    fast_params = dict(fast.namedparams())
    for name, p in raw.namedparams():
        q = fast_params[name]
        assert q.shape == p.shape
        # float32 sums in a different order: tolerance relative to the gradient's scale
        atol = 1e-5 * float(np.abs(p.grad).max())
        np.testing.assert_allclose(q.grad, p.grad, rtol=1e-4, atol=atol, err_msg=name)


def test_seed_cnn_npz_loads_in_either_mode(tmp_path):
    raw, _, x = _seed_pair()
    path = tmp_path / "model.npz"
    chainer.serializers.save_npz(str(path), raw)
    fast = build_model("seed_cnn", 5, fast=True)
    chainer.serializers.load_npz(str(path), fast)
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        np.testing.assert_allclose(fast(x).array, raw(x).array, rtol=1e-5, atol=1e-5)


def test_seed_cnn_fast_training_loss_decreases():
    # two classes a CNN separates at once: a bright square top-left vs bottom-right
    rng = np.random.default_rng(10)
    n, size = 40, 24
    x = rng.random((n, 3, size, size), dtype=np.float32) * 0.3
    t = np.arange(n, dtype=np.int32) % 2
    x[t == 0, :, 2:10, 2:10] += 0.7
    x[t == 1, :, 14:22, 14:22] += 0.7
    model = L.Classifier(SeedCNN(2, dropout=0.1, fast=True))
    opt = chainer.optimizers.Adam(alpha=1e-3)
    opt.setup(model)
    losses = []
    for _ in range(30):
        idx = rng.choice(n, 10, replace=False)
        opt.update(model, x[idx], t[idx])
        losses.append(float(model.loss.array))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    with chainer.using_config("train", False), chainer.no_backprop_mode():
        acc = F.accuracy(model.predictor(x), t).array
    assert acc > 0.9


def test_fast_adam_follows_chainer_adam():
    # the one-pass update and Chainer's numpy passes take the same steps (float rounding aside)
    rng = np.random.default_rng(13)
    x = rng.random((40, 3, 12, 12)).astype(np.float32)
    t = rng.integers(0, 3, 40).astype(np.int32)
    weights = []
    for optimizer in (chainer.optimizers.Adam(alpha=0.01), fastops.FastAdam(alpha=0.01)):
        np.random.seed(0)
        model = L.Classifier(SeedCNN(3, fast=True))
        optimizer.setup(model)
        for i in range(4):
            model.cleargrads()
            model(x[i * 10 : (i + 1) * 10], t[i * 10 : (i + 1) * 10]).backward()
            optimizer.update()
        weights.append({name: p.array.copy() for name, p in model.namedparams()})
    moved = [np.abs(weights[1][k] - weights[0][k]).max() for k in weights[0]]
    assert max(moved) < 1e-5
    assert isinstance(fastops.FastAdam().create_update_rule(), chainer.optimizers.adam.AdamRule)


# ------------------------------------------------------------------------ batch norm (bn_cnn)


def test_conv_without_bias_matches_chainer_and_gradients():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    ref = F.convolution_2d(x, w, None, pad=1).array
    np.testing.assert_allclose(fastops.convolution_2d(x, w, pad=1).array, ref, rtol=1e-10)
    gy = rng.standard_normal(ref.shape)
    gradient_check.check_backward(
        lambda a, b: fastops.convolution_2d(a, b, pad=1), (x, w), gy, eps=1e-3, atol=1e-6
    )


@pytest.mark.parametrize("k,pad,stride", [(3, 1, 1), (3, 1, 2), (5, 2, 2), (1, 0, 1)])
def test_conv_in_many_chunks_matches_chainer_at_the_borders(k, pad, stride, monkeypatch):
    # one output column per chunk: every chunk meets the padding on its own terms
    monkeypatch.setattr(fastops.conv, "_CHUNK_BYTES", 64)
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 4, 9, 10))
    w = rng.standard_normal((5, 4, k, k))
    ref = F.convolution_2d(x, w, None, stride=stride, pad=pad).array
    got = fastops.convolution_2d(x, w, pad=pad, stride=stride).array
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    gradient_check.check_backward(
        lambda a, b: fastops.convolution_2d(a, b, pad=pad, stride=stride),
        (x, w),
        rng.standard_normal(ref.shape),
        eps=1e-3,
        atol=1e-6,
    )


def _bn_relu_chainer(x, gamma, beta):
    return F.relu(F.batch_normalization(x, gamma, beta, eps=2e-5, axis=(1, 2, 3)))


def test_batch_norm_relu_matches_chainer_and_gradients():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 4, 5, 6))  # CWHN
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.uniform(-0.5, 0.5, 3)
    node_out = fastops.BatchNormReLUCWHN(2e-5).apply((x, gamma, beta))[0].array
    ref = _bn_relu_chainer(x, gamma, beta).array
    np.testing.assert_allclose(node_out, ref, rtol=1e-9, atol=1e-9)
    # keep inputs clear of relu's kink for the numerical gradient
    x[np.abs(ref) < 1e-2] += 0.05
    gy = rng.standard_normal(x.shape)
    gradient_check.check_backward(
        lambda a, g, b: fastops.BatchNormReLUCWHN(2e-5).apply((a, g, b))[0],
        (x, gamma, beta),
        gy,
        eps=1e-4,
        atol=1e-5,
        rtol=1e-4,
    )


def test_bn_cnn_fast_and_raw_agree_in_training_and_inference():
    rng = np.random.default_rng(16)
    x = rng.random((8, 3, 16, 16)).astype(np.float32)
    t = rng.integers(0, 4, 8).astype(np.int32)
    runs = []
    for fast in (False, True):
        np.random.seed(0)
        model = L.Classifier(build_model("bn_cnn", 4, fast=fast))
        model.cleargrads()
        loss = model(x, t)
        loss.backward()
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            logits = model.predictor(x).array
        grads = {k: p.grad.copy() for k, p in model.namedparams()}
        runs.append((float(loss.array), grads, logits, model.predictor.bn1.avg_var.copy()))
    (loss0, g0, y0, v0), (loss1, g1, y1, v1) = runs
    assert abs(loss0 - loss1) < 1e-5
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=1e-3, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(v1, v0, rtol=1e-5)  # running statistics updated the same way


def test_face_net_fast_and_raw_agree_with_gradients():
    from charaid.detector.net import FaceNet

    fast, raw = FaceNet((4, 6, 8), neck=5, fast=True), FaceNet((4, 6, 8), neck=5, fast=False)
    raw.copyparams(fast)
    x = np.random.default_rng(17).random((2, 3, 64, 128), dtype=np.float32)
    outs = []
    for net in (fast, raw):
        y = net(x)
        y.grad = np.cos(np.arange(y.size, dtype=np.float32)).reshape(y.shape)
        y.backward()
        outs.append([y.array] + [p.grad for _, p in sorted(net.namedparams())])
    for got, want in zip(*outs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * (np.abs(want).max() + 1e-6))
