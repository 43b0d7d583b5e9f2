"""Chapter 2 reference: the adaptive optimizers and the learning-rate schedules against PyTorch."""

import numpy as np
import pytest
import torch

from nnopt import optim, schedules

STEPS = 120

# (our rule, hyperparameters, the same optimizer in PyTorch)
OPTIMIZERS = [
    (optim.adagrad_step, {}, lambda p: torch.optim.Adagrad(p)),
    (optim.adagrad_step, {"lr": 0.3, "eps": 1e-6}, lambda p: torch.optim.Adagrad(p, lr=0.3, eps=1e-6)),
    (optim.adagrad_step, {"lr": 2e-3, "eps": 0.0}, lambda p: torch.optim.Adagrad(p, lr=2e-3, eps=0.0)),
    (optim.rmsprop_step, {}, lambda p: torch.optim.RMSprop(p)),
    (optim.rmsprop_step, {"lr": 1e-3, "alpha": 0.9, "eps": 1e-6}, lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-6)),
    (optim.rmsprop_step, {"lr": 0.05, "alpha": 0.0}, lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.0)),
    (optim.adam_step, {}, lambda p: torch.optim.Adam(p)),
    (
        optim.adam_step,
        {"lr": 0.02, "beta1": 0.5, "beta2": 0.9, "eps": 1e-5},
        lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.5, 0.9), eps=1e-5),
    ),
    (optim.adam_step, {"lr": 0.1, "beta1": 0.0, "beta2": 0.99}, lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.0, 0.99))),
    (optim.adamw_step, {}, lambda p: torch.optim.AdamW(p)),
    (
        optim.adamw_step,
        {"lr": 0.01, "beta1": 0.8, "beta2": 0.995, "eps": 1e-6, "weight_decay": 0.5},
        lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.995), eps=1e-6, weight_decay=0.5),
    ),
    (optim.adamw_step, {"lr": 3e-3, "weight_decay": 0.0}, lambda p: torch.optim.AdamW(p, lr=3e-3, weight_decay=0.0)),
]
IDS = [f"{rule.__name__}-{i}" for i, (rule, _, _) in enumerate(OPTIMIZERS)]


def _relative_error(ours, theirs):
    return np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)


@pytest.mark.parametrize("rule, hyperparameters, make_torch", OPTIMIZERS, ids=IDS)
@pytest.mark.parametrize("shape, grad_scale", [((3,), 1.0), ((4, 5), 1e-3), ((2, 3, 4), 30.0)])
def test_matches_torch_step_for_step(rule, hyperparameters, make_torch, shape, grad_scale):
    """A quadratic with noisy gradients; both sides see the same gradient at the same parameters."""
    rng = np.random.default_rng(hash((rule.__name__, shape)) % 2**32)
    curvature = 10 ** rng.uniform(-1, 1, size=shape)
    theta = rng.normal(size=shape)
    parameter = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    optimizer = make_torch([parameter])
    step = optim.stepper(rule, **hyperparameters)
    for k in range(STEPS):
        grad = grad_scale * (curvature * theta + 0.1 * rng.normal(size=shape))
        parameter.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
        theta = step(theta, grad)
        error = _relative_error(theta, parameter.detach().numpy())
        assert error < 1e-10, f"step {k + 1}: relative error {error:.3g}"


@pytest.mark.parametrize("rule", [optim.adam_step, optim.adamw_step])
def test_adam_state_matches_torch(rule):
    """With explicit state: m and v are PyTorch's exp_avg and exp_avg_sq."""
    rng = np.random.default_rng(1)
    theta, m, v = rng.normal(size=7), np.zeros(7), np.zeros(7)
    parameter = torch.tensor(theta, requires_grad=True)
    optimizer = (torch.optim.Adam if rule is optim.adam_step else torch.optim.AdamW)([parameter], lr=0.01)
    for t in range(1, STEPS + 1):
        grad = rng.normal(size=7) * 10 ** rng.uniform(-2, 2)
        parameter.grad = torch.tensor(grad)
        optimizer.step()
        theta, m, v = rule(theta, grad, m, v, t, lr=0.01)
        state = optimizer.state[parameter]
        assert _relative_error(m, state["exp_avg"].numpy()) < 1e-10
        assert _relative_error(v, state["exp_avg_sq"].numpy()) < 1e-10
        assert _relative_error(theta, parameter.detach().numpy()) < 1e-10


def _inputs(rule, rng, shape=(3, 2)):
    arrays = [rng.normal(size=shape) for _ in range(4 if rule in (optim.adam_step, optim.adamw_step) else 3)]
    if rule in (optim.adam_step, optim.adamw_step):
        arrays[3] = np.abs(arrays[3])
        return (*arrays, 3)
    arrays[2] = np.abs(arrays[2])
    return tuple(arrays)


RULES = [optim.adagrad_step, optim.rmsprop_step, optim.adam_step, optim.adamw_step]


@pytest.mark.parametrize("rule", RULES)
def test_inputs_are_not_modified_and_outputs_are_new_float64(rule):
    args = _inputs(rule, np.random.default_rng(2))
    before = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    result = rule(*args)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)
    for output in result:
        assert output.dtype == np.float64
        assert not any(np.shares_memory(output, a) for a in args if isinstance(a, np.ndarray))


@pytest.mark.parametrize("rule", RULES)
def test_accepts_integer_and_list_inputs(rule):
    theta, *rest = _inputs(rule, np.random.default_rng(3), shape=(2,))
    result = rule([1, 2], *rest)
    assert result[0].dtype == np.float64


BAD_ARGUMENTS = [
    (optim.adagrad_step, {"grad": np.zeros(4)}, "grad"),
    (optim.adagrad_step, {"sum_sq": np.zeros((3, 1))}, "sum_sq"),
    (optim.adagrad_step, {"lr": -0.1}, "lr"),
    (optim.adagrad_step, {"eps": -1e-8}, "eps"),
    (optim.rmsprop_step, {"sq_avg": np.zeros(2)}, "sq_avg"),
    (optim.rmsprop_step, {"alpha": 1.0}, "alpha"),
    (optim.rmsprop_step, {"alpha": -0.1}, "alpha"),
    (optim.rmsprop_step, {"lr": float("nan")}, "lr"),
    (optim.adam_step, {"m": np.zeros(2)}, "m"),
    (optim.adam_step, {"v": np.zeros((3, 2, 1))}, "v"),
    (optim.adam_step, {"t": 0}, "t"),
    (optim.adam_step, {"t": 1.5}, "t"),
    (optim.adam_step, {"beta1": 1.0}, "beta1"),
    (optim.adam_step, {"beta2": -0.5}, "beta2"),
    (optim.adam_step, {"eps": -1.0}, "eps"),
    (optim.adam_step, {"lr": -1e-3}, "lr"),
    (optim.adamw_step, {"weight_decay": -0.01}, "weight_decay"),
    (optim.adamw_step, {"t": -3}, "t"),
    (optim.adamw_step, {"grad": np.zeros((2, 3))}, "grad"),
    (optim.adamw_step, {"beta2": 1.5}, "beta2"),
]


@pytest.mark.parametrize("rule, change, name", BAD_ARGUMENTS)
def test_bad_arguments_raise_value_error_naming_them(rule, change, name):
    names = ["theta", "grad", "sum_sq" if rule is optim.adagrad_step else "sq_avg"]
    if rule in (optim.adam_step, optim.adamw_step):
        names = ["theta", "grad", "m", "v", "t"]
    arguments = dict(zip(names, _inputs(rule, np.random.default_rng(4))))
    arguments.update(change)
    with pytest.raises(ValueError, match=name):
        rule(**arguments)


def _torch_schedule(make_scheduler, steps, base_lr):
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=base_lr)
    scheduler = make_scheduler(optimizer)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


LR = torch.optim.lr_scheduler
# (base learning rate, our schedule as a function of (base_lr, step), PyTorch's scheduler, steps)
SCHEDULES = [
    (0.1, lambda lr, k: schedules.step_decay(lr, k, 7), lambda o: LR.StepLR(o, step_size=7), 40),
    (0.3, lambda lr, k: schedules.step_decay(lr, k, 1, gamma=0.9), lambda o: LR.StepLR(o, step_size=1, gamma=0.9), 40),
    (0.1, lambda lr, k: schedules.cosine(lr, k, 30), lambda o: LR.CosineAnnealingLR(o, T_max=30), 30),
    (
        0.05,
        lambda lr, k: schedules.cosine(lr, k, 12, min_lr=1e-3),
        lambda o: LR.CosineAnnealingLR(o, T_max=12, eta_min=1e-3),
        36,
    ),
    (0.1, lambda lr, k: schedules.linear_warmup(lr, k, 10), lambda o: LR.LinearLR(o, start_factor=0.1, total_iters=10), 25),
    (
        1.0,
        lambda lr, k: schedules.linear_warmup(lr, k, 4, start_factor=0.5),
        lambda o: LR.LinearLR(o, start_factor=0.5, total_iters=4),
        10,
    ),
    (
        0.1,
        lambda lr, k: schedules.warmup_cosine(lr, k, 5, 50, min_lr=1e-4),
        lambda o: LR.SequentialLR(
            o, [LR.LinearLR(o, start_factor=0.1, total_iters=5), LR.CosineAnnealingLR(o, T_max=45, eta_min=1e-4)], milestones=[5]
        ),
        50,
    ),
    (
        0.01,
        lambda lr, k: schedules.warmup_cosine(lr, k, 1, 8, start_factor=0.3),
        lambda o: LR.SequentialLR(
            o, [LR.LinearLR(o, start_factor=0.3, total_iters=1), LR.CosineAnnealingLR(o, T_max=7)], milestones=[1]
        ),
        8,
    ),
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("base_lr, ours, make_scheduler, steps", SCHEDULES)
def test_schedules_match_torch_over_the_whole_schedule(base_lr, ours, make_scheduler, steps):
    expected = _torch_schedule(make_scheduler, steps, base_lr)
    got = [ours(base_lr, k) for k in range(steps + 1)]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)


def test_schedule_arguments_are_validated():
    with pytest.raises(ValueError, match="step_size"):
        schedules.step_decay(0.1, 3, 0)
    with pytest.raises(ValueError, match="total"):
        schedules.warmup_cosine(0.1, 3, warmup=10, total=10)
    with pytest.raises(ValueError, match="step"):
        schedules.cosine(0.1, -1, 10)
    with pytest.raises(ValueError, match="base_lr"):
        schedules.linear_warmup(-0.1, 0, 5)


def test_training_loop_is_seeded_and_follows_the_schedule():
    from nnopt import data, train

    split = data.digits(seed=0)
    histories, optimizers = [], []
    for _ in range(2):
        model = train.mlp((64, 16, 10), seed=3)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        histories.append(train.fit(model, optimizer, split, epochs=2, seed=5, lr_at=lambda k: 1e-2 / (1 + k)))
        optimizers.append(optimizer)
    assert histories[0].test_accuracy == histories[1].test_accuracy
    assert histories[0].val_accuracy == histories[1].val_accuracy
    assert len(histories[0].test_accuracy) == len(histories[0].val_accuracy) == len(histories[0].train_loss) == 3
    assert histories[0].test_accuracy[-1] > histories[0].test_accuracy[0] + 0.2
    assert histories[0].val_accuracy[-1] > histories[0].val_accuracy[0] + 0.2
    assert np.isnan(histories[0].train_loss[0]) and histories[0].train_loss[2] < histories[0].train_loss[1]
    steps = 2 * -(-len(split.y_train) // 64)
    assert optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-2 / steps)
