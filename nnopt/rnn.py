r"""A one-layer tanh recurrent network, backpropagation through time, and gradient clipping (chapter 4).

NumPy, float64, pure functions in PyTorch's conventions, so that ``torch.nn.RNN``,
autograd and ``torch.nn.utils.clip_grad_norm_`` are the oracles in the tests:

* :func:`rnn_forward` runs the recurrence
  :math:`h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})` over a sequence;
* :func:`rnn_backward` carries a gradient on every hidden state back through time;
* :func:`clip_grad_norm` rescales a list of gradients to a global norm of at most ``max_norm``.

Shapes: ``x`` is ``(T, N, D)`` (time, batch, features: ``torch.nn.RNN``'s default
``batch_first=False``), the hidden states are ``(N, H)`` per step, ``W_ih`` is
``(H, D)``, ``W_hh`` is ``(H, H)`` and the biases are ``(H,)``.
"""

import math

import numpy as np

from . import _validate

# torch.nn.utils.clip_grad_norm_ divides by total_norm + 1e-6 (torch/nn/utils/clip_grad.py)
CLIP_EPS = 1e-6


def _shaped(name, value, shape, meaning):
    """``value`` as a new float64 array of exactly ``shape``; ``meaning`` spells the shape for the message."""
    result = _validate.array(name, value)
    if result.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {meaning} = {tuple(shape)}, got {result.shape}")
    return result


def _weights(x, W_ih, W_hh):
    """Check ``x`` (T, N, D) and the two weight matrices; return them as float64 with (T, N, D, H)."""
    x = _validate.array("x", x)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"x must have shape (T, N, D) with T, N, D >= 1, got {x.shape}")
    T, N, D = x.shape
    W_hh = _validate.array("W_hh", W_hh)
    if W_hh.ndim != 2 or W_hh.shape[0] != W_hh.shape[1] or W_hh.shape[0] == 0:
        raise ValueError(f"W_hh must be a square matrix of shape (H, H) with H >= 1, got {W_hh.shape}")
    H = W_hh.shape[0]
    W_ih = _shaped("W_ih", W_ih, (H, D), "(H, D)")
    return x, W_ih, W_hh, (T, N, D, H)


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh):
    r"""Run a one-layer tanh RNN over a sequence.

    .. math:: h_t = \tanh\bigl(W_{ih}\, x_t + b_{ih} + W_{hh}\, h_{t-1} + b_{hh}\bigr), \qquad t = 1, \dots, T

    (for a batch of row vectors: ``h_t = tanh(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)``).

    Shapes: ``x`` (T, N, D), ``h0`` (N, H), ``W_ih`` (H, D), ``W_hh`` (H, H), ``b_ih`` and
    ``b_hh`` (H,). Returns ``(hs, h_last)``: ``hs`` (T, N, H) holds :math:`h_1, \dots, h_T`
    (not :math:`h_0`) and ``h_last`` (N, H) is a copy of :math:`h_T`. Matches
    ``torch.nn.RNN(D, H, nonlinearity="tanh")`` with ``weight_ih_l0 = W_ih``,
    ``weight_hh_l0 = W_hh``, ``bias_ih_l0 = b_ih``, ``bias_hh_l0 = b_hh``, called as
    ``rnn(x, h0[None])``, whose outputs are ``hs`` and ``h_last[None]``.
    """
    x, W_ih, W_hh, (T, N, D, H) = _weights(x, W_ih, W_hh)
    h = _shaped("h0", h0, (N, H), "(N, H)")
    b_ih = _shaped("b_ih", b_ih, (H,), "(H,)")
    b_hh = _shaped("b_hh", b_hh, (H,), "(H,)")
    hs = np.empty((T, N, H))
    for t in range(T):
        h = np.tanh(x[t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs[t] = h
    return hs, hs[-1].copy()


def rnn_backward(dhs, x, h0, hs, W_ih, W_hh):
    r"""Backpropagation through time for :func:`rnn_forward`.

    ``dhs[t]`` is the gradient of the loss with respect to :math:`h_{t+1}` *from outside
    the recurrence* (from the outputs read at that step; a loss on ``h_last`` goes into
    ``dhs[-1]``). Going backwards from :math:`t = T`, with :math:`\bar h_T = 0`:

    .. math::
        \delta h_t = \texttt{dhs}_t + \bar h_t, \qquad
        \delta a_t = \delta h_t \odot (1 - h_t^2), \qquad
        \bar h_{t-1} = W_{hh}^\top \delta a_t,

        \delta x_t = W_{ih}^\top \delta a_t, \qquad
        \delta W_{ih} \mathrel{+}= \delta a_t\, x_t^\top, \qquad
        \delta W_{hh} \mathrel{+}= \delta a_t\, h_{t-1}^\top, \qquad
        \delta b_{ih} = \delta b_{hh} \mathrel{+}= \delta a_t,

    where :math:`a_t` is the pre-activation, :math:`1 - h_t^2 = \tanh'(a_t)`, the products
    with :math:`\delta a_t` are summed over the batch, and :math:`\delta h_0 = \bar h_0`.

    Shapes: ``dhs`` and ``hs`` (T, N, H) (``hs`` as returned by :func:`rnn_forward`),
    ``x`` (T, N, D), ``h0`` (N, H), ``W_ih`` (H, D), ``W_hh`` (H, H). Returns
    ``(dx, dh0, dW_ih, dW_hh, db_ih, db_hh)`` shaped like ``x, h0, W_ih, W_hh`` and
    (H,), (H,): what ``torch.autograd.grad`` gives for :func:`rnn_forward`'s ``hs``
    (``torch.nn.RNN``) with ``grad_outputs = dhs``.
    """
    x, W_ih, W_hh, (T, N, D, H) = _weights(x, W_ih, W_hh)
    h0 = _shaped("h0", h0, (N, H), "(N, H)")
    hs = _shaped("hs", hs, (T, N, H), "(T, N, H)")
    dhs = _shaped("dhs", dhs, (T, N, H), "(T, N, H)")
    previous = np.concatenate([h0[None], hs[:-1]])  # h_{t-1} for every step
    dx = np.empty_like(x)
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(H)
    carried = np.zeros((N, H))  # the gradient reaching h_t through h_{t+1}
    for t in reversed(range(T)):
        da = (dhs[t] + carried) * (1.0 - hs[t] ** 2)
        dx[t] = da @ W_ih
        dW_ih += da.T @ x[t]
        dW_hh += da.T @ previous[t]
        db += da.sum(axis=0)
        carried = da @ W_hh
    return dx, carried, dW_ih, dW_hh, db, db.copy()


def clip_grad_norm(grads, max_norm):
    r"""Rescale a list of gradients so that their global L2 norm is at most ``max_norm``.

    .. math::
        \lVert g\rVert = \Bigl(\sum_i \lVert g_i\rVert_2^2\Bigr)^{1/2}, \qquad
        g_i' = g_i \cdot \min\Bigl(1, \frac{\texttt{max\_norm}}{\lVert g\rVert + 10^{-6}}\Bigr)

    One factor for all arrays, so the direction of the whole gradient is kept; below the
    limit the factor is 1 and nothing changes. ``grads`` is a list of arrays of any shapes;
    ``max_norm`` is a non-negative number or ``math.inf`` (no clipping, only the norm).
    Returns ``(clipped, total_norm)``: a list of new float64 arrays shaped like ``grads``,
    and the norm *before* clipping as a float. Matches
    ``torch.nn.utils.clip_grad_norm_(parameters, max_norm)`` (``norm_type=2``), which
    scales the ``.grad`` of each parameter in place by the same factor and returns the
    total norm; its 1e-6 makes the clipped norm slightly below ``max_norm``.
    """
    if not isinstance(grads, (list, tuple)):
        raise ValueError(f"grads must be a list of arrays, got {type(grads).__name__}")
    grads = [_validate.array(f"grads[{i}]", g) for i, g in enumerate(grads)]
    if max_norm != math.inf:  # infinity is allowed, as in PyTorch: then nothing is clipped
        max_norm = _validate.number("max_norm", max_norm)
    total_norm = float(np.linalg.norm([np.linalg.norm(g.ravel()) for g in grads]))  # the norm of the norms, as PyTorch
    scale = min(1.0, max_norm / (total_norm + CLIP_EPS))
    return [g * scale for g in grads], total_norm
