"""The small NumPy models against PyTorch."""

import numpy as np
import torch

from nnopt import models


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    logits, y = rng.normal(size=(7, 4)) * 5, rng.integers(4, size=7)
    tensor = torch.tensor(logits, requires_grad=True)
    expected = torch.nn.functional.cross_entropy(tensor, torch.from_numpy(y))
    expected.backward()
    loss, dlogits = models.softmax_cross_entropy(logits, y)
    np.testing.assert_allclose(loss, expected.item(), rtol=1e-12)
    np.testing.assert_allclose(dlogits, tensor.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_softmax_regression_gradient_is_the_chain_rule_through_the_logits():
    rng = np.random.default_rng(1)
    W, X, y = rng.normal(size=(3, 4)), rng.normal(size=(6, 3)), rng.integers(4, size=6)
    loss, grad = models.softmax_regression_loss(W, X, y)
    step = 1e-6
    E = np.zeros_like(W)
    E[1, 2] = step
    numeric = (models.softmax_regression_loss(W + E, X, y)[0] - models.softmax_regression_loss(W - E, X, y)[0]) / (2 * step)
    np.testing.assert_allclose(grad[1, 2], numeric, rtol=1e-6)
