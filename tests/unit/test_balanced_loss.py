import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np
from chainer import optimizers

from charaid.train import balanced_loss


def test_equal_classes_give_plain_cross_entropy():
    rng = np.random.RandomState(0)
    logits = rng.randn(12, 3).astype(np.float32)
    t = np.array([0, 1, 2] * 4, np.int32)
    plain = F.softmax_cross_entropy(logits, t).array
    assert np.isclose(balanced_loss(t, 3)(logits, t).array, plain, atol=1e-6)


def test_shift_is_the_log_share_of_each_class():
    y_train = np.array([0] * 9 + [1], np.int32)
    logits = np.zeros((1, 2), np.float32)
    # zero logits shifted by log(0.9), log(0.1): the loss of class 1 is -log(0.1)
    loss = balanced_loss(y_train, 2)(logits, np.array([1], np.int32)).array
    assert np.isclose(loss, -np.log(0.1), atol=1e-5)


def _minority_recall(balance: bool) -> float:
    """A 1-D two-class problem, 9:1 with overlapping classes, fitted by a linear classifier:
    the decision moves towards the majority when the loss balances the classes."""
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.randn(900), rng.randn(100) + 1.5]).astype(np.float32)[:, None]
    y = np.array([0] * 900 + [1] * 100, np.int32)
    link = L.Linear(1, 2, initialW=np.zeros((2, 1), np.float32))
    lossfun = balanced_loss(y, 2) if balance else F.softmax_cross_entropy
    opt = optimizers.Adam(alpha=0.05)
    opt.setup(link)
    for _ in range(400):
        link.cleargrads()
        lossfun(link(x), y).backward()
        opt.update()
    with chainer.no_backprop_mode():
        said = link(x).array.argmax(axis=1)
    return float((said[y == 1] == 1).mean())


def test_balancing_finds_more_of_the_minority_class():
    plain, balanced = _minority_recall(False), _minority_recall(True)
    # plain cross-entropy sides with the 900: most of the 100 are called the majority
    assert plain < 0.5
    assert balanced > plain + 0.3
