r"""Two-dimensional test functions with analytic gradients.

Each landscape evaluates ``value(x)`` and ``grad(x)`` for a point of shape ``(2,)``
or a batch of points of shape ``(..., 2)`` (for contour plots), and knows a
sensible plotting window and starting point.
"""

from dataclasses import dataclass, field

import numpy as np

from . import _validate


def _points(x):
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1:] != (2,):
        raise ValueError(f"x must have shape (..., 2), got {x.shape}")
    return x


@dataclass(frozen=True)
class Quadratic:
    r"""The quadratic :math:`f(x) = \tfrac12 x^\top A x` with eigenvalues ``L`` and ``L / condition``.

    ``angle`` (degrees) rotates the eigenvectors away from the axes. The Hessian
    is ``A`` everywhere, so ``L`` is the smoothness constant and ``mu = L / condition``
    the strong-convexity constant.
    """

    condition: float = 10.0
    L: float = 1.0
    angle: float = 0.0
    name: str = "quadratic"
    start: tuple = (-1.8, 1.6)
    window: tuple = (-2.0, 2.0, -2.0, 2.0)
    A: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        _validate.number("condition", self.condition, low=1.0)
        _validate.number("L", self.L, low=1e-12)
        radians = np.deg2rad(self.angle)
        rotation = np.array([[np.cos(radians), -np.sin(radians)], [np.sin(radians), np.cos(radians)]])
        A = rotation @ np.diag([self.L, self.mu]) @ rotation.T
        object.__setattr__(self, "A", A)

    @property
    def mu(self):
        return self.L / self.condition

    minimum = (0.0, 0.0)

    def value(self, x):
        x = _points(x)
        return 0.5 * np.einsum("...i,ij,...j->...", x, self.A, x)

    def grad(self, x):
        return _points(x) @ self.A.T


@dataclass(frozen=True)
class Rosenbrock:
    r"""Rosenbrock's banana valley :math:`f(x, y) = (a - x)^2 + b (y - x^2)^2`, minimum at ``(a, a^2)``."""

    a: float = 1.0
    b: float = 100.0
    name: str = "Rosenbrock"
    start: tuple = (-1.5, 2.0)
    window: tuple = (-2.0, 2.0, -1.0, 3.0)

    @property
    def minimum(self):
        return (self.a, self.a**2)

    def value(self, x):
        x = _points(x)
        return (self.a - x[..., 0]) ** 2 + self.b * (x[..., 1] - x[..., 0] ** 2) ** 2

    def grad(self, x):
        x = _points(x)
        u, v = x[..., 0], x[..., 1]
        du = -2 * (self.a - u) - 4 * self.b * u * (v - u**2)
        dv = 2 * self.b * (v - u**2)
        return np.stack([du, dv], axis=-1)


@dataclass(frozen=True)
class Saddle:
    r"""A saddle at the origin between two minima: :math:`f(x, y) = \tfrac12 x^2 - \tfrac12 y^2 + \tfrac14 y^4`.

    The minima are at ``(0, +-1)``. Started almost on the ridge ``y = 0``, plain
    gradient descent lingers near the saddle because the escaping gradient is tiny.
    """

    name: str = "saddle"
    start: tuple = (1.8, 1e-3)
    window: tuple = (-2.0, 2.0, -1.6, 1.6)
    minimum = (0.0, 1.0)

    def value(self, x):
        x = _points(x)
        return 0.5 * x[..., 0] ** 2 - 0.5 * x[..., 1] ** 2 + 0.25 * x[..., 1] ** 4

    def grad(self, x):
        x = _points(x)
        return np.stack([x[..., 0], -x[..., 1] + x[..., 1] ** 3], axis=-1)


def descend(landscape, step, steps, start=None):
    """Run ``step(theta, grad) -> theta`` for ``steps`` steps; return the path, shape ``(steps + 1, 2)``.

    A path that leaves the plotting window by a factor of 1e6 is cut short and
    padded with ``nan`` so that diverging runs stay plottable.
    """
    steps = _validate.integer("steps", steps)
    theta = np.array(landscape.start if start is None else start, dtype=np.float64)
    path = np.full((steps + 1, 2), np.nan)
    path[0] = theta
    limit = 1e6 * max(abs(v) for v in landscape.window)
    for k in range(1, steps + 1):
        theta = np.asarray(step(theta, landscape.grad(theta)), dtype=np.float64)
        if not np.all(np.isfinite(theta)) or np.max(np.abs(theta)) > limit:
            break
        path[k] = theta
    return path


def contour_grid(landscape, resolution=120):
    """Return ``(X, Y, Z)`` over the landscape's window, for ``plt.contour``."""
    x0, x1, y0, y1 = landscape.window
    X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    return X, Y, landscape.value(np.stack([X, Y], axis=-1))
