"""PyTorch twins of charaid's shipped networks: the yardstick of bench/train_speed.py.

Each twin has the Chainer model's layers under the same names (conv1, bn0, down3_bn, ...), with
the same channels, kernel sizes, strides, pads, pooling, batch norm (Chainer's eps 2e-5 and
decay 0.9 = PyTorch momentum 0.1) and dropout, so the parameter counts match and the Chainer
weights load into it one to one. `detector_loss` is `charaid.detector.heatmap.loss` in torch.
PyTorch is a bench-only dependency (requirements-bench.txt). Run from the repository root to
check the twins against the Chainer models (weights copied across, outputs and losses compared):

    python bench/twins.py
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# charaid.detector.net's head channels and initial face probability (kept here so that the
# twins import without Chainer; `python bench/twins.py` checks them against charaid's)
HEAT, SIZE, OFFSET_X, OFFSET_Y = range(4)
PRIOR = 0.01
BN_EPS, BN_MOMENTUM = 2e-5, 0.1  # chainer.links.BatchNormalization's defaults


def _pooled(n: int) -> int:
    return (n + 2 * 2 - 5) // 2 + 1  # k5 s2 p2, floor (cover_all=False)


class SeedTwin(nn.Module):
    """`charaid.models.SeedCNN`: conv5x5x16 -> pool -> conv5x5x32 -> pool -> fc256 -> fcN."""

    def __init__(self, classes: int, size: int = 50, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc3 = nn.Linear(32 * _pooled(_pooled(size)) ** 2, 256)
        self.fc4 = nn.Linear(256, classes)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 5, 2, 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 5, 2, 2)
        h = F.relu(self.fc3(h.flatten(1)))
        return self.fc4(F.dropout(h, self.dropout, self.training))


class BNTwin(nn.Module):
    """`charaid.models.BNCNN`: conv3x3 (no bias) -> BN -> ReLU stages, 2x2 max-pool between,
    global average pool, dropout 0.3, fcN."""

    def __init__(self, classes: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.n_stages = len(widths)
        prev = 3
        for i, width in enumerate(widths):
            setattr(self, f"conv{i}", nn.Conv2d(prev, width, 3, padding=1, bias=False))
            setattr(self, f"bn{i}", nn.BatchNorm2d(width, BN_EPS, BN_MOMENTUM))
            prev = width
        self.fc = nn.Linear(prev, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(self.n_stages):
            if i:
                h = F.max_pool2d(h, 2, 2)
            h = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(h)))
        return self.fc(F.dropout(h.mean((2, 3)), 0.3, self.training))


class FaceTwin(nn.Module):
    """`charaid.detector.net.FaceNet`: stride-2 conv-BN-ReLU backbone to 1/64 (a down and a block
    conv per level), FPN-style top-down path of 1x1 laterals (conv-BN-ReLU) added to the
    nearest-upsampled level below, a 3x3 smoothing conv-BN-ReLU and a 1x1 head (4 maps)."""

    def __init__(
        self, widths: tuple[int, ...] = (16, 32, 64, 96, 128, 128), neck: int = 32
    ) -> None:
        super().__init__()
        self.levels = len(widths) - 1

        def cbr(name: str, cin: int, cout: int, k: int, stride: int = 1) -> None:
            setattr(self, name, nn.Conv2d(cin, cout, k, stride, k // 2, bias=False))
            setattr(self, f"{name}_bn", nn.BatchNorm2d(cout, BN_EPS, BN_MOMENTUM))

        cbr("stem", 3, widths[0], 3, 2)
        for i in range(1, len(widths)):
            cbr(f"down{i}", widths[i - 1], widths[i], 3, 2)
            cbr(f"block{i}", widths[i], widths[i], 3)
            cbr(f"lat{i}", widths[i], neck, 1)
        cbr("smooth", neck, neck, 3)
        self.head = nn.Conv2d(neck, 4, 1)
        with torch.no_grad():
            self.head.bias[HEAT] = -math.log((1 - PRIOR) / PRIOR)

    def _cbr(self, name: str, h: torch.Tensor) -> torch.Tensor:
        return F.relu(getattr(self, f"{name}_bn")(getattr(self, name)(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._cbr("stem", x)
        feats = []
        for i in range(1, self.levels + 1):
            h = self._cbr(f"block{i}", self._cbr(f"down{i}", h))
            feats.append(h)
        p = self._cbr(f"lat{self.levels}", feats[-1])
        for i in range(self.levels - 1, 0, -1):
            p = self._cbr(f"lat{i}", feats[i - 1]) + F.interpolate(p, scale_factor=2.0)
        return self.head(self._cbr("smooth", p))


def detector_loss(maps: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """`charaid.detector.heatmap.loss`: penalty-reduced focal loss on the heat map and L1 on the
    centre offsets (each over the number of faces), bump-weighted L1 on the log side."""
    logit = maps[:, HEAT]
    heat = batch["heat"]
    faces = max(1, len(batch["centre"]))
    p = torch.sigmoid(logit)
    peak = (heat >= 1.0).float()
    log_p, log_q = -F.softplus(-logit), -F.softplus(logit)
    pos = -(peak * log_p * (1 - p) ** 2).sum()
    neg = -((1 - peak) * (1 - heat) ** 4 * log_q * p**2).sum()
    total = (pos + neg) / faces
    if len(batch["centre"]):

        def at(channel: int, cells: torch.Tensor) -> torch.Tensor:
            return maps[:, channel].reshape(-1)[cells]

        off, centre = batch["offset"], batch["centre"]
        off_err = (at(OFFSET_X, centre) - off[:, 0]).abs() + (
            at(OFFSET_Y, centre) - off[:, 1]
        ).abs()
        weight = batch["weight"]
        size_err = (at(SIZE, batch["where"]) - batch["size"]).abs()
        total = total + off_err.sum() / faces + (weight * size_err).sum() / weight.sum()
    return total


def count_params(model: nn.Module) -> int:
    """Trainable parameters (batch norm's running statistics are buffers, as in Chainer)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Forward FLOPs per image as PyTorch's FlopCounterMode counts them (convs and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros((2, *shape)))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


# ----------------------------------------------------------------------------- the check


def load_chainer(link: Any, model: nn.Module) -> None:
    """Copy a Chainer link's parameters and batch-norm statistics into its twin, by name."""
    names = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}
    names |= {"avg_mean": "running_mean", "avg_var": "running_var"}
    state = model.state_dict()
    done = set()
    for path, value in link.namedparams():
        *parts, leaf = path.strip("/").split("/")
        key = ".".join(parts) + "." + names[leaf]
        state[key].copy_(torch.from_numpy(value.array))
        done.add(key)
    for path, sub in link.namedlinks(skipself=True):
        for leaf in ("avg_mean", "avg_var"):
            if hasattr(sub, leaf):
                key = path.strip("/").replace("/", ".") + "." + names[leaf]
                state[key].copy_(torch.from_numpy(getattr(sub, leaf)))
                done.add(key)
    missing = {k for k in state if not k.endswith("num_batches_tracked")} - done
    assert not missing, f"twin has parameters the Chainer model lacks: {sorted(missing)}"


def check() -> None:
    """Chainer models vs twins (weights copied): inference outputs, and the detector's loss."""
    import chainer
    import numpy as np

    from charaid.detector import heatmap, net
    from charaid.models import BNCNN, SeedCNN

    assert (net.HEAT, net.SIZE, net.OFFSET_X, net.OFFSET_Y, net.PRIOR) == (
        HEAT,
        SIZE,
        OFFSET_X,
        OFFSET_Y,
        PRIOR,
    )
    rng = np.random.default_rng(0)
    bn_widths = tuple(inspect.signature(BNCNN).parameters["widths"].default)
    cases = [
        ("seed_cnn", lambda f: SeedCNN(10, fast=f), SeedTwin(10, 50), (50, 50)),
        ("bn_cnn", lambda f: BNCNN(10, fast=f), BNTwin(10, bn_widths), (64, 64)),
        ("detector", lambda f: net.FaceNet(fast=f), FaceTwin(), (128, 192)),
    ]
    for name, make, twin, (h, w) in cases:
        x = rng.random((3, 3, h, w), dtype=np.float32)
        for fast in (False, True):
            np.random.seed(0)
            model = make(fast)
            with chainer.using_config("train", True):
                model(x[:2])  # SeedCNN's fc3 takes its size from the first input
            for sub in model.links():  # non-trivial statistics, so that eval mode tests them
                if hasattr(sub, "avg_var"):
                    sub.avg_mean[...] = rng.standard_normal(sub.avg_mean.shape) * 0.1
                    sub.avg_var[...] = rng.uniform(0.5, 2, sub.avg_var.shape)
            load_chainer(model, twin)
            twin.eval()
            with chainer.using_config("train", False), chainer.no_backprop_mode():
                ours = model(x).array
            with torch.no_grad():
                theirs = twin(torch.from_numpy(x)).numpy()
            n_ours = sum(p.size for p in model.params())
            print(
                f"{name:9s} fast={fast!s:5s} params {n_ours:,} / {count_params(twin):,}  "
                f"max |chainer - torch| {np.abs(ours - theirs).max():.2e} "
                f"(output scale {np.abs(ours).max():.2f})"
            )
            assert n_ours == count_params(twin)
            assert np.allclose(ours, theirs, atol=1e-4, rtol=1e-3)
            if name == "detector" and fast:  # as detect_faces runs it: batch norm folded in
                from charaid.detector.folded import fold

                diff = np.abs(fold(model)(x) - theirs).max()
                print(f"{'':9s} folded: max |chainer - torch| {diff:.2e}")
                assert np.allclose(fold(model)(x), theirs, atol=1e-4, rtol=1e-3)
            if name == "detector":  # no dropout: training mode (batch statistics) compares too
                twin.train()
                with chainer.using_config("train", True):
                    ours = model(x).array
                theirs = twin(torch.from_numpy(x)).detach().numpy()
                diff = np.abs(ours - theirs).max()
                print(f"{'':9s} training mode: max |chainer - torch| {diff:.2e}")
                assert np.allclose(ours, theirs, atol=1e-3, rtol=1e-3)
    # the loss formula: charaid's targets, the same maps through both losses
    boxes = [[(10, 12, 40, 40), (80, 60, 24, 26)], [], [(5, 90, 100, 100)]]
    batch = heatmap.collate([heatmap.encode(b, 128, 192) for b in boxes])
    maps = rng.standard_normal((3, 4, 32, 48)).astype(np.float32)
    ours = float(heatmap.loss(chainer.Variable(maps), batch)[0].array)
    theirs = float(detector_loss(torch.from_numpy(maps), to_torch(batch)))
    print(f"detector loss: chainer {ours:.6f}, torch {theirs:.6f}")
    assert math.isclose(ours, theirs, rel_tol=1e-5)


def to_torch(batch: dict) -> dict[str, torch.Tensor]:
    """A collated detector batch (numpy) as tensors: flat cell indexes as int64."""
    out = {k: torch.from_numpy(v) for k, v in batch.items()}
    for key in ("centre", "where"):
        out[key] = out[key].long()
    return out


if __name__ == "__main__":
    check()
