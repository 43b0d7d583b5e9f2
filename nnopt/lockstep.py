r"""Many small networks trained at once, in lockstep (chapter 7's sweeps).

An honest experiment trains the same small network many times: for every seed, every
learning rate, every method. One after another, each step of each network pays
PyTorch's fixed cost per operation, which for a small MLP is most of the time. Here
the networks are the *members* of one population: a layer holds the weights of all
members in one tensor of shape ``(members, in, out)`` and computes all of them with
one batched matrix product (``torch.baddbmm``). Every member keeps its own weights,
its own training data and mini-batches, and (with SGD) its own learning rate; only
the arithmetic is shared. ``tests/test_lockstep.py`` checks that a population trains
exactly like its members trained one by one with :func:`nnopt.train.fit`.

A population is a ``torch.nn.Sequential`` of named blocks (``block1``, ``block2``,
..., ``head``), so the fine-tuning helpers of :mod:`nnopt.transfer` apply to it
unchanged. Inputs have shape ``(members, examples, features)``.
"""

from collections import OrderedDict

import numpy as np
import torch

from . import _validate
from .data import minibatch_indices
from .train import mlp as single_mlp


class StackedLinear(torch.nn.Module):
    """``members`` independent ``torch.nn.Linear`` layers computed together.

    ``weight`` has shape ``(members, in_features, out_features)`` (member ``m``'s
    ``torch.nn.Linear.weight`` transposed), ``bias`` ``(members, 1, out_features)``.
    Maps ``(members, batch, in_features)`` to ``(members, batch, out_features)``.
    """

    def __init__(self, weight, bias):
        super().__init__()
        if weight.ndim != 3 or bias.shape != (weight.shape[0], 1, weight.shape[2]):
            raise ValueError(f"weight must be (members, in, out) and bias (members, 1, out), got {tuple(weight.shape)} and {tuple(bias.shape)}")
        self.weight = torch.nn.Parameter(weight.detach().clone().contiguous())
        self.bias = torch.nn.Parameter(bias.detach().clone())

    @classmethod
    def stack(cls, layers):
        """Stack ``torch.nn.Linear`` layers of equal shapes, one per member (their weights copied)."""
        if not layers:
            raise ValueError("layers must hold at least one torch.nn.Linear")
        weight = torch.stack([layer.weight.detach().T for layer in layers])
        return cls(weight, torch.stack([layer.bias.detach() for layer in layers]).unsqueeze(1))

    @property
    def members(self):
        return self.weight.shape[0]

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self):
        members, n_in, n_out = self.weight.shape
        return f"members={members}, in_features={n_in}, out_features={n_out}"


def mlp(sizes, seeds):
    """A population of MLPs: member ``m`` starts with the weights of ``nnopt.train.mlp(sizes, seeds[m])``.

    ``sizes = (40, 64, 64, 5)`` makes blocks ``block1`` and ``block2`` (each a
    :class:`StackedLinear` and a ReLU) and a ``head`` (a :class:`StackedLinear`).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one member")
    members = [[layer for layer in single_mlp(sizes, seed=seed) if isinstance(layer, torch.nn.Linear)] for seed in seeds]
    blocks = OrderedDict()
    for depth, layers in enumerate(zip(*members), start=1):
        blocks[f"block{depth}"] = torch.nn.Sequential(StackedLinear.stack(list(layers)), torch.nn.ReLU())
    blocks["head"] = blocks.popitem()[1][0]  # the last layer has no ReLU
    return torch.nn.Sequential(blocks)


def members(model):
    """The number of members of a population."""
    return next(module for module in model.modules() if isinstance(module, StackedLinear)).members


def repeat(model, times):
    """A new population in which every member of ``model`` appears ``times`` times in a row (weights copied).

    Member ``m`` of ``model`` becomes members ``m * times`` to ``m * times + times - 1``:
    the way to give each pretrained member several learning rates.
    """
    times = _validate.integer("times", times, low=1)
    return torch.nn.Sequential(OrderedDict((name, _copy_repeated(block, times)) for name, block in model.named_children()))


def _copy_repeated(module, times):
    if isinstance(module, StackedLinear):
        copy = StackedLinear(module.weight.repeat_interleave(times, dim=0), module.bias.repeat_interleave(times, dim=0))
        copy.requires_grad_(module.weight.requires_grad)
        return copy
    if isinstance(module, torch.nn.Sequential):
        return torch.nn.Sequential(*(_copy_repeated(child, times) for child in module))
    return module


def _tensor(value, dtype=None):
    """``value`` as a tensor (arrays are copied, so read-only or broadcast NumPy arrays are fine)."""
    tensor = value if isinstance(value, torch.Tensor) else torch.tensor(np.asarray(value))
    return tensor if dtype is None else tensor.to(dtype)


def cross_entropy(outputs, labels):
    """Each member's mean cross-entropy over its batch: ``outputs (M, B, C)``, ``labels (M, B)`` -> ``(M,)``."""
    return torch.nn.functional.cross_entropy(outputs.transpose(1, 2), labels, reduction="none").mean(dim=1)


def fit(model, optimizer, X, y, steps, batch_size, seeds, loss=None, lr_scale=None):
    """Train a population for ``steps`` mini-batch steps; member ``m`` sees its own data in its own order.

    ``X`` has shape ``(members, n, features)`` (or ``(n, features)``, shared by all
    members), ``y`` ``(members, n)`` (or ``(n,)``). Member ``m``'s epoch ``e`` visits
    its ``n`` examples in the order ``nnopt.data.minibatch_indices(n, batch_size,
    seeds[m] + e)``, as :func:`nnopt.train.fit` does for one network, and the epochs
    repeat until ``steps`` steps are done. Each step minimises
    ``sum(lr_scale * loss(outputs, rows))``: ``loss`` returns one value per member
    from the outputs ``(members, batch, classes)`` and the batch's row indices
    ``rows (members, batch)`` (default: :func:`cross_entropy` against ``y``), so each
    member gets the gradient of its own loss.

    ``lr_scale`` (one number per member) multiplies member ``m``'s learning rate by
    ``lr_scale[m]``. This is exact for SGD (with or without momentum, no weight
    decay), whose update is linear in the gradient; for any other optimizer it raises
    ``ValueError``. Runs on one CPU thread (the fastest for small models, and
    deterministic).
    """
    count = members(model)
    X, y = _tensor(X, torch.float32), _tensor(y)
    if X.ndim == 2:
        X = X.expand(count, *X.shape)
    if y.ndim == 1:
        y = y.expand(count, *y.shape)
    if X.ndim != 3 or X.shape[0] != count or y.shape != X.shape[:2]:
        raise ValueError(
            f"X must have shape ({count}, n, features) and y ({count}, n) for {count} members, got {tuple(X.shape)} and {tuple(y.shape)}"
        )
    seeds = [int(seed) for seed in seeds]
    if len(seeds) != count:
        raise ValueError(f"seeds must hold one seed per member ({count}), got {len(seeds)}")
    steps = _validate.integer("steps", steps)
    scale = torch.ones(count)
    if lr_scale is not None:
        plain_sgd = isinstance(optimizer, torch.optim.SGD) and all(g["weight_decay"] == 0 for g in optimizer.param_groups)
        if not plain_sgd:
            raise ValueError("lr_scale needs torch.optim.SGD without weight decay (an update linear in the gradient)")
        scale = _tensor(lr_scale, torch.float32)
        if scale.shape != (count,):
            raise ValueError(f"lr_scale must hold one number per member ({count}), got shape {tuple(scale.shape)}")
    n = X.shape[1]
    member_rows = torch.arange(count)[:, None]
    loss = loss or (lambda outputs, rows: cross_entropy(outputs, y[member_rows, rows]))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    try:
        step, epoch = 0, 0
        while step < steps:
            batches = [list(minibatch_indices(n, batch_size, seed + epoch)) for seed in seeds]
            order = torch.from_numpy(np.stack([np.concatenate(member) for member in batches]))
            X_epoch = X[member_rows, order]  # one gather per epoch; each batch is then a slice
            start = 0
            for size in (len(batch) for batch in batches[0]):
                rows = order[:, start : start + size]
                optimizer.zero_grad()
                (scale * loss(model(X_epoch[:, start : start + size]), rows)).sum().backward()
                optimizer.step()
                start += size
                step += 1
                if step == steps:
                    break
            epoch += 1
    finally:
        torch.set_num_threads(previous_threads)
    return model


def predict(model, X):
    """Outputs of every member on ``X`` (``(n, features)`` shared, or ``(members, n, features)``), without gradients."""
    X = _tensor(X, torch.float32)
    if X.ndim == 2:
        X = X.expand(members(model), *X.shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(X)
    finally:
        model.train(was_training)


def accuracy(model, X, y):
    """Each member's fraction of rows of ``X`` classified as ``y``: a float64 array ``(members,)``."""
    return (predict(model, X).argmax(dim=2) == _tensor(y)).double().mean(dim=1).numpy()
