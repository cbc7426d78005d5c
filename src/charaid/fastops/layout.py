"""The layouts ("NCHW", Chainer's; "CWHN", the kernels') and what every public function does
with its arguments: check the layout, convert NCHW <-> CWHN, read Chainer's (h, w) pairs,
compute output lengths, tell whether backward bookkeeping is needed."""

from __future__ import annotations

import chainer
import chainer.functions as F
import numpy as np

LAYOUTS = ("NCHW", "CWHN")


def to_cwhn(x: chainer.Variable | np.ndarray) -> chainer.Variable:
    """NCHW -> CWHN (a view; the next layer's padding copy makes it contiguous)."""
    return F.transpose(x, (1, 3, 2, 0))


def from_cwhn(x: chainer.Variable | np.ndarray) -> chainer.Variable:
    """CWHN -> NCHW."""
    return F.transpose(x, (3, 0, 2, 1))


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _out_len(size: int, k: int, s: int, p: int) -> int:
    """Output length with cover_all=False (Chainer's and PyTorch's floor rule)."""
    return (size + 2 * p - k) // s + 1


def _needs_grad(*inputs: chainer.Variable | np.ndarray) -> bool:
    return chainer.config.enable_backprop and any(
        isinstance(v, chainer.Variable) and v.requires_grad for v in inputs
    )


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
