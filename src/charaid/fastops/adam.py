"""`FastAdam`: `chainer.optimizers.Adam` whose CPU update is one compiled pass per parameter
(`charaid.fastkernels`), split over the threads."""

from __future__ import annotations

import chainer
import numpy as np

from charaid import fastkernels
from charaid.fastops.threads import _split


class _FastAdamRule(chainer.optimizers.adam.AdamRule):
    """AdamRule whose CPU update is one compiled pass; other cases fall back to Chainer's."""

    def update_core_cpu(self, param: chainer.Parameter) -> None:
        hp = self.hyperparam
        grad, data = param.grad, param.data
        plain = not (hp.amsgrad or hp.adabound)
        if grad is None or not plain or data.dtype != np.float32 or not data.flags.c_contiguous:
            super().update_core_cpu(param)
            return
        self._check_eps(np.float32)
        flat = [
            a.reshape(-1)
            for a in (data, np.ascontiguousarray(grad), self.state["m"], self.state["v"])
        ]
        hyper = (
            1.0 - hp.beta1,
            1.0 - hp.beta2,
            self.alpha_t,
            hp.eps,
            hp.eta,
            1.0 - hp.eta * hp.weight_decay_rate,
        )
        _split(
            lambda lo, hi: fastkernels.adam_update(*(a[lo:hi] for a in flat), *hyper),
            data.size,
            grain=1 << 16,  # threads only pay on the big weight matrices
        )


class FastAdam(chainer.optimizers.Adam):
    """`chainer.optimizers.Adam` with a one-pass CPU update (same state, so snapshots match)."""

    def create_update_rule(self) -> chainer.UpdateRule:
        return _FastAdamRule(self.hyperparam)
