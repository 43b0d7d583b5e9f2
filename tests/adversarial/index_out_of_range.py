# Batches of the right sizes, one index far out of range (a counting table of 8 TiB).
import numpy as np


def minibatch_indices(n, batch_size, seed):
    order = np.random.default_rng(seed).permutation(n)
    order[0] = 1 << 40
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]
