"""nnopt.lockstep: a population of MLPs computes and trains exactly like its members, one by one."""

import numpy as np
import pytest
import torch

from nnopt import data, lockstep, train, transfer

SIZES = (6, 10, 8, 3)


def member_split(rng, n=23):
    X = rng.normal(size=(n, SIZES[0]))
    y = rng.integers(0, SIZES[-1], size=n)
    return data.Split(X, y, X[:2], y[:2], X[:2], y[:2])


def test_members_start_as_nnopt_train_mlp():
    population = lockstep.mlp(SIZES, seeds=[3, 5])
    assert [name for name, _ in population.named_children()] == ["block1", "block2", "head"]
    X = torch.randn(4, SIZES[0])
    outputs = lockstep.predict(population, X)
    for m, seed in enumerate([3, 5]):
        torch.testing.assert_close(outputs[m], train.mlp(SIZES, seed=seed)(X), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_population_trains_like_its_members_trained_one_by_one(momentum):
    rng = np.random.default_rng(0)
    seeds, lrs = [0, 1, 2], [0.1, 0.05, 0.02]
    splits = [member_split(rng) for _ in seeds]
    epochs, batch_size = 3, 8
    steps = epochs * -(-len(splits[0].y_train) // batch_size)
    population = lockstep.mlp(SIZES, seeds)
    optimizer = torch.optim.SGD(population.parameters(), lr=max(lrs), momentum=momentum)
    lockstep.fit(population, optimizer, np.stack([s.X_train for s in splits]), np.stack([s.y_train for s in splits]),
                 steps, batch_size, seeds=[10 * seed for seed in seeds], lr_scale=[lr / max(lrs) for lr in lrs])
    X = torch.randn(5, SIZES[0])
    outputs = lockstep.predict(population, X)
    for m, (seed, lr, split) in enumerate(zip(seeds, lrs, splits)):
        single = train.mlp(SIZES, seed=seed)
        train.fit(single, torch.optim.SGD(single.parameters(), lr=lr, momentum=momentum), split, epochs, batch_size, seed=10 * seed)
        torch.testing.assert_close(outputs[m], single(X).detach(), rtol=1e-5, atol=1e-5)


def test_fine_tuning_a_population_trains_like_its_members_one_by_one():
    """As chapter 7 fine-tunes: repeated source members, new heads, a frozen block, a body
    learning rate a tenth of the head's, and one learning rate per member through lr_scale."""
    rng = np.random.default_rng(1)
    seeds, lrs = [0, 1], [0.1, 0.02]
    splits = [member_split(rng) for _ in range(len(seeds) * len(lrs))]
    epochs, batch_size = 3, 8
    steps = epochs * -(-len(splits[0].y_train) // batch_size)
    heads = lockstep.mlp(SIZES[2:], seeds=[50 + m for m in range(len(splits))]).head
    population = transfer.replace_head(lockstep.repeat(lockstep.mlp(SIZES, seeds), len(lrs)), heads)
    transfer.freeze_blocks(population, 1)
    groups = transfer.parameter_groups(population, lr=max(lrs), body_lr=0.1 * max(lrs))
    lockstep.fit(population, torch.optim.SGD(groups, lr=max(lrs), momentum=0.9),
                 np.stack([s.X_train for s in splits]), np.stack([s.y_train for s in splits]), steps, batch_size,
                 seeds=[7 * m for m in range(len(splits))], lr_scale=[lr / max(lrs) for _ in seeds for lr in lrs])
    X = torch.randn(5, SIZES[0])
    outputs = lockstep.predict(population, X)
    for m, split in enumerate(splits):
        seed, lr = seeds[m // len(lrs)], lrs[m % len(lrs)]
        single = train.mlp(SIZES, seed=seed)
        single[4].load_state_dict(train.mlp(SIZES[2:], seed=50 + m)[0].state_dict())
        single[0].requires_grad_(False)
        groups = [{"params": single[2].parameters(), "lr": 0.1 * lr}, {"params": single[4].parameters(), "lr": lr}]
        train.fit(single, torch.optim.SGD(groups, lr=lr, momentum=0.9), split, epochs, batch_size, seed=7 * m)
        torch.testing.assert_close(outputs[m], single(X).detach(), rtol=1e-5, atol=1e-5)


def test_frozen_blocks_of_a_population_do_not_move():
    population = transfer.freeze_blocks(lockstep.mlp(SIZES, [0, 1]), 2)
    before = [p.detach().clone() for p in population.parameters()]
    optimizer = torch.optim.SGD(transfer.parameter_groups(population, 0.1, 0.01), lr=0.1)
    lockstep.fit(population, optimizer, np.random.default_rng(1).normal(size=(12, SIZES[0])),
                 np.arange(12) % 3, steps=5, batch_size=4, seeds=[0, 1])
    moved = [not torch.equal(a, b) for a, b in zip(before, population.parameters())]
    assert moved == [False, False, False, False, True, True]


def test_repeat_copies_each_member_in_place_of_several():
    population = lockstep.mlp(SIZES, [0, 1])
    transfer.freeze_blocks(population, 1)
    repeated = lockstep.repeat(population, 3)
    assert lockstep.members(repeated) == 6
    X = torch.randn(4, SIZES[0])
    torch.testing.assert_close(lockstep.predict(repeated, X), lockstep.predict(population, X).repeat_interleave(3, dim=0))
    assert not repeated.block1[0].weight.requires_grad and repeated.block2[0].weight.requires_grad
    repeated.block2[0].weight.data += 1.0
    assert not torch.equal(repeated.block2[0].weight[0], population.block2[0].weight[0])


def test_accuracy_counts_each_member():
    population = lockstep.mlp(SIZES, [0, 1])
    X = np.random.default_rng(2).normal(size=(9, SIZES[0]))
    predicted = lockstep.predict(population, X).argmax(dim=2)
    y = predicted[0].numpy()
    np.testing.assert_allclose(lockstep.accuracy(population, X, y), [1.0, (predicted[1].numpy() == y).mean()])


def test_features_of_a_population_have_one_slice_per_member():
    population = lockstep.mlp(SIZES, [0, 1, 2])
    X = np.random.default_rng(3).normal(size=(7, SIZES[0]))
    hidden = transfer.features(population, np.broadcast_to(X, (3, 7, SIZES[0])), "block2")
    assert hidden.shape == (3, 7, SIZES[2]) and (hidden >= 0).all()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"optimizer": "adam", "lr_scale": [1.0, 0.5]}, "lr_scale needs torch.optim.SGD"),
        ({"lr_scale": [1.0]}, "lr_scale must hold one number per member"),
        ({"seeds": [0]}, "seeds must hold one seed per member"),
        ({"y": np.zeros((3, 12), dtype=int)}, r"X must have shape \(2, n, features\)"),
    ],
)
def test_fit_rejects_bad_input(change, message):
    population = lockstep.mlp(SIZES, [0, 1])
    optimizer = torch.optim.SGD(population.parameters(), lr=0.1)
    if change.pop("optimizer", None) == "adam":
        optimizer = torch.optim.Adam(population.parameters())
    arguments = dict(X=np.zeros((12, SIZES[0])), y=np.zeros(12, dtype=int), steps=1, batch_size=4, seeds=[0, 1])
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        lockstep.fit(population, optimizer, **arguments)
