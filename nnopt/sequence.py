"""A long-dependency task and small PyTorch recurrent classifiers for the experiments of chapter 4.

:func:`marked_recall` makes the data offline, from a seed, as a :class:`nnopt.data.Split`;
:func:`recurrent_classifier` builds a ``torch.nn.RNN`` or ``torch.nn.LSTM`` with a linear
read-out of its last hidden state, which :func:`nnopt.train.fit` trains like any classifier.
"""

import numpy as np
import torch

from . import _validate
from .data import Split


def marked_recall(max_lag, symbols=4, min_lag=1, train=1920, val=500, test=1000, seed=0):
    """Recall the one marked symbol of a sequence, seen between ``min_lag`` and ``max_lag`` steps before the end.

    A sequence has ``max_lag`` steps; each step is a one-hot vector over ``symbols`` random
    symbols plus a marker channel. The marker is 1 at exactly one step, ``lag`` steps from
    the end (``lag`` uniform in ``min_lag..max_lag``; lag 1 is the last step; with
    ``min_lag = max_lag`` the first step is always the marked one), and the label is the
    symbol at that step. Every other step is a distractor drawn from the same symbols, so a
    model must store the marked symbol when it sees it and keep it, unchanged by what it
    reads afterwards, for ``lag - 1`` more steps. ``X`` has shape
    ``(n, max_lag, symbols + 1)`` (batch first), ``y`` the labels; :func:`lags` recovers each
    sequence's lag. Chance accuracy is ``1 / symbols``. The parts are drawn from ``seed``.
    """
    max_lag = _validate.integer("max_lag", max_lag, low=1)
    symbols = _validate.integer("symbols", symbols, low=2)
    min_lag = _validate.integer("min_lag", min_lag, low=1)
    if min_lag > max_lag:
        raise ValueError(f"min_lag must be at most max_lag = {max_lag}, got {min_lag}")
    rng = np.random.default_rng(seed)
    parts = []
    for name, n in (("train", train), ("val", val), ("test", test)):
        n = _validate.integer(name, n, low=1)
        tokens = rng.integers(symbols, size=(n, max_lag))
        marked = max_lag - rng.integers(min_lag, max_lag + 1, size=n)  # the marked step's index
        X = np.zeros((n, max_lag, symbols + 1))
        X[:, :, :symbols] = np.eye(symbols)[tokens]
        X[np.arange(n), marked, symbols] = 1.0
        parts += [X, tokens[np.arange(n), marked].astype(np.int64)]
    return Split(*parts)


def lags(X):
    """How many steps before the end (1 = the last step) each sequence of :func:`marked_recall` is marked."""
    X = _validate.array("X", X)
    if X.ndim != 3:
        raise ValueError(f"X must have shape (n, steps, symbols + 1), got {X.shape}")
    return X.shape[1] - np.argmax(X[:, :, -1], axis=1)


class RecurrentClassifier(torch.nn.Module):
    """A one-layer ``torch.nn.RNN`` (tanh) or ``torch.nn.LSTM``, read out by a linear layer at the last step."""

    def __init__(self, cell, inputs, hidden, classes):
        super().__init__()
        self.recurrent = cell(inputs, hidden, batch_first=True)
        self.readout = torch.nn.Linear(hidden, classes)

    def forward(self, x):
        outputs, _ = self.recurrent(x)
        return self.readout(outputs[:, -1])


def recurrent_classifier(kind, inputs, hidden, classes, seed=0, forget_bias=None):
    """A float32 :class:`RecurrentClassifier` with PyTorch's default initial weights, drawn with ``seed``.

    ``kind`` is ``"rnn"`` or ``"lstm"``. ``forget_bias``, for an LSTM, sets the forget
    gate's total bias ``b_if + b_hf`` (rows ``hidden:2*hidden`` of PyTorch's gate order
    i, f, g, o) to that value instead of PyTorch's small random one.
    """
    cells = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM}
    if kind not in cells:
        raise ValueError(f"kind must be 'rnn' or 'lstm', got {kind!r}")
    if forget_bias is not None and kind != "lstm":
        raise ValueError("forget_bias is for kind='lstm' only")
    torch.manual_seed(seed)
    model = RecurrentClassifier(cells[kind], inputs, hidden, classes)
    if forget_bias is not None:
        with torch.no_grad():
            model.recurrent.bias_ih_l0[hidden : 2 * hidden] = float(forget_bias)
            model.recurrent.bias_hh_l0[hidden : 2 * hidden] = 0.0
    return model


def parameter_count(model):
    """The number of trainable parameters of a PyTorch model."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
