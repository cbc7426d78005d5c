"""Chainer classifiers for face crops.

`SeedCNN` is the blog seed's network: conv5x5x16 -> pool -> conv5x5x32 -> pool -> fc256 -> fcN on
RGB crops (default 50x50). Pooling uses `cover_all=False` (50 -> 25 -> 13) like PyTorch's default,
so the Chainer model and the PyTorch reference in bench/ are the same architecture.

`BNCNN` is a deeper net for real art (four conv3x3 + batch norm stages, global average pooling);
`VGG16Net` is VGG16's convolutional part, which can start from a local pretrained VGG16 file.
Every model has `features(x)`: the vector before the last layer (open-set scores, label helper).
"""

from __future__ import annotations

from pathlib import Path

import chainer
import chainer.functions as F
import chainer.links as L
import cv2
import numpy
import numpy as np

from charaid import fastops
from charaid.errors import CharaidError

MODELS = ("seed_cnn", "bn_cnn", "vgg16")


class SeedCNN(chainer.Chain):
    """The seed's CNN. `fast` switches to charaid's fused CPU kernels (same maths, same parameters).

    The kernels are numpy-only: on another device (`to_device`) the model uses Chainer's own
    functions whatever `fast` says.
    """

    def __init__(self, n_classes: int, dropout: float = 0.5, fast: bool = True) -> None:
        super().__init__()
        self.dropout = dropout
        self.fast = fast
        with self.init_scope():
            self.conv1 = L.Convolution2D(3, 16, 5, pad=2)
            self.conv2 = L.Convolution2D(16, 32, 5, pad=2)
            self.fc3 = L.Linear(None, 256)
            self.fc4 = L.Linear(256, n_classes)

    def forward(self, x: chainer.Variable) -> chainer.Variable:
        return self.head(F.dropout(self.features(x), self.dropout))

    def head(self, features: chainer.Variable) -> chainer.Variable:
        """Logits from `features` (inference: dropout is off)."""
        return self._fc(self.fc4, features)

    def features(self, x: chainer.Variable) -> chainer.Variable:
        h = self._features_fast(x) if self._use_fast() else self._features_raw(x)
        return F.relu(self._fc(self.fc3, h))

    def _use_fast(self) -> bool:
        return self.fast and self.xp is numpy

    def _fc(self, link: L.Linear, h: chainer.Variable) -> chainer.Variable:
        if not self._use_fast():
            return link(h)
        if link.W.array is None:  # fc3's input size is known only now, as in L.Linear
            link._initialize_params(h.size // h.shape[0])
        return fastops.linear(h, link.W, link.b)

    def _features_raw(self, x: chainer.Variable) -> chainer.Variable:
        h = F.max_pooling_2d(F.relu(self.conv1(x)), 5, stride=2, pad=2, cover_all=False)
        return F.max_pooling_2d(F.relu(self.conv2(h)), 5, stride=2, pad=2, cover_all=False)

    def _features_fast(self, x: chainer.Variable) -> chainer.Variable:
        # the same maths through fused conv+relu+pool nodes, chained in the CWHN layout
        h = fastops.to_cwhn(x)
        for conv in (self.conv1, self.conv2):
            h = fastops.convolution_2d_relu_max_pooling_2d(
                h, conv.W, conv.b, pad=2, ksize=5, stride=2, pool_pad=2, layout="CWHN"
            )
        return fastops.from_cwhn(h)


class BNCNN(chainer.Chain):
    """conv3x3-BN-ReLU stages (widths doubling, max-pool between), global average pool, dropout.

    Batch norm and the pooling to one vector make it train well from scratch at any input size.
    """

    def __init__(
        self, n_classes: int, widths: tuple[int, ...] = (24, 48, 96, 192, 384), fast: bool = True
    ) -> None:
        super().__init__()
        self.n_stages = len(widths)
        self.fast = fast
        with self.init_scope():
            prev = 3
            for i, width in enumerate(widths):
                setattr(self, f"conv{i}", L.Convolution2D(prev, width, 3, pad=1, nobias=True))
                setattr(self, f"bn{i}", L.BatchNormalization(width))
                prev = width
            self.fc = L.Linear(prev, n_classes)

    def features(self, x: chainer.Variable) -> chainer.Variable:
        if self.fast and self.xp is numpy:
            return self._features_fast(x)
        h = x
        for i in range(self.n_stages):
            if i:
                h = F.max_pooling_2d(h, 2, stride=2, cover_all=False)
            h = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(h)))
        return F.average(h, axis=(2, 3))

    def _features_fast(self, x: chainer.Variable) -> chainer.Variable:
        # the same maths through charaid's kernels, chained in the CWHN layout
        h = fastops.to_cwhn(x)
        for i in range(self.n_stages):
            if i:
                h = fastops.max_pooling_2d(h, 2, 2, 0, layout="CWHN")
            h = fastops.convolution_2d(h, getattr(self, f"conv{i}").W, pad=1, layout="CWHN")
            h = fastops.batch_normalization_relu(h, getattr(self, f"bn{i}"))
        return F.transpose(F.average(h, axis=(1, 2)))  # (C, N) -> (N, C)

    def forward(self, x: chainer.Variable) -> chainer.Variable:
        return self.fc(F.dropout(self.features(x), 0.3))

    def head(self, features: chainer.Variable) -> chainer.Variable:
        return self.fc(features)


VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG16_MEAN_BGR = numpy.array([103.939, 116.779, 123.68], numpy.float32)


class VGG16Net(chainer.Chain):
    """VGG16's 13 convolutions (named as in `chainer.links.VGG16Layers`: conv1_1 ... conv5_3),
    global average pooling and a new classifier layer.

    `load_pretrained` reads the conv weights from a VGG16 `.npz` in VGG16Layers' format (what
    `VGG16Layers.convert_caffemodel_to_npz` writes, ~530 MB); its fc6-fc8 are not used. Inputs
    are this project's BGR [0, 1] crops, turned into the Caffe model's BGR mean-subtracted 0-255.
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        with self.init_scope():
            prev = 3
            for b, block in enumerate(VGG16_BLOCKS, start=1):
                for c, width in enumerate(block, start=1):
                    setattr(self, f"conv{b}_{c}", L.Convolution2D(prev, width, 3, pad=1))
                    prev = width
            self.fc = L.Linear(prev, n_classes)

    def conv_names(self) -> list[str]:
        return [
            f"conv{b}_{c}" for b, blk in enumerate(VGG16_BLOCKS, 1) for c in range(1, len(blk) + 1)
        ]

    def load_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        try:
            with numpy.load(path) as npz:
                for name in self.conv_names():
                    conv = getattr(self, name)
                    for p in ("W", "b"):
                        value = npz[f"{name}/{p}"]
                        if value.shape != getattr(conv, p).shape:
                            raise CharaidError(
                                f"{path}: {name}/{p} has shape {value.shape}, VGG16 needs "
                                f"{getattr(conv, p).shape}; train.pretrained must be a VGG16 .npz"
                            )
                        getattr(conv, p).array[...] = value
        except KeyError as exc:
            raise CharaidError(
                f"{path}: not a Chainer VGG16 weights file (no {exc.args[0]}); train.pretrained "
                "expects the .npz of chainer.links.VGG16Layers"
            ) from None
        except (OSError, ValueError) as exc:
            raise CharaidError(f"{path}: cannot read pretrained weights ({exc})") from None

    def features(self, x: chainer.Variable) -> chainer.Variable:
        h = x * 255 - self.xp.asarray(VGG16_MEAN_BGR).reshape(1, 3, 1, 1)
        for b, block in enumerate(VGG16_BLOCKS, start=1):
            for c in range(1, len(block) + 1):
                h = F.relu(getattr(self, f"conv{b}_{c}")(h))
            if b < len(VGG16_BLOCKS):
                h = F.max_pooling_2d(h, 2, stride=2, cover_all=False)
        return F.average(h, axis=(2, 3))

    def forward(self, x: chainer.Variable) -> chainer.Variable:
        return self.fc(F.dropout(self.features(x), 0.5))

    def head(self, features: chainer.Variable) -> chainer.Variable:
        return self.fc(features)


def build_model(
    name: str, n_classes: int, fast: bool = True, pretrained: str | Path = ""
) -> chainer.Chain:
    """Return the classifier named in params (`train.model`); `pretrained` only for vgg16."""
    if pretrained and name != "vgg16":
        raise CharaidError(f"params.yaml: train.pretrained is only for model vgg16, not {name}")
    if name == "seed_cnn":
        return SeedCNN(n_classes, fast=fast)
    if name == "bn_cnn":
        return BNCNN(n_classes, fast=fast)
    if name == "vgg16":
        model = VGG16Net(n_classes)
        if pretrained:
            if not Path(pretrained).is_file():
                raise CharaidError(f"{pretrained}: pretrained weights not found (train.pretrained)")
            model.load_pretrained(pretrained)
        return model
    raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")


def resize_crops(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, S, S, 3) crops at the model's input side (`train.input_size`)."""
    if images.shape[1:3] == (size, size):
        return images
    shrink = images.shape[1] > size  # INTER_AREA for shrinking, bilinear for enlarging
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.resize(img, (size, size), interpolation=interp)
    return out


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) BGR -> float32 (N, 3, H, W) in [0, 1], contiguous for the convolutions."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)


def negative_class(target: str) -> str:
    """One-vs-rest: the name of the second class ("not X")."""
    return f"not {target}"


def relabel(label: str, one_vs_rest: str) -> str:
    """A label as the model sees it: unchanged, or X / "not X" in one-vs-rest mode."""
    if not one_vs_rest or label == one_vs_rest:
        return label
    return negative_class(one_vs_rest)


def classes_for(
    one_vs_rest: str, train_rows: list[dict], *others: list[dict]
) -> tuple[list[str], list[dict], ...]:
    """Class list and relabelled rows (train first) for the normal or one-vs-rest mode."""
    labels = {r["label"] for r in train_rows}
    if one_vs_rest and one_vs_rest not in labels:
        raise CharaidError(
            f"params.yaml: train.one_vs_rest is {one_vs_rest!r}, not a class of the training "
            f"split ({', '.join(sorted(labels))})"
        )
    parts = [
        [{**r, "label": relabel(r["label"], one_vs_rest)} for r in rows]
        for rows in (train_rows, *others)
    ]
    classes = sorted({r["label"] for r in parts[0]})
    return (classes, *parts)
