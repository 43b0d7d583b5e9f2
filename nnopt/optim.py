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


def nesterov_step(theta, grad, velocity, lr, momentum=0.9):
    r"""One step of Nesterov momentum in PyTorch's convention.

    .. math:: v' = \mu v + g, \qquad \theta' = \theta - \eta\,(g + \mu v')

    Here ``grad`` is the gradient at ``theta``, which plays the role of Nesterov's
    look-ahead point (chapter 1 derives this form). Start with ``velocity = 0``.
    Matches ``torch.optim.SGD(lr, momentum, nesterov=True)`` (no dampening).
    Returns ``(theta, velocity)``.
    """
    _, velocity = momentum_step(theta, grad, velocity, lr, momentum)  # checks the inputs; v' = mu v + g
    theta, grad = np.asarray(theta, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    return theta - lr * (grad + momentum * velocity), velocity


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


def _rate(name, value):
    """A decay rate such as beta1, beta2 or alpha: a number in [0, 1)."""
    return _validate.number(name, value, high=1.0, include_high=False)


def adagrad_step(theta, grad, sum_sq, lr=0.01, eps=1e-10):
    r"""One Adagrad step: every coordinate's step shrinks with the sum of its squared gradients.

    .. math:: S' = S + g \odot g, \qquad \theta' = \theta - \eta\, \frac{g}{\sqrt{S'} + \varepsilon}

    Shapes: ``theta``, ``grad`` and ``sum_sq`` equal (start with ``sum_sq = 0``).
    Matches ``torch.optim.Adagrad(lr=lr, eps=eps)`` (``lr_decay=0``,
    ``initial_accumulator_value=0``). Returns ``(theta, sum_sq)``.
    """
    theta = _validate.array("theta", theta)
    grad = _validate.same_shape("grad", grad, "theta", theta)
    sum_sq = _validate.same_shape("sum_sq", sum_sq, "theta", theta)
    lr = _validate.number("lr", lr)
    eps = _validate.number("eps", eps)
    sum_sq = sum_sq + grad * grad
    return theta - lr * grad / (np.sqrt(sum_sq) + eps), sum_sq


def rmsprop_step(theta, grad, sq_avg, lr=0.01, alpha=0.99, eps=1e-8):
    r"""One RMSprop step: divide by the root of an exponential moving average of squared gradients.

    .. math::
        s' = \alpha s + (1 - \alpha)\, g \odot g, \qquad
        \theta' = \theta - \eta\, \frac{g}{\sqrt{s'} + \varepsilon}

    Shapes: ``theta``, ``grad`` and ``sq_avg`` equal (start with ``sq_avg = 0``).
    Matches ``torch.optim.RMSprop(lr=lr, alpha=alpha, eps=eps)`` (``centered=False``,
    ``momentum=0``). Returns ``(theta, sq_avg)``.
    """
    theta = _validate.array("theta", theta)
    grad = _validate.same_shape("grad", grad, "theta", theta)
    sq_avg = _validate.same_shape("sq_avg", sq_avg, "theta", theta)
    lr = _validate.number("lr", lr)
    alpha = _rate("alpha", alpha)
    eps = _validate.number("eps", eps)
    sq_avg = alpha * sq_avg + (1 - alpha) * grad * grad
    return theta - lr * grad / (np.sqrt(sq_avg) + eps), sq_avg


def adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    r"""One Adam step, with bias correction; ``t`` is the number of this step, counting from 1.

    .. math::
        m' = \beta_1 m + (1 - \beta_1)\, g, \qquad v' = \beta_2 v + (1 - \beta_2)\, g \odot g,

        \hat m = \frac{m'}{1 - \beta_1^t}, \qquad \hat v = \frac{v'}{1 - \beta_2^t}, \qquad
        \theta' = \theta - \eta\, \frac{\hat m}{\sqrt{\hat v} + \varepsilon}

    Shapes: ``theta``, ``grad``, ``m`` and ``v`` equal (start with ``m = v = 0``).
    Matches ``torch.optim.Adam(lr=lr, betas=(beta1, beta2), eps=eps)``
    (``weight_decay=0``, ``amsgrad=False``). Returns ``(theta, m, v)``.
    """
    theta = _validate.array("theta", theta)
    grad = _validate.same_shape("grad", grad, "theta", theta)
    m = _validate.same_shape("m", m, "theta", theta)
    v = _validate.same_shape("v", v, "theta", theta)
    t = _validate.integer("t", t, low=1)
    lr = _validate.number("lr", lr)
    beta1 = _rate("beta1", beta1)
    beta2 = _rate("beta2", beta2)
    eps = _validate.number("eps", eps)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def adamw_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2):
    r"""One AdamW step: decay the weights directly, then take the Adam step of the loss gradient.

    .. math:: \theta' = (1 - \eta\lambda)\,\theta - \eta\, \frac{\hat m}{\sqrt{\hat v} + \varepsilon}

    with :math:`\hat m, \hat v` as in :func:`adam_step`, computed from ``grad`` alone:
    the decay :math:`\lambda` is not added to the gradient (that would be an L2
    penalty, ``torch.optim.Adam(weight_decay=...)``). Shapes as in :func:`adam_step`.
    Matches ``torch.optim.AdamW(lr=lr, betas=(beta1, beta2), eps=eps,
    weight_decay=weight_decay)``. Returns ``(theta, m, v)``.
    """
    theta = _validate.array("theta", theta)
    lr = _validate.number("lr", lr)
    weight_decay = _validate.number("weight_decay", weight_decay)
    return adam_step(theta * (1 - lr * weight_decay), grad, m, v, t, lr, beta1, beta2, eps)
