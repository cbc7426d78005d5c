"""Fast CPU kernels for the models' layers, as Chainer `FunctionNode`s (forward and backward).

Chainer 7's CPU path builds a 6-D im2col for every convolution *and* every max-pooling and
reduces it with a generic argmax; on a small CPU that is most of the training time. These
kernels compute the same functions with a layout chosen for numpy: "CWHN" (channels, width,
height, batch). The batch is innermost, so every spatial shift or stride-2 slice copies
contiguous runs of N (or H*N) floats. Their loops are compiled in `charaid.fastkernels` (numba),
and every kernel splits its own work over the cores.

The public functions take "NCHW" (Chainer's layout) or "CWHN"; models chain CWHN layers and
convert once at each end (`to_cwhn`, `from_cwhn`). The detector (FaceNet), whose GEMMs are
most of its time, runs in a layout of its own instead (`ring_layout`: channels innermost, so its
convolutions need no patch matrix at stride 1). One op family per module:

* `threads`: the thread pool the kernels split their work over (`set_num_threads`), its state.
* `layout`: the two layouts, `to_cwhn` / `from_cwhn`, the argument helpers every op shares.
* `conv`: convolution as chunked im2col + GEMM, alone, with bias + relu, or fused with pooling.
* `pool`: max pooling (compiled loops keeping each window's winning tap for the backward).
* `norm`: batch normalization + relu (training, fixed statistics and inference paths).
* `ring_layout`, `ring_conv`, `ring_norm`, `upsample`: the ring layout FaceNet runs in
  (channels innermost, a zero ring around each map): its conversions, 3x3 and 1x1 convolutions
  as shifted GEMMs or patch matrices (with a fused bias + relu where batch norm is folded in,
  `charaid.detector.folded`), batch norm + relu, nearest-neighbour 2x upsampling.
* `blas`: an accumulating SGEMM on array views (numpy's own OpenBLAS, through ctypes).
* `fc`: the linear layer, its GEMMs split over the threads.
* `adam`: `FastAdam`, Chainer's Adam with a one-pass CPU update.
* `allocator`: `tune_allocator`, glibc malloc settings that keep freed memory warm.
"""

from charaid.fastops.adam import FastAdam
from charaid.fastops.allocator import tune_allocator
from charaid.fastops.conv import (
    Conv2DCWHN,
    Conv2DReLUPoolCWHN,
    convolution_2d,
    convolution_2d_relu,
    convolution_2d_relu_max_pooling_2d,
)
from charaid.fastops.fc import LinearThreaded, linear
from charaid.fastops.layout import LAYOUTS, from_cwhn, to_cwhn
from charaid.fastops.norm import BatchNormReLUCWHN, batch_normalization_relu
from charaid.fastops.pool import MaxPooling2DCWHN, max_pooling_2d
from charaid.fastops.ring_conv import convolution_ring
from charaid.fastops.ring_layout import from_ring, to_ring
from charaid.fastops.ring_norm import batch_normalization_relu_ring
from charaid.fastops.threads import default_num_threads, get_num_threads, set_num_threads
from charaid.fastops.upsample import upsample_2x_ring

__all__ = [
    "BatchNormReLUCWHN",
    "Conv2DCWHN",
    "Conv2DReLUPoolCWHN",
    "FastAdam",
    "LAYOUTS",
    "LinearThreaded",
    "MaxPooling2DCWHN",
    "batch_normalization_relu",
    "batch_normalization_relu_ring",
    "convolution_2d",
    "convolution_2d_relu",
    "convolution_2d_relu_max_pooling_2d",
    "convolution_ring",
    "default_num_threads",
    "from_cwhn",
    "from_ring",
    "get_num_threads",
    "linear",
    "max_pooling_2d",
    "set_num_threads",
    "to_cwhn",
    "to_ring",
    "tune_allocator",
    "upsample_2x_ring",
]
