"""A small, seeded PyTorch training loop for the measured results of the chapters.

``mlp`` builds the network, ``fit`` trains it with any ``torch.optim`` optimizer on
a :class:`nnopt.data.Split` and records, after every epoch, the mean training loss
and the validation and test accuracy (choose on validation, report test). The
same seed gives the same initial weights and the same mini-batches, so two runs
that differ only in the optimizer see exactly the same data in the same order.
"""

import time
from dataclasses import dataclass

import torch

from . import _validate
from .data import minibatch_indices


def mlp(sizes, seed=0):
    """A float32 multilayer perceptron with ReLU between ``torch.nn.Linear`` layers of the given ``sizes``.

    ``sizes = (64, 32, 10)`` makes 64 inputs, one hidden layer of 32 units and 10
    outputs. The initial weights are PyTorch's defaults, drawn with ``seed``.
    """
    if len(sizes) < 2:
        raise ValueError(f"sizes must name at least an input and an output size, got {sizes!r}")
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


@dataclass(frozen=True)
class History:
    """What one training run measured, per epoch (index 0: before training): the mean
    training loss over the epoch's mini-batches (``nan`` before training), the
    validation and test accuracy; and the seconds spent in training steps."""

    train_loss: list
    val_accuracy: list
    test_accuracy: list
    seconds: float


def accuracy(model, X, y):
    """Fraction of rows of ``X`` (a tensor) that ``model`` classifies as ``y`` (``nan`` if there are none).

    The model is put in evaluation mode for the measurement and back in the mode it was in.
    """
    if len(y) == 0:
        return float("nan")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float((model(X).argmax(dim=1) == y).double().mean())
    finally:
        model.train(was_training)


def fit(model, optimizer, split, epochs, batch_size=64, seed=0, lr_at=None, threads=1):
    """Train ``model`` with ``optimizer`` on ``split``: ``epochs`` epochs of cross-entropy mini-batch steps.

    Epoch ``e`` visits the training set in the order ``minibatch_indices(n,
    batch_size, seed + e)``, in float32. ``lr_at(k)``, when given, sets the
    learning rate of step ``k`` (counting from 0), e.g. a schedule from
    :mod:`nnopt.schedules`. PyTorch runs on ``threads`` CPU threads (one is fastest
    for small models, and deterministic). ``seconds`` counts the training steps
    only, not the accuracy evaluations.
    """
    epochs = _validate.integer("epochs", epochs)
    tensors = {
        part: (torch.from_numpy(getattr(split, f"X_{part}")).float(), torch.from_numpy(getattr(split, f"y_{part}")))
        for part in ("train", "val", "test")
    }
    X_train, y_train = tensors["train"]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        losses, seconds, step = [float("nan")], 0.0, 0
        accuracies = {part: [accuracy(model, *tensors[part])] for part in ("val", "test")}
        for epoch in range(epochs):
            start, total = time.perf_counter(), 0.0
            model.train()
            for rows in minibatch_indices(len(y_train), batch_size, seed + epoch):
                rows = torch.from_numpy(rows)
                if lr_at is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = lr_at(step)
                step += 1
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(X_train[rows]), y_train[rows])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(rows)
            seconds += time.perf_counter() - start
            losses.append(total / len(y_train))
            for part in ("val", "test"):
                accuracies[part].append(accuracy(model, *tensors[part]))
    finally:
        torch.set_num_threads(previous_threads)
    return History(losses, accuracies["val"], accuracies["test"], seconds)
