"""Offline, seeded datasets and mini-batching.

Nothing here touches the network: the digits ship with scikit-learn, everything
else is generated from a seed.
"""

from dataclasses import dataclass

import numpy as np

from . import _validate


@dataclass(frozen=True)
class Split:
    """A train/test split of features ``X`` (float64, standardized) and integer labels ``y``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self):
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def digits(test_fraction=0.2, seed=0):
    """The 1,797 8x8 handwritten digits of ``sklearn.datasets.load_digits`` as 64 features.

    Features are standardized with the training set's mean and standard deviation
    (constant pixels are left at zero). The split is stratified-free but seeded.
    """
    from sklearn.datasets import load_digits

    test_fraction = _validate.number("test_fraction", test_fraction, low=0.0, high=1.0, include_high=False)
    bunch = load_digits()
    X, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    mean = X[train].mean(axis=0)
    std = X[train].std(axis=0)
    std[std == 0] = 1.0
    X = (X - mean) / std
    return Split(X[train], y[train], X[test], y[test])


def minibatch_indices(n, batch_size, seed):
    """Yield the indices of one epoch of mini-batches, in a random order fixed by ``seed``.

    Every index in ``range(n)`` appears exactly once; all batches have ``batch_size``
    indices except the last, which holds the remaining ``n % batch_size`` if that
    is not zero. Like ``torch.utils.data.DataLoader(shuffle=True, drop_last=False)``
    with a seeded generator.
    """
    n = _validate.integer("n", n, low=1)
    batch_size = _validate.integer("batch_size", batch_size, low=1)
    order = np.random.default_rng(seed).permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
