"""Imported by `detect_faces`' fork server (`charaid.workers`) before it forks the workers that
run the learned detector: Chainer, charaid's kernels and BLAS load once there, and one pass of
an untrained FaceNet over a blank 16:9 input loads each compiled kernel from numba's cache. A
worker forked afterwards starts on its first frame at once; importing and loading all that in
every worker had cost each about 0.9 s of its core (bench/README.md, "detect_faces' start").
"""

from __future__ import annotations

import atexit
import os

import numpy as np

from charaid import fastops
from charaid.detector.folded import fold
from charaid.detector.net import FaceNet


def warm() -> None:
    """Load what the folded detector runs, in this process, starting no thread (a process
    that forks must have none running)."""
    fastops.set_num_threads(1)  # the workers' setting too: every kernel runs in this thread
    fold(FaceNet())(np.zeros((1, 3, 320, 512), np.float32))


warm()
# The server exits when detection ends, and the caller waits for it: tearing down Chainer's,
# numba's and MKL's modules took it 0.27 s. It wrote nothing, so it may simply stop (atexit
# runs this first; the workers it forked leave through os._exit anyway).
atexit.register(os._exit, 0)
