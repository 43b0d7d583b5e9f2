r"""Small NumPy models with analytic gradients, for experiments that must run in milliseconds."""

import numpy as np

from . import _validate


def softmax_regression_loss(W, X, y):
    r"""Mean cross-entropy of :math:`\mathrm{softmax}(X W)` and its gradient with respect to ``W``.

    ``W`` has shape ``(features, classes)``, ``X`` ``(n, features)``, ``y`` ``(n,)``
    integer labels. Returns ``(loss, grad)`` with ``grad`` shaped like ``W``.
    """
    W = _validate.array("W", W)
    X = _validate.array("X", X)
    if W.ndim != 2 or X.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"X must have shape (n, {W.shape[0] if W.ndim == 2 else 'features'}), got {X.shape}")
    loss, dlogits = softmax_cross_entropy(X @ W, y)
    return loss, X.T @ dlogits


def softmax_cross_entropy(logits, y):
    r"""Mean cross-entropy of :math:`\mathrm{softmax}(\text{logits})` and its gradient with respect to the logits.

    ``logits`` has shape ``(n, classes)``, ``y`` ``(n,)`` integer labels. Returns
    ``(loss, dlogits)`` with :math:`\text{dlogits} = (\mathrm{softmax}(\text{logits}) - \text{onehot}(y))/n`;
    ``torch.nn.functional.cross_entropy`` with its default mean reduction.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -log_probs[np.arange(n), y].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1.0
    return loss, dlogits / n


def softmax_regression_hessian(W, X):
    r"""The Hessian of :func:`softmax_regression_loss` with respect to ``W``, as a matrix.

    .. math:: H = \frac1n \sum_{i=1}^n (x_i x_i^\top) \otimes \bigl(\operatorname{diag}(p_i) - p_i p_i^\top\bigr),
        \qquad p_i = \mathrm{softmax}(W^\top x_i)

    ``W`` has shape ``(features, classes)`` and ``X`` ``(n, features)``; the result has
    shape ``(features * classes, features * classes)``, rows and columns ordered like
    ``W.ravel()``. It does not depend on the labels. Matches
    ``torch.autograd.functional.hessian`` of ``torch.nn.functional.cross_entropy``.
    """
    W = _validate.array("W", W)
    X = _validate.array("X", X)
    if W.ndim != 2 or X.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"X must have shape (n, {W.shape[0] if W.ndim == 2 else 'features'}), got {X.shape}")
    (n, features), classes = X.shape, W.shape[1]
    logits = X @ W
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    curvature = probs[:, :, None] * np.eye(classes) - probs[:, :, None] * probs[:, None, :]
    outer = (X[:, :, None] * X[:, None, :]).reshape(n, features * features)
    blocks = (outer.T @ curvature.reshape(n, classes * classes) / n).reshape(features, features, classes, classes)
    return blocks.transpose(0, 2, 1, 3).reshape(features * classes, features * classes)


def least_squares_loss(w, X, y):
    r"""Loss :math:`\frac{1}{2n}\lVert Xw - y\rVert^2` and gradient :math:`\frac1n X^\top (Xw - y)`."""
    residual = X @ w - y
    return 0.5 * np.mean(residual**2), X.T @ residual / len(y)


def least_squares_smoothness(X):
    r"""The smoothness constant :math:`L = \lambda_{\max}(X^\top X / n)` of :func:`least_squares_loss`."""
    return float(np.linalg.eigvalsh(X.T @ X / len(X))[-1])


def accuracy(W, X, y):
    """Fraction of rows of ``X`` whose arg-max score under ``W`` equals the label."""
    return float(np.mean(np.argmax(X @ W, axis=1) == y))
