r"""Optimizer update rules as small pure functions (chapters 1 and 2).

Each rule takes the parameters ``theta``, their gradient ``grad`` and the
optimizer state, and returns new arrays: the updated parameters and the updated
state. Inputs are never modified. The conventions are PyTorch's, so that
``torch.optim`` is the oracle in the tests.
"""

import inspect

import numpy as np

from . import _validate


def gd_step(theta, grad, lr):
    r"""One step of gradient descent, :math:`\theta' = \theta - \eta\, g`.

    Shapes: ``theta`` and ``grad`` any shape, equal. Matches ``torch.optim.SGD(lr=lr)``.
    """
    theta = _validate.array("theta", theta)
    grad = _validate.same_shape("grad", grad, "theta", theta)
    lr = _validate.number("lr", lr)
    return theta - lr * grad


def momentum_step(theta, grad, velocity, lr, momentum=0.9):
    r"""One step of heavy-ball momentum in PyTorch's convention.

    .. math:: v' = \mu v + g, \qquad \theta' = \theta - \eta\, v'

    Start with ``velocity = 0``; then the first step equals PyTorch's, whose buffer
    starts as a copy of the first gradient. Matches ``torch.optim.SGD(lr, momentum)``
    (no dampening, no Nesterov). Returns ``(theta, velocity)``.
    """
    theta = _validate.array("theta", theta)
    grad = _validate.same_shape("grad", grad, "theta", theta)
    velocity = _validate.same_shape("velocity", velocity, "theta", theta)
    lr = _validate.number("lr", lr)
    momentum = _validate.number("momentum", momentum)
    velocity = momentum * velocity + grad
    return theta - lr * velocity, velocity


def stepper(update, **hyperparameters):
    """Wrap a pure update rule into a stateful ``step(theta, grad) -> theta``.

    The state arrays (the rule's arguments after ``grad`` that have no default and
    are not given here, e.g. ``velocity`` or ``m, v``) start at zero; a ``t``
    argument counts steps from 1. Works for student functions with the contract's
    signature too, which is how the demos run them.
    """
    parameters = inspect.signature(update).parameters
    names = list(parameters)[2:]
    state_names = [
        name
        for name in names
        if name not in hyperparameters
        and name != "t"
        and parameters[name].default is inspect.Parameter.empty
    ]
    state = {}
    count = 0

    def step(theta, grad):
        nonlocal count
        count += 1
        for name in state_names:
            state.setdefault(name, np.zeros_like(theta, dtype=np.float64))
        arguments = dict(state, **hyperparameters)
        if "t" in names:
            arguments["t"] = count
        result = update(theta, grad, **arguments)
        if not state_names:
            return result
        theta, *new_state = result
        state.update(zip(state_names, new_state))
        return theta

    return step
