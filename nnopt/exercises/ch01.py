"""Chapter 1 exercises: gradient descent, mini-batches, momentum."""

import numpy as np

from .. import data, optim
from .core import Call, Exercise, Mistake, _describe

CHAPTER = "01_gradient_descent"
SHAPES = [(1,), (2,), (5,), (3, 4), (2, 3, 4)]


def _scaled_normal(rng, shape):
    return rng.normal(size=shape) * 10 ** rng.uniform(-2, 2)


def _gd_cases(rng):
    calls = []
    for shape in SHAPES:
        for lr in rng.choice([0.0, 1e-3, 0.1, 0.5, 2.0], size=2, replace=False):
            theta, grad = _scaled_normal(rng, shape), rng.normal(size=shape)
            calls.append(Call((theta, grad, float(lr)), label=f"theta of shape {shape}, lr={lr:g}"))
    return calls


GD_STEP = Exercise(
    chapter=CHAPTER,
    name="gd_step",
    points=2,
    cases=_gd_cases,
    reference=optim.gd_step,
    mistakes=(
        Mistake(
            "sign_error",
            "def gd_step(theta, grad, lr):\n    return theta + lr * grad\n",
            diagnosis="the step goes uphill: subtract the gradient, theta - lr * grad",
        ),
        Mistake(
            "missing_lr",
            "def gd_step(theta, grad, lr):\n    return theta - grad\n",
            diagnosis="the learning rate is missing: the step is lr * grad",
        ),
        Mistake(
            "returns_step",
            "def gd_step(theta, grad, lr):\n    return -lr * grad\n",
            diagnosis="you returned the step -lr * grad; return the new parameters theta - lr * grad",
        ),
        Mistake(
            "in_place",
            "def gd_step(theta, grad, lr):\n    theta -= lr * grad\n    return theta\n",
            expect="in place",
        ),
        Mistake(
            "float32",
            "def gd_step(theta, grad, lr):\n    return (theta - lr * grad).astype(np.float32)\n",
            expect="dtype float32, expected float64",
        ),
    ),
)


def _batch_cases(rng):
    calls = []
    for n, batch_size in [(10, 3), (100, 32), (64, 64), (7, 10), (1, 1), (50, 1), (37, 8)]:
        seed = int(rng.integers(2**31))
        calls.append(Call((n, batch_size, seed), label=f"n={n}, batch_size={batch_size}, seed={seed}"))
        if n >= 10:  # the same seed again, and another seed: order must repeat, and vary
            calls.append(Call((n, batch_size, seed), label=f"n={n}, batch_size={batch_size}, seed={seed} again"))
            calls.append(Call((n, batch_size, seed + 1), label=f"n={n}, batch_size={batch_size}, seed={seed + 1}"))
    return calls


def _check_batches(call, output):
    n, batch_size, _ = call.args
    if not isinstance(output, (list, tuple)):  # a generator's items arrive as a list
        return [
            "minibatch_indices should yield its index arrays, or return them in a list or a tuple, "
            f"got {_describe(output)}"
        ]
    for i, batch in enumerate(output):
        if not isinstance(batch, np.ndarray) or batch.ndim != 1 or batch.dtype.kind not in "iu":
            return [f"batch {i} should be a 1-D integer array, got {batch!r:.80}"]
    expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    sizes = [len(batch) for batch in output]
    if sizes != expected_sizes:
        if sizes == expected_sizes[:-1] and n % batch_size:
            return [f"the last, partial batch of {n % batch_size} indices is missing (batch sizes {sizes})"]
        return [f"batch sizes are {sizes[:12]}, expected {expected_sizes[:12]}"]
    order = np.concatenate(output) if output else np.zeros(0, int)
    outside = order[(order < 0) | (order >= n)]
    if outside.size:
        return [f"index {outside[0]} is out of range for n={n}"]
    visits = np.bincount(order, minlength=n)
    if (visits != 1).any():
        repeated = np.flatnonzero(visits > 1)
        missing = np.flatnonzero(visits == 0)
        return [
            f"an epoch must visit every index once: it repeats {len(repeated)} indices "
            f"(e.g. {repeated[:3].tolist()}) and never visits {len(missing)} (e.g. {missing[:3].tolist()})"
        ]
    if n >= 10 and np.array_equal(order, np.arange(n)):
        return ["the indices come in order 0, 1, 2, ...: they are not shuffled"]
    return []


def _check_seeds(calls, outputs):
    problems = []
    for i in range(len(calls) - 2):
        first, again, other = calls[i : i + 3]
        if first.args == again.args and first.args[:2] == other.args[:2] and other.args[2] == first.args[2] + 1:
            order = [np.concatenate(outputs[k]) for k in range(i, i + 3)]
            if not np.array_equal(order[0], order[1]):
                problems.append(f"the same seed gave two different orders ({first.label}): use the seed")
            elif np.array_equal(order[0], order[2]):
                problems.append(f"seeds {first.args[2]} and {other.args[2]} gave the same order: use the seed")
    return problems


MINIBATCH_INDICES = Exercise(
    chapter=CHAPTER,
    name="minibatch_indices",
    points=3,
    cases=_batch_cases,
    reference=data.minibatch_indices,
    compare_to_reference=False,
    check=_check_batches,
    check_all=_check_seeds,
    mistakes=(
        Mistake(
            "no_shuffle",
            "def minibatch_indices(n, batch_size, seed):\n"
            "    order = np.arange(n)\n"
            "    return [order[i:i + batch_size] for i in range(0, n, batch_size)]\n",
            expect="not shuffled",
        ),
        Mistake(
            "with_replacement",
            "def minibatch_indices(n, batch_size, seed):\n"
            "    order = np.random.default_rng(seed).integers(0, n, size=n)\n"
            "    return [order[i:i + batch_size] for i in range(0, n, batch_size)]\n",
            expect="repeats",
        ),
        Mistake(
            "drop_last",
            "def minibatch_indices(n, batch_size, seed):\n"
            "    order = np.random.default_rng(seed).permutation(n)\n"
            "    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]\n",
            expect="partial batch",
        ),
        Mistake(
            "ignores_seed",
            "def minibatch_indices(n, batch_size, seed):\n"
            "    order = np.random.permutation(n)\n"
            "    return [order[i:i + batch_size] for i in range(0, n, batch_size)]\n",
            expect="use the seed",
        ),
    ),
)


def _momentum_cases(rng):
    calls = []
    momenta = rng.permutation([0.0, 0.5, 0.9, 0.99, rng.choice([0.5, 0.9])])  # each value at least once
    for shape, momentum in zip(SHAPES, momenta):
        lr, momentum = float(rng.choice([1e-3, 0.05, 0.3])), float(momentum)
        theta, velocity = _scaled_normal(rng, shape), np.zeros(shape)
        for step in range(1, 5):  # teacher forcing: every call starts from the reference's state
            grad = rng.normal(size=shape)
            calls.append(
                Call(
                    (theta, grad, velocity, lr),
                    {"momentum": momentum},
                    label=f"step {step}, shape {shape}, lr={lr:g}, momentum={momentum:g}",
                )
            )
            theta, velocity = optim.momentum_step(theta, grad, velocity, lr, momentum=momentum)
    return calls


MOMENTUM_STEP = Exercise(
    chapter=CHAPTER,
    name="momentum_step",
    points=3,
    cases=_momentum_cases,
    reference=optim.momentum_step,
    mistakes=(
        Mistake(
            "dampened",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity = momentum * velocity + (1 - momentum) * grad\n"
            "    return theta - lr * velocity, velocity\n",
            diagnosis="the gradient was damped by (1 - momentum); PyTorch's buffer is v = momentum * v + grad",
        ),
        Mistake(
            "old_velocity",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    return theta - lr * velocity, momentum * velocity + grad\n",
            diagnosis="theta moved with the old velocity; update v first, then theta - lr * v",
        ),
        Mistake(
            "lr_in_velocity",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity = momentum * velocity + lr * grad\n"
            "    return theta - velocity, velocity\n",
            diagnosis="the learning rate went into the velocity (v = momentum * v + lr * grad); "
            "PyTorch keeps it out: v = momentum * v + grad, theta - lr * v",
        ),
        Mistake(
            "lr_in_negative_velocity",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity = momentum * velocity - lr * grad\n"
            "    return theta + velocity, velocity\n",
            diagnosis="this is the other convention (v = momentum * v - lr * grad, theta + v), whose "
            "velocity is -lr times PyTorch's; PyTorch keeps lr out: v = momentum * v + grad, theta - lr * v",
        ),
        Mistake(
            "nesterov",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity = momentum * velocity + grad\n"
            "    return theta - lr * (grad + momentum * velocity), velocity\n",
            diagnosis="this is Nesterov's step, theta - lr * (grad + momentum * v); heavy ball steps with "
            "the velocity itself, theta - lr * v",
        ),
        Mistake(
            "momentum_ignored",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity = 0.9 * velocity + grad\n"
            "    return theta - lr * velocity, velocity\n",
            diagnosis="the momentum argument was not used (0.9 whatever momentum is passed): "
            "v = momentum * v + grad",
        ),
        Mistake(
            "sign_error",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity = momentum * velocity + grad\n"
            "    return theta + lr * velocity, velocity\n",
            diagnosis="the step goes uphill: theta - lr * v, not theta + lr * v",
        ),
        Mistake(
            "in_place",
            "def momentum_step(theta, grad, velocity, lr, momentum=0.9):\n"
            "    velocity *= momentum\n"
            "    velocity += grad\n"
            "    theta -= lr * velocity\n"
            "    return theta, velocity\n",
            expect="in place",
        ),
    ),
)

EXERCISES = (GD_STEP, MINIBATCH_INDICES, MOMENTUM_STEP)
