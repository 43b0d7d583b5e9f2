r"""Learning-rate schedules: the learning rate as a function of the step (or epoch) number.

Each schedule is a pure function ``schedule(base_lr, step, ...) -> lr`` that
returns the learning rate PyTorch's scheduler holds after ``step`` calls of
``scheduler.step()``; ``step = 0`` is the learning rate before the first call.
"""

import math

from . import _validate


def step_decay(base_lr, step, step_size, gamma=0.1):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_k = \eta_0\, \gamma^{\lfloor k / s \rfloor}

    Matches ``torch.optim.lr_scheduler.StepLR(step_size=step_size, gamma=gamma)``.
    """
    base_lr = _validate.number("base_lr", base_lr)
    step = _validate.integer("step", step)
    step_size = _validate.integer("step_size", step_size, low=1)
    gamma = _validate.number("gamma", gamma)
    return base_lr * gamma ** (step // step_size)


def cosine(base_lr, step, total, min_lr=0.0):
    r"""Half a cosine from ``base_lr`` down to ``min_lr`` over ``total`` steps.

    .. math:: \eta_k = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})\bigl(1 + \cos(\pi k / T)\bigr)

    Matches ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total, eta_min=min_lr)``,
    including that it rises again after ``total`` steps.
    """
    base_lr = _validate.number("base_lr", base_lr)
    step = _validate.integer("step", step)
    total = _validate.integer("total", total, low=1)
    min_lr = _validate.number("min_lr", min_lr)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * step / total))


def linear_warmup(base_lr, step, warmup, start_factor=0.1):
    r"""Rise linearly from ``start_factor * base_lr`` to ``base_lr`` over ``warmup`` steps, then stay.

    .. math:: \eta_k = \eta_0 \Bigl(a + (1 - a)\,\frac{\min(k, w)}{w}\Bigr)

    Matches ``torch.optim.lr_scheduler.LinearLR(start_factor=start_factor,
    end_factor=1.0, total_iters=warmup)``.
    """
    base_lr = _validate.number("base_lr", base_lr)
    step = _validate.integer("step", step)
    warmup = _validate.integer("warmup", warmup, low=1)
    start_factor = _validate.number("start_factor", start_factor, low=1e-300, high=1.0)
    return base_lr * (start_factor + (1 - start_factor) * min(step, warmup) / warmup)


def warmup_cosine(base_lr, step, warmup, total, start_factor=0.1, min_lr=0.0):
    r"""Linear warm-up for ``warmup`` steps, then a cosine decay that reaches ``min_lr`` at step ``total``.

    Matches ``torch.optim.lr_scheduler.SequentialLR`` of ``LinearLR(start_factor,
    total_iters=warmup)`` and ``CosineAnnealingLR(T_max=total - warmup, eta_min=min_lr)``
    with ``milestones=[warmup]``.
    """
    warmup = _validate.integer("warmup", warmup, low=1)
    total = _validate.integer("total", total, low=warmup + 1)
    step = _validate.integer("step", step)
    if step < warmup:
        return linear_warmup(base_lr, step, warmup, start_factor)
    return cosine(base_lr, step - warmup, total - warmup, min_lr)
