"""Forward FLOPs per image of charaid's shipped networks, counted analytically (no torch needed).

Only the multiply-adds are counted, 2 FLOPs each: a convolution is 2*K*K*Cin*Cout*Ho*Wo, a
linear layer 2*in*out. Biases, batch norm, ReLU, pooling, the upsampling adds and the loss are
elementwise (a few % of the work at most) and left out, which is also what PyTorch's
`torch.utils.flop_counter.FlopCounterMode` counts (`train_speed.py` checks the two agree).
A training step is taken as 3x the forward (forward, input gradient, weight gradient).
"""

from __future__ import annotations

TRAIN_FACTOR = 3


def conv(k: int, cin: int, cout: int, ho: int, wo: int) -> int:
    return 2 * k * k * cin * cout * ho * wo


def linear(n_in: int, n_out: int) -> int:
    return 2 * n_in * n_out


def out_len(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1  # floor rule (Chainer's cover_all=False, PyTorch's default)


def seed_cnn(height: int, width: int, classes: int) -> int:
    """conv5x5x16 p2 -> relu -> pool k5 s2 p2 -> conv5x5x32 p2 -> relu -> pool -> fc256 -> fcN."""
    h1, w1 = out_len(height, 5, 2, 2), out_len(width, 5, 2, 2)
    h2, w2 = out_len(h1, 5, 2, 2), out_len(w1, 5, 2, 2)
    return (
        conv(5, 3, 16, height, width)
        + conv(5, 16, 32, h1, w1)
        + linear(32 * h2 * w2, 256)
        + linear(256, classes)
    )


def bn_cnn(height: int, width: int, classes: int, widths: tuple[int, ...]) -> int:
    """conv3x3 p1 (no bias) -> BN -> relu per stage, 2x2 max-pool between, average, fcN."""
    total, prev, h, w = 0, 3, height, width
    for i, out in enumerate(widths):
        if i:
            h, w = out_len(h, 2, 2, 0), out_len(w, 2, 2, 0)
        total += conv(3, prev, out, h, w)
        prev = out
    return total + linear(prev, classes)


def detector(height: int, width: int, widths: tuple[int, ...], neck: int) -> int:
    """FaceNet: stem (3x3 s2), per level a 3x3 s2 down + 3x3 block + 1x1 lateral to `neck`,
    a 3x3 smoothing conv and the 1x1 head (4 maps) at stride 4."""
    h, w = out_len(height, 3, 2, 1), out_len(width, 3, 2, 1)
    total = conv(3, 3, widths[0], h, w)
    stride4 = None
    for i in range(1, len(widths)):
        h, w = out_len(h, 3, 2, 1), out_len(w, 3, 2, 1)
        stride4 = stride4 or (h, w)
        total += conv(3, widths[i - 1], widths[i], h, w)  # down
        total += conv(3, widths[i], widths[i], h, w)  # block
        total += conv(1, widths[i], neck, h, w)  # lateral
    h, w = stride4
    return total + conv(3, neck, neck, h, w) + conv(1, neck, 4, h, w)
