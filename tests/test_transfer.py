"""nnopt.transfer (chapter 7) against PyTorch on random inputs: softmax with temperature,
the distillation loss and its gradient, linear CKA, and the fine-tuning helpers."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnopt import transfer

SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), (6, 1)]


def relative_error(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(np.asarray(b))), 1e-300)


# --- softmax ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("T", [0.05, 1.0, 3.0, 100.0])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_matches_torch(shape, T, scale):
    rng = np.random.default_rng(hash((shape, T, scale)) % 2**32)
    z = rng.normal(size=shape) * scale
    expected = torch.softmax(torch.tensor(z) / T, dim=-1).numpy()
    got = transfer.softmax(z, T)
    assert got.dtype == np.float64 and got.shape == z.shape
    assert relative_error(got, expected) < 1e-12
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-12)


def test_softmax_is_stable_where_the_plain_formula_overflows():
    z = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4, -1e4 + 1]])
    with np.errstate(over="ignore", invalid="ignore"):
        plain = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    assert np.isnan(plain).any()
    got = transfer.softmax(z)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, torch.softmax(torch.tensor(z), dim=-1).numpy(), rtol=1e-12)


def test_softmax_limits_of_the_temperature():
    z = np.array([2.0, 1.0, -0.5])
    np.testing.assert_allclose(transfer.softmax(z, T=1e6), np.full(3, 1 / 3), rtol=1e-5)
    np.testing.assert_allclose(transfer.softmax(z, T=1e-3), [1.0, 0.0, 0.0], atol=1e-300)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: transfer.softmax(np.float64(1.0)), "z must have at least one axis"),
        (lambda: transfer.softmax(np.zeros((2, 0))), "z must have at least one axis"),
        (lambda: transfer.softmax(np.zeros(3), T=0.0), "T must be positive"),
        (lambda: transfer.softmax(np.zeros(3), T=-1.0), "T must be in"),
        (lambda: transfer.softmax("abc"), "z must be a numeric array"),
    ],
)
def test_softmax_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- distillation loss ------------------------------------------------------------------------


def torch_distillation(student, teacher, labels, T, alpha):
    """The loss as the issue defines it, from torch's kl_div and cross_entropy, and autograd's gradient."""
    s = torch.tensor(student, requires_grad=True)
    t = torch.tensor(teacher)
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    hard = F.cross_entropy(s, torch.tensor(labels))
    loss = alpha * T**2 * soft + (1 - alpha) * hard
    loss.backward()
    return loss.item(), s.grad.numpy()


@pytest.mark.parametrize("n,classes", [(1, 2), (4, 3), (16, 10), (5, 1)])
@pytest.mark.parametrize("T", [0.5, 1.0, 4.0, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_distillation_loss_matches_torch(n, classes, T, alpha):
    rng = np.random.default_rng(hash((n, classes, T, alpha)) % 2**32)
    student = rng.normal(size=(n, classes)) * 3
    teacher = rng.normal(size=(n, classes)) * 5
    labels = rng.integers(0, classes, size=n)
    loss, grad = transfer.distillation_loss(student, teacher, labels, T, alpha)
    want_loss, want_grad = torch_distillation(student, teacher, labels, T, alpha)
    assert isinstance(loss, float)
    assert grad.dtype == np.float64 and grad.shape == student.shape
    assert abs(loss - want_loss) <= 1e-12 * (1 + abs(want_loss))
    assert np.max(np.abs(grad - want_grad)) <= 1e-12 * (1 + np.max(np.abs(want_grad)))


def test_distillation_loss_with_huge_logits_and_a_certain_teacher():
    student = np.array([[1000.0, -1000.0, 0.0], [3.0, 2.0, 1.0]])
    teacher = np.array([[-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]])  # the first teacher row puts 0 on two classes
    labels = np.array([1, 0])
    loss, grad = transfer.distillation_loss(student, teacher, labels, T=2.0, alpha=0.7)
    want_loss, want_grad = torch_distillation(student, teacher, labels, 2.0, 0.7)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert abs(loss - want_loss) <= 1e-12 * abs(want_loss)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)


def test_distillation_loss_is_zero_when_the_student_copies_the_teacher():
    logits = np.random.default_rng(0).normal(size=(6, 4))
    loss, grad = transfer.distillation_loss(logits, logits, np.zeros(6, dtype=int), T=3.0, alpha=1.0)
    assert abs(loss) < 1e-14 and np.max(np.abs(grad)) < 1e-15


def test_t_squared_keeps_the_soft_gradient_on_the_scale_of_the_hard_one():
    """For large T the soft gradient tends to (s - t) / (N C) (centred logits): independent of T."""
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    labels = rng.integers(0, 5, size=8)
    norms = [np.linalg.norm(transfer.distillation_loss(student, teacher, labels, T, 1.0)[1]) for T in (10, 100, 1000)]
    np.testing.assert_allclose(norms, norms[-1], rtol=0.05)  # while 1/T**2 would span a factor 10**4
    centred = (student - student.mean(1, keepdims=True)) - (teacher - teacher.mean(1, keepdims=True))
    np.testing.assert_allclose(norms[-1], np.linalg.norm(centred / (8 * 5)), rtol=1e-3)


def test_distillation_loss_is_pure():
    rng = np.random.default_rng(2)
    student, teacher, labels = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), np.array([0, 3, 1])
    before = [a.copy() for a in (student, teacher, labels)]
    transfer.distillation_loss(student, teacher, labels, 2.0, 0.5)
    for array, original in zip((student, teacher, labels), before):
        np.testing.assert_array_equal(array, original)


@pytest.mark.parametrize(
    "arguments,message",
    [
        ((np.zeros((2, 3)), np.zeros((2, 4)), [0, 1], 1.0, 0.5), "teacher_logits must have the same shape"),
        ((np.zeros(3), np.zeros(3), [0], 1.0, 0.5), "student_logits must have shape"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), [0.0, 1.0], 1.0, 0.5), "labels must be an integer array"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), [0, 1, 2], 1.0, 0.5), r"labels must have shape \(2,\)"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), [0, 3], 1.0, 0.5), r"labels must be class indices in \[0, 3\)"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), [0, -1], 1.0, 0.5), "labels must be class indices"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), [0, 1], 0.0, 0.5), "T must be positive"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), [0, 1], 1.0, 1.5), "alpha must be in"),
    ],
)
def test_distillation_loss_rejects_bad_input(arguments, message):
    with pytest.raises(ValueError, match=message):
        transfer.distillation_loss(*arguments)


# --- linear CKA -------------------------------------------------------------------------------


def torch_cka(X, Y):
    """CKA from the Gram matrices, HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), HSIC(K, L) = tr(K H L H)."""
    X, Y = torch.tensor(X), torch.tensor(Y)
    n = X.shape[0]
    H = torch.eye(n, dtype=torch.float64) - torch.full((n, n), 1.0 / n, dtype=torch.float64)
    K, L = X @ X.T, Y @ Y.T

    def hsic(A, B):
        return torch.trace(A @ H @ B @ H)

    return (hsic(K, L) / torch.sqrt(hsic(K, K) * hsic(L, L))).item()


@pytest.mark.parametrize("n,p,q", [(2, 1, 1), (10, 3, 7), (50, 20, 5), (8, 30, 12), (200, 16, 16)])
def test_linear_cka_matches_the_gram_matrix_form_in_torch(n, p, q):
    rng = np.random.default_rng(hash((n, p, q)) % 2**32)
    X = rng.normal(size=(n, p)) * 3 + rng.normal(size=p) * 10
    Y = np.tanh(X @ rng.normal(size=(p, q))) + rng.normal(size=(n, q)) * 0.5 + 4
    got = transfer.linear_cka(X, Y)
    assert isinstance(got, float) and 0.0 <= got <= 1.0 + 1e-12
    assert abs(got - torch_cka(X, Y)) < 1e-10


def test_linear_cka_invariances():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(40, 6)), rng.normal(size=(40, 9))
    rotation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    base = transfer.linear_cka(X, Y)
    assert abs(transfer.linear_cka(X, X) - 1.0) < 1e-12
    assert abs(transfer.linear_cka(7.0 * X @ rotation + 3.0, Y) - base) < 1e-12
    assert abs(transfer.linear_cka(Y, X) - base) < 1e-12
    stretched = X * np.array([1, 1, 1, 1, 1, 10.0])  # not isotropic: CKA changes
    assert abs(transfer.linear_cka(stretched, Y) - base) > 1e-3


def test_linear_cka_is_pure():
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(5, 3)) + 2, rng.normal(size=(5, 2))
    before = X.copy(), Y.copy()
    transfer.linear_cka(X, Y)
    np.testing.assert_array_equal(X, before[0])
    np.testing.assert_array_equal(Y, before[1])


@pytest.mark.parametrize(
    "X,Y,message",
    [
        (np.zeros((5, 2)) + 1, np.ones((5, 3)), "X is the same for every example"),
        (np.arange(10.0).reshape(5, 2), np.ones((5, 3)), "Y is the same for every example"),
        (np.ones((5, 2)), np.ones((4, 2)), "X and Y must hold the same examples"),
        (np.ones(5), np.ones((5, 2)), r"X must have shape \(n, features\)"),
        (np.ones((1, 2)), np.ones((1, 2)), "n >= 2"),
    ],
)
def test_linear_cka_rejects_bad_input(X, Y, message):
    with pytest.raises(ValueError, match=message):
        transfer.linear_cka(X, Y)


# --- PyTorch helpers --------------------------------------------------------------------------


def blocks_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        OrderedDict(
            block1=torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()),
            block2=torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU()),
            head=torch.nn.Linear(6, 3),
        )
    )


def test_freeze_blocks_stops_exactly_the_first_k_blocks_from_training():
    model = transfer.freeze_blocks(blocks_model(), 1)
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True, True, True]
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    F.cross_entropy(model(torch.randn(10, 4)), torch.randint(0, 3, (10,))).backward()
    optimizer.step()
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert changed == [False, False, True, True, True, True]
    assert model.block1[0].weight.grad is None


def test_freeze_blocks_rejects_freezing_the_head():
    with pytest.raises(ValueError, match="k must be at most 2"):
        transfer.freeze_blocks(blocks_model(), 3)
    with pytest.raises(ValueError, match="last one named 'head'"):
        transfer.freeze_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2)), 0)


def test_replace_head_copies_the_body_and_leaves_the_model_alone():
    model = blocks_model()
    head = torch.nn.Linear(6, 5)
    new = transfer.replace_head(model, head)
    assert new.head is head and model.head.out_features == 3
    assert torch.equal(new.block1[0].weight, model.block1[0].weight)
    assert new.block1[0].weight.data_ptr() != model.block1[0].weight.data_ptr()
    assert new(torch.randn(2, 4)).shape == (2, 5)
    with pytest.raises(ValueError, match="head must be a torch.nn.Module"):
        transfer.replace_head(model, "linear")


def test_parameter_groups_give_the_body_its_own_learning_rate():
    model = transfer.freeze_blocks(blocks_model(), 1)
    groups = transfer.parameter_groups(model, lr=0.1, body_lr=0.01)
    assert [group["lr"] for group in groups] == [0.01, 0.1]
    assert [len(group["params"]) for group in groups] == [2, 2]  # block1 is frozen, left out
    body_weight, head_weight = model.block2[0].weight, model.head.weight
    before = body_weight.detach().clone(), head_weight.detach().clone()
    optimizer = torch.optim.SGD(groups, lr=0.1)
    F.cross_entropy(model(torch.randn(10, 4)), torch.randint(0, 3, (10,))).backward()
    optimizer.step()
    torch.testing.assert_close(body_weight, before[0] - 0.01 * body_weight.grad, rtol=0, atol=1e-7)
    torch.testing.assert_close(head_weight, before[1] - 0.1 * head_weight.grad, rtol=0, atol=1e-7)
    transfer.freeze_blocks(model, 2)
    assert [group["lr"] for group in transfer.parameter_groups(model, 0.1, 0.01)] == [0.1]
    with pytest.raises(ValueError, match="body_lr must be in"):
        transfer.parameter_groups(model, 0.1, -0.01)


def test_features_returns_the_named_layers_output():
    model = blocks_model()
    model.train()
    X = np.random.default_rng(5).normal(size=(7, 4))
    got = transfer.features(model, X, "block2")
    with torch.no_grad():
        want = model.block2(model.block1(torch.tensor(X, dtype=torch.float32))).double().numpy()
    assert got.dtype == np.float64 and got.shape == (7, 6)
    np.testing.assert_array_equal(got, want)
    assert model.training
    assert transfer.features(model, X, "block1.0").shape == (7, 8)
    assert not model.block2._forward_hooks
    with pytest.raises(ValueError, match="layer must name a submodule"):
        transfer.features(model, X, "block3")


def test_the_module_does_not_import_torch_for_the_exercises():
    import subprocess
    import sys

    code = "import sys, nnopt.transfer, nnopt.exercises; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
