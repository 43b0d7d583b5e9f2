"""nnopt.optim (chapter 1) against torch.optim.SGD, on random inputs."""

import numpy as np
import pytest
import torch

from nnopt import data, landscapes, models, optim

SHAPES = [(1,), (7,), (3, 5), (2, 3, 4)]


def torch_sgd_path(theta0, grads, **hyperparameters):
    """Parameters after each step of torch.optim.SGD fed the given gradients (float64)."""
    parameter = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    optimizer = torch.optim.SGD([parameter], **hyperparameters)
    path = []
    for grad in grads:
        parameter.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
        path.append(parameter.detach().numpy().copy())
    return path


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lr", [1e-3, 0.1, 1.7])
def test_gd_step_matches_torch_sgd(shape, lr):
    rng = np.random.default_rng(hash((shape, lr)) % 2**32)
    theta = rng.normal(size=shape)
    grads = rng.normal(size=(120, *shape))
    expected = torch_sgd_path(theta, grads, lr=lr)
    for grad, want in zip(grads, expected):
        theta = optim.gd_step(theta, grad, lr)
        assert relative_error(theta, want) < 1e-10


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lr,momentum", [(0.01, 0.9), (0.3, 0.5), (1e-3, 0.99), (0.1, 0.0)])
def test_momentum_step_matches_torch_sgd_with_momentum(shape, lr, momentum):
    rng = np.random.default_rng(hash((shape, lr, momentum)) % 2**32)
    theta = rng.normal(size=shape)
    velocity = np.zeros(shape)
    grads = rng.normal(size=(150, *shape))
    expected = torch_sgd_path(theta, grads, lr=lr, momentum=momentum)
    for grad, want in zip(grads, expected):
        theta, velocity = optim.momentum_step(theta, grad, velocity, lr, momentum=momentum)
        assert relative_error(theta, want) < 1e-10


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("lr,momentum", [(0.01, 0.9), (0.3, 0.5), (1e-3, 0.99), (0.1, 0.2)])  # torch needs momentum > 0
def test_nesterov_step_matches_torch_sgd_with_nesterov(shape, lr, momentum):
    rng = np.random.default_rng(hash((shape, lr, momentum, "nesterov")) % 2**32)
    theta = rng.normal(size=shape)
    velocity = np.zeros(shape)
    grads = rng.normal(size=(150, *shape))
    expected = torch_sgd_path(theta, grads, lr=lr, momentum=momentum, nesterov=True)
    for grad, want in zip(grads, expected):
        theta, velocity = optim.nesterov_step(theta, grad, velocity, lr, momentum=momentum)
        assert relative_error(theta, want) < 1e-10


def test_stepper_runs_momentum_like_torch():
    rng = np.random.default_rng(0)
    theta0, grads = rng.normal(size=4), rng.normal(size=(100, 4))
    step = optim.stepper(optim.momentum_step, lr=0.05, momentum=0.8)
    theta = theta0
    for grad, want in zip(grads, torch_sgd_path(theta0, grads, lr=0.05, momentum=0.8)):
        theta = step(theta, grad)
        assert relative_error(theta, want) < 1e-10


def test_updates_are_pure():
    rng = np.random.default_rng(1)
    theta, grad, velocity = rng.normal(size=(3, 5))
    before = [a.copy() for a in (theta, grad, velocity)]
    new_theta = optim.gd_step(theta, grad, 0.1)
    new_theta2, new_velocity = optim.momentum_step(theta, grad, velocity, 0.1)
    new_theta3, new_velocity3 = optim.nesterov_step(theta, grad, velocity, 0.1)
    for array, original in zip((theta, grad, velocity), before):
        np.testing.assert_array_equal(array, original)
    for result in (new_theta, new_theta2, new_velocity, new_theta3, new_velocity3):
        assert result.dtype == np.float64
        assert not any(np.shares_memory(result, a) for a in (theta, grad, velocity))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: optim.gd_step(np.zeros(3), np.zeros(2), 0.1), "grad must have the same shape as theta"),
        (lambda: optim.gd_step(np.zeros(3), np.zeros(3), -0.1), "lr must be in"),
        (lambda: optim.gd_step(np.zeros(3), np.zeros(3), float("nan")), "lr must be a finite real number"),
        (lambda: optim.gd_step(np.zeros(3), np.zeros(3), "0.1"), "lr must be a finite real number"),
        (lambda: optim.gd_step(["a"], [1.0], 0.1), "theta must be a numeric array"),
        (lambda: optim.momentum_step(np.zeros(3), np.zeros(3), np.zeros(4), 0.1), "velocity must have the same shape"),
        (lambda: optim.momentum_step(np.zeros(3), np.zeros(3), np.zeros(3), 0.1, momentum=-0.5), "momentum must be in"),
        (lambda: optim.nesterov_step(np.zeros(3), np.zeros(3), np.zeros(2), 0.1), "velocity must have the same shape"),
        (lambda: list(data.minibatch_indices(10, 0, seed=0)), "batch_size must be at least 1"),
        (lambda: list(data.minibatch_indices(2.5, 1, seed=0)), "n must be an integer"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_minibatch_indices_partition_each_epoch():
    batches = list(data.minibatch_indices(103, 10, seed=3))
    assert [len(b) for b in batches] == [10] * 10 + [3]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(103))
    again = list(data.minibatch_indices(103, 10, seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(list(data.minibatch_indices(103, 10, seed=4))))


def test_landscape_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    for landscape in (landscapes.Quadratic(condition=30, angle=25), landscapes.Rosenbrock(), landscapes.Saddle()):
        for point in rng.uniform(-1.5, 1.5, size=(5, 2)):
            numeric = [
                (landscape.value(point + h) - landscape.value(point - h)) / 2e-6
                for h in np.eye(2) * 1e-6
            ]
            np.testing.assert_allclose(landscape.grad(point), numeric, rtol=1e-5, atol=1e-6)


def test_quadratic_has_the_requested_curvature():
    bowl = landscapes.Quadratic(condition=50, L=3, angle=40)
    np.testing.assert_allclose(np.linalg.eigvalsh(bowl.A), [3 / 50, 3])
    with pytest.raises(ValueError, match="condition must be in"):
        landscapes.Quadratic(condition=0.5)


def test_softmax_regression_hessian_matches_torch():
    rng = np.random.default_rng(3)
    X, W, y = rng.normal(size=(40, 5)), rng.normal(size=(5, 3)), rng.integers(0, 3, size=40)

    def loss(weights):
        return torch.nn.functional.cross_entropy(torch.tensor(X) @ weights, torch.tensor(y))

    expected = torch.autograd.functional.hessian(loss, torch.tensor(W)).reshape(15, 15).numpy()
    np.testing.assert_allclose(models.softmax_regression_hessian(W, X), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(models.softmax_regression_loss(W, X, y)[0], loss(torch.tensor(W)).item(), rtol=1e-12)
