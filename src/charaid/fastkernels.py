"""Compiled (numba) loops behind `charaid.fastops`, on arrays in the CWHN layout (C, W, H, N).

numpy can only express max pooling and col2im as many whole-array passes (a max, a compare,
a select and an add per tap); each pass streams the whole map through memory. These loops do
one pass with the batch innermost, so the compiler vectorises over N. They are compiled on
first use and cached next to this file (`cache=True`), so only the first run pays (~seconds).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def max_pool_fwd(
    x: np.ndarray,
    kw: int,
    kh: int,
    sx: int,
    sy: int,
    pw: int,
    ph: int,
    out: np.ndarray,
    arg: np.ndarray,
    need_arg: bool,
) -> None:
    """out = max over each window (padding never wins); arg = winning tap ky*kw + kx.

    Taps run in Chainer's (ky, kx) order and only a strictly larger value replaces the running
    maximum, so ties go to the first tap, as in Chainer's argmax.
    """
    c_n, w_n, h_n, n_n = x.shape
    wo_n, ho_n = out.shape[1], out.shape[2]
    for c in range(c_n):
        for wo in range(wo_n):
            for ho in range(ho_n):
                m = out[c, wo, ho]
                a = arg[c, wo, ho]
                first = True
                for ky in range(kh):
                    hi = ho * sy + ky - ph
                    if hi < 0 or hi >= h_n:
                        continue
                    for kx in range(kw):
                        wi = wo * sx + kx - pw
                        if wi < 0 or wi >= w_n:
                            continue
                        src = x[c, wi, hi]
                        if first:
                            first = False
                            for n in range(n_n):
                                m[n] = src[n]
                            if need_arg:
                                t0 = np.uint8(ky * kw + kx)
                                for n in range(n_n):
                                    a[n] = t0
                        elif need_arg:
                            t = np.uint8(ky * kw + kx)
                            for n in range(n_n):
                                v = src[n]
                                if v > m[n]:
                                    m[n] = v
                                    a[n] = t
                        else:
                            for n in range(n_n):
                                m[n] = max(m[n], src[n])


@njit(cache=True, nogil=True)
def max_pool_bwd(
    g: np.ndarray,
    arg: np.ndarray,
    kw: int,
    sx: int,
    sy: int,
    pw: int,
    ph: int,
    gx: np.ndarray,
) -> None:
    """gx (zeroed by the caller) += each output gradient, sent to its window's winning tap."""
    c_n, wo_n, ho_n, n_n = g.shape
    for c in range(c_n):
        for wo in range(wo_n):
            for ho in range(ho_n):
                gr = g[c, wo, ho]
                ar = arg[c, wo, ho]
                for n in range(n_n):
                    ky, kx = divmod(ar[n], kw)
                    gx[c, wo * sx + kx - pw, ho * sy + ky - ph, n] += gr[n]


@njit(cache=True, nogil=True)
def max_pool_bwd_tiles(g: np.ndarray, arg: np.ndarray, kw: int, kh: int, gx: np.ndarray) -> None:
    """`max_pool_bwd` for windows that tile the map (stride = window, no padding): every input
    cell a window covers is written once, its gradient or zero, with no scatter (a select the
    compiler vectorises over N: 3.5 -> 1.8 ms on a (24, 64, 64, 50) map, one core)."""
    c_n, wo_n, ho_n, n_n = g.shape
    zero = g.dtype.type(0)
    for c in range(c_n):
        for wo in range(wo_n):
            for ho in range(ho_n):
                gr = g[c, wo, ho]
                ar = arg[c, wo, ho]
                for ky in range(kh):
                    for kx in range(kw):
                        t = np.uint8(ky * kw + kx)
                        dst = gx[c, wo * kw + kx, ho * kh + ky]
                        for n in range(n_n):
                            dst[n] = gr[n] if ar[n] == t else zero


@njit(cache=True, nogil=True)
def relu_grad_bias(g: np.ndarray, z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = g * (z > 0) (relu's backward, z its output); returns the per-channel sum (bias)."""
    c_n = g.shape[0]
    gb = np.zeros(c_n, dtype=g.dtype)
    g2 = g.reshape(c_n, -1)
    z2 = z.reshape(c_n, -1)
    o2 = out.reshape(c_n, -1)
    for c in range(c_n):
        s = g.dtype.type(0)
        for i in range(g2.shape[1]):
            # the mask as a multiply: a branch on the sign mispredicts about half the time
            # (a 2.1 M-element map: 9.9 -> 3.4 ms); the sum keeps its order
            v = g2[c, i] * g.dtype.type(z2[c, i] > 0)
            o2[c, i] = v
            s += v
        gb[c] = s
    return gb


@njit(cache=True, nogil=True)
def bias_relu(z: np.ndarray, b: np.ndarray) -> None:
    """z = max(z + b[c], 0) in place."""
    c_n = z.shape[0]
    z2 = z.reshape(c_n, -1)
    for c in range(c_n):
        bc = b[c]
        for i in range(z2.shape[1]):
            v = z2[c, i] + bc
            z2[c, i] = v if v > 0 else z.dtype.type(0)


@njit(cache=True, nogil=True)
def col2im_add(gcol: np.ndarray, gx: np.ndarray, x0: int, sx: int, sy: int, ph: int) -> None:
    """gx[:, x0 + kx + sx*w, ky + sy*h - ph] += gcol[:, kx, ky, w, h] (gcol: C, kw, kh, nw, Ho,
    N), skipping the taps that fall on the padding (x0 is already shifted by the pad)."""
    c_n, kw, kh, nw, ho_n, n_n = gcol.shape
    w_n, h_n = gx.shape[1], gx.shape[2]
    for c in range(c_n):
        for kx in range(kw):
            for w in range(nw):
                wi = x0 + kx + sx * w
                if wi < 0 or wi >= w_n:
                    continue
                dst_w = gx[c, wi]
                for ky in range(kh):
                    src = gcol[c, kx, ky, w]
                    for h in range(ho_n):
                        hi = ky + sy * h - ph
                        if hi < 0 or hi >= h_n:
                            continue
                        d = dst_w[hi]
                        s = src[h]
                        for n in range(n_n):
                            d[n] += s[n]


@njit(cache=True, nogil=True, fastmath=True)
def adam_update(
    p: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    one_minus_beta1: float,
    one_minus_beta2: float,
    alpha_t: float,
    eps: float,
    eta: float,
    keep: float,
) -> None:
    """Chainer's Adam step in one pass (its CPU rule makes ~10 whole-array numpy passes):
    m += (1-b1)(g-m); v += (1-b2)(g²-v); p = keep*p - eta * alpha_t * m / (sqrt(v) + eps).
    In the parameters' precision, as Chainer's numpy passes are (float64 scalars would make
    the loop scalar)."""
    pf, gf, mf, vf = p.ravel(), g.ravel(), m.ravel(), v.ravel()
    t = p.dtype.type
    b1, b2, step, e, k = t(one_minus_beta1), t(one_minus_beta2), t(eta * alpha_t), t(eps), t(keep)
    for i in range(pf.size):
        gi = gf[i]
        mi = mf[i] + b1 * (gi - mf[i])
        vi = vf[i] + b2 * (gi * gi - vf[i])
        mf[i] = mi
        vf[i] = vi
        pf[i] = k * pf[i] - step * mi / (np.sqrt(vi) + e)


@njit(cache=True, nogil=True, fastmath=True)
def _channel_stats(x2: np.ndarray, c: int) -> tuple[float, float]:
    """Mean and (biased) variance of row c, in float64, two passes for accuracy."""
    m = x2.shape[1]
    s = 0.0
    for i in range(m):
        s += x2[c, i]
    mu = s / m
    ss = 0.0
    for i in range(m):
        d = x2[c, i] - mu
        ss += d * d
    return mu, ss / m


@njit(cache=True, nogil=True)
def bn_relu_fwd(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    eps: float,
    y: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
) -> None:
    """y = relu(gamma * (x - mean) / sqrt(var + eps) + beta), statistics per channel (axis 0)
    over the batch and both spatial axes; `mean`/`var` (float64) receive them."""
    c_n = x.shape[0]
    x2, y2 = x.reshape(c_n, -1), y.reshape(c_n, -1)
    zero = y.dtype.type(0)
    for c in range(c_n):
        mu, vr = _channel_stats(x2, c)
        mean[c], var[c] = mu, vr
        a = gamma[c] / np.sqrt(vr + eps)
        b = beta[c] - mu * a
        a32, b32 = y.dtype.type(a), y.dtype.type(b)
        for i in range(x2.shape[1]):
            v = x2[c, i] * a32 + b32
            y2[c, i] = v if v > zero else zero


@njit(cache=True, nogil=True, fastmath=True)
def bn_relu_bwd(
    gy: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    gamma: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    gx: np.ndarray,
    ggamma: np.ndarray,
    gbeta: np.ndarray,
) -> None:
    """Backward of `bn_relu_fwd` (batch statistics): relu's mask, then batch norm's gradient
    gx = gamma/std * (g - mean(g) - x_hat * mean(g * x_hat))."""
    c_n = x.shape[0]
    g2, x2 = gy.reshape(c_n, -1), x.reshape(c_n, -1)
    y2, gx2 = y.reshape(c_n, -1), gx.reshape(c_n, -1)
    m = x2.shape[1]
    zero = gy.dtype.type(0)
    for c in range(c_n):
        inv = 1.0 / np.sqrt(var[c] + eps)
        mu = mean[c]
        sg = 0.0
        sgx = 0.0
        for i in range(m):
            g = g2[c, i] if y2[c, i] > zero else zero
            sg += g
            sgx += g * ((x2[c, i] - mu) * inv)
        ggamma[c] = sgx
        gbeta[c] = sg
        k = gamma[c] * inv
        # gx = k*g - k*mean(g) - k*inv*mean(g*x_hat)*(x - mu), as one multiply-add per element
        k_g = gx.dtype.type(k)
        k_x = gx.dtype.type(k * inv * sgx / m)
        k_0 = gx.dtype.type(-k * sg / m + k * inv * sgx / m * mu)
        for i in range(m):
            g = g2[c, i] if y2[c, i] > zero else zero
            gx2[c, i] = k_g * g - k_x * x2[c, i] + k_0


@njit(cache=True, nogil=True)
def scale_shift_relu(x: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray) -> None:
    """y = relu(a[c] * x + b[c]) per channel (axis 0): batch norm with fixed statistics."""
    c_n = x.shape[0]
    x2, y2 = x.reshape(c_n, -1), y.reshape(c_n, -1)
    zero = y.dtype.type(0)
    for c in range(c_n):
        ac, bc = y.dtype.type(a[c]), y.dtype.type(b[c])
        for i in range(x2.shape[1]):
            v = x2[c, i] * ac + bc
            y2[c, i] = v if v > zero else zero


# Ring layout (N, H+2, W+2, C): the inside cells only, channels innermost. Each kernel takes a
# range [r0, r1) of inside rows (picture i, row y: index i * H + y), so the threads split a map
# by rows, and walks each row's inside as one flat run of W * C floats, with the per-channel
# numbers tiled to that length by the caller: one long loop LLVM vectorises, where a loop over
# C alone (16 for the detector's widest map) is too short to. Sums collect per position of the
# run in float32 and go into float64 totals per channel at the end.
# No loop reads or writes more than 8 arrays: LLVM checks each pair of arrays a loop writes and
# reads for overlap at run time, and beyond 8 such checks it gives the loop up as scalar (4x
# slower); so the backward's two sums run as two loops over the run. Those reductions may reorder
# their sums, but never contract x * a + b into one rounding: relu's mask in the backward must be
# the forward's, bit for bit.
_SUMS = {"reassoc", "nsz", "arcp"}


@njit(cache=True, nogil=True)
def _ring_run(x: np.ndarray, r: int) -> np.ndarray:
    """Inside row r (i * H + y) of a ring map as a flat run of W * C floats."""
    n, hp, wp, c_n = x.shape
    h = hp - 2
    return x[r // h, r % h + 1].reshape(wp * c_n)[c_n : (wp - 1) * c_n]


@njit(cache=True, nogil=True)
def _per_channel(acc: np.ndarray, c_n: int, out: np.ndarray) -> None:
    """out[c] += the sum of acc's positions of channel c (acc: a run of W * C)."""
    for j in range(acc.size):
        out[j % c_n] += acc[j]


@njit(cache=True, nogil=True, fastmath=_SUMS)
def ring_sums(x: np.ndarray, shift: np.ndarray, r0: int, r1: int, s: np.ndarray, ss: np.ndarray):
    """s[c] += sum of (x - shift[c]), ss[c] += sum of (x - shift[c])^2 over the inside cells of
    rows [r0, r1) (float64 totals; `shift` tiled to a row's run)."""
    c_n = x.shape[3]
    a = np.zeros(shift.size, x.dtype)
    b = np.zeros(shift.size, x.dtype)
    for r in range(r0, r1):
        run = _ring_run(x, r)
        for j in range(run.size):
            d = run[j] - shift[j]
            a[j] += d
            b[j] += d * d
    _per_channel(a, c_n, s)
    _per_channel(b, c_n, ss)


@njit(cache=True, nogil=True)
def ring_scale_shift_relu(
    x: np.ndarray, a: np.ndarray, b: np.ndarray, r0: int, r1: int, y: np.ndarray
) -> None:
    """y = relu(a * x + b) on the inside cells of rows [r0, r1) (a, b tiled to a row's run; y's
    ring left alone)."""
    zero = y.dtype.type(0)
    for r in range(r0, r1):
        src, dst = _ring_run(x, r), _ring_run(y, r)
        for j in range(src.size):
            dst[j] = max(src[j] * a[j] + b[j], zero)


@njit(cache=True, nogil=True)
def rows_bias_relu(z: np.ndarray, b: np.ndarray) -> None:
    """z[r, o] = max(z[r, o] + b[o], 0) in place: a block of rows of a channels-innermost map
    (a convolution's chunk, still in cache), possibly a column block of wider rows."""
    zero = z.dtype.type(0)
    for r in range(z.shape[0]):
        for o in range(z.shape[1]):
            v = z[r, o] + b[o]
            z[r, o] = v if v > zero else zero


@njit(cache=True, nogil=True)
def ring_add_upsampled(y: np.ndarray, x: np.ndarray, r0: int, r1: int) -> None:
    """y[i, 1 + Y, 1 + X] += x[i, 1 + Y // 2, 1 + X // 2] for y's inside rows [r0, r1)
    (i * H + Y): nearest 2x upsampling of ring map x added into ring map y."""
    h, w, c_n = y.shape[1] - 2, y.shape[2] - 2, y.shape[3]
    for r in range(r0, r1):
        i, yy = r // h, r % h
        for xx in range(w):
            for c in range(c_n):
                y[i, 1 + yy, 1 + xx, c] += x[i, 1 + yy // 2, 1 + xx // 2, c]


@njit(cache=True, nogil=True, fastmath=_SUMS)
def ring_bn_relu_sums(
    gy: np.ndarray,
    x: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    mean: np.ndarray,
    r0: int,
    r1: int,
    sg: np.ndarray,
    sgx: np.ndarray,
) -> None:
    """Batch norm + relu backward, first pass: sg[c] += sum of g, sgx[c] += sum of g * (x - mean)
    over rows [r0, r1), g the output gradient where the forward's a * x + b was positive (the
    mask from x itself: one map fewer to read than from the output; a, b, mean tiled)."""
    c_n = x.shape[3]
    zero = gy.dtype.type(0)
    acc_g = np.zeros(a.size, gy.dtype)
    acc_x = np.zeros(a.size, gy.dtype)
    for r in range(r0, r1):
        g_run, x_run = _ring_run(gy, r), _ring_run(x, r)
        # relu's mask as a multiply: a branch here mispredicts half the time
        for j in range(g_run.size):
            acc_g[j] += g_run[j] * gy.dtype.type(x_run[j] * a[j] + b[j] > zero)
        for j in range(g_run.size):
            v = x_run[j]
            acc_x[j] += g_run[j] * gy.dtype.type(v * a[j] + b[j] > zero) * (v - mean[j])
    _per_channel(acc_g, c_n, sg)
    _per_channel(acc_x, c_n, sgx)


@njit(cache=True, nogil=True)
def ring_bn_relu_gx(
    gy: np.ndarray,
    x: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    k_g: np.ndarray,
    k_x: np.ndarray,
    k_0: np.ndarray,
    r0: int,
    r1: int,
    gx: np.ndarray,
) -> None:
    """Second pass: gx = k_g * g - k_x * x + k_0 on the inside cells of rows [r0, r1), g masked
    as in `ring_bn_relu_sums` (every per-channel number tiled; gx's ring left alone)."""
    zero = gy.dtype.type(0)
    for r in range(r0, r1):
        g_run, x_run, out = _ring_run(gy, r), _ring_run(x, r), _ring_run(gx, r)
        for j in range(g_run.size):
            v = x_run[j]
            g = g_run[j] * gy.dtype.type(v * a[j] + b[j] > zero)
            out[j] = k_g[j] * g - k_x[j] * v + k_0[j]


@njit(cache=True, nogil=True)
def ring_patches(x: np.ndarray, s: int, r0: int, r1: int, cols: np.ndarray) -> None:
    """cols[i, yo, xo, ky, kx, c] = x[i, s*yo + ky, s*xo + kx, c] for the output rows [r0, r1)
    (i * Ho + yo): the 3x3 windows at stride s of a ring map (the ring is the padding)."""
    ho, wo, c_n = cols.shape[1], cols.shape[2], cols.shape[5]
    for r in range(r0, r1):
        i, yo = r // ho, r % ho
        for xo in range(wo):
            for ky in range(3):
                for kx in range(3):
                    for c in range(c_n):
                        cols[i, yo, xo, ky, kx, c] = x[i, s * yo + ky, s * xo + kx, c]


@njit(cache=True, nogil=True)
def ring_s2_gather(rows: np.ndarray, i: int, a: int, b: int, last: bool, gx: np.ndarray) -> None:
    """The adjoint of `ring_patches` at stride 2 for the rows 2a .. 2b-1 (ring coordinates; and
    2b when `last`) of picture i of gx: each inside cell is the sum of the window taps that read
    it. rows (b-a+1, Wo, 3, 3, C) holds the patch gradients of output rows a-1 .. b-1 (the
    first is read only when a > 0). Output rows [a, b) own those input rows, so threads
    splitting output rows never write the same cell; gx's ring is left alone."""
    wo, c_n = rows.shape[1], rows.shape[4]
    hp, wp = gx.shape[1], gx.shape[2]
    for yi in range(max(1, 2 * a), min(2 * b + (1 if last else 0), hp - 1)):
        # the windows reading row yi: output row yo reads rows 2 * yo + ky (ky = 0, 1, 2), and
        # is rows[yo - a + 1]
        m = yi // 2
        n_src, r0, k0, r1, k1 = 0, 0, 0, 0, 0
        if yi % 2:
            n_src, r0, k0 = 1, m - a + 1, 1
        else:
            if m < b:
                n_src, r0, k0 = 1, m - a + 1, 0
            if m > 0:  # the window above, whose last row this is
                if n_src:
                    r1, k1 = m - a, 2
                else:
                    r0, k0 = m - a, 2
                n_src += 1
        for xi in range(1, wp - 1):
            p = xi // 2
            for c in range(c_n):
                gx[i, yi, xi, c] = 0
            for t in range(n_src):
                r, ky = (r0, k0) if t == 0 else (r1, k1)
                if xi % 2:
                    for c in range(c_n):
                        gx[i, yi, xi, c] += rows[r, p, ky, 1, c]
                    continue
                if p < wo:
                    for c in range(c_n):
                        gx[i, yi, xi, c] += rows[r, p, ky, 0, c]
                if p > 0:
                    for c in range(c_n):
                        gx[i, yi, xi, c] += rows[r, p - 1, ky, 2, c]
