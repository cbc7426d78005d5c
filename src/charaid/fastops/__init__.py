"""Fast CPU kernels for SeedCNN's layers, as Chainer `FunctionNode`s (forward and backward).

Chainer 7's CPU path builds a 6-D im2col for every convolution *and* every max-pooling and
reduces it with a generic argmax; on a small CPU that is most of the training time. These
kernels compute the same functions with a layout chosen for numpy: "CWHN" (channels, width,
height, batch). The batch is innermost, so every spatial shift or stride-2 slice copies
contiguous runs of N (or H*N) floats. Their loops are compiled in `charaid.fastkernels` (numba),
and every kernel splits its own work over the cores.

The public functions take "NCHW" (Chainer's layout) or "CWHN"; models chain CWHN layers and
convert once at each end (`to_cwhn`, `from_cwhn`). One op family per module:

* `threads`: the thread pool the kernels split their work over (`set_num_threads`), its state.
* `layout`: the two layouts, `to_cwhn` / `from_cwhn`, the argument helpers every op shares.
* `conv`: convolution as chunked im2col + GEMM, alone, with bias + relu, or fused with pooling.
* `pool`: max pooling (compiled loops keeping each window's winning tap for the backward).
* `norm`: batch normalization + relu (training, fixed statistics and inference paths).
* `upsample`: nearest-neighbour 2x upsampling (the detector's top-down path).
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
from charaid.fastops.threads import default_num_threads, get_num_threads, set_num_threads
from charaid.fastops.upsample import Upsample2xCWHN, upsample_2x

__all__ = [
    "LAYOUTS",
    "BatchNormReLUCWHN",
    "Conv2DCWHN",
    "Conv2DReLUPoolCWHN",
    "FastAdam",
    "LinearThreaded",
    "MaxPooling2DCWHN",
    "Upsample2xCWHN",
    "batch_normalization_relu",
    "convolution_2d",
    "convolution_2d_relu",
    "convolution_2d_relu_max_pooling_2d",
    "default_num_threads",
    "from_cwhn",
    "get_num_threads",
    "linear",
    "max_pooling_2d",
    "set_num_threads",
    "to_cwhn",
    "upsample_2x",
    "tune_allocator",
]
