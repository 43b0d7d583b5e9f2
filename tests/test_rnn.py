"""Chapter 4 reference: the tanh RNN, backpropagation through time and gradient clipping against PyTorch."""

import numpy as np
import pytest
import torch

from nnopt import rnn

# (T, N, D, H): one step, long sequences, a batch of one, H != D both ways
SIZES = [(1, 3, 4, 5), (1, 1, 1, 1), (7, 1, 3, 6), (5, 4, 6, 2), (60, 2, 3, 4), (200, 3, 2, 3), (12, 5, 8, 8)]


def _relative_error(ours, theirs):
    theirs = np.asarray(theirs)
    return np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)


def _problem(rng, T, N, D, H, scale=1.0):
    """Random inputs and weights; ``scale`` multiplies the recurrent weights."""
    return {
        "x": rng.normal(size=(T, N, D)),
        "h0": rng.normal(size=(N, H)) * 0.5,
        "W_ih": rng.normal(size=(H, D)) / np.sqrt(D),
        "W_hh": scale * rng.normal(size=(H, H)) / np.sqrt(H),
        "b_ih": rng.normal(size=H) * 0.1,
        "b_hh": rng.normal(size=H) * 0.1,
    }


def _torch_rnn(problem):
    H, D = problem["W_ih"].shape
    module = torch.nn.RNN(D, H, nonlinearity="tanh").double()
    with torch.no_grad():
        for name, key in [("weight_ih_l0", "W_ih"), ("weight_hh_l0", "W_hh"), ("bias_ih_l0", "b_ih"), ("bias_hh_l0", "b_hh")]:
            getattr(module, name).copy_(torch.from_numpy(problem[key]))
    return module


@pytest.mark.parametrize("size", SIZES, ids=[f"T{T}-N{N}-D{D}-H{H}" for T, N, D, H in SIZES])
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_forward_matches_torch_rnn(size, scale):
    problem = _problem(np.random.default_rng(sum(size)), *size, scale=scale)
    hs, h_last = rnn.rnn_forward(**problem)
    out, h_n = _torch_rnn(problem)(torch.from_numpy(problem["x"]), torch.from_numpy(problem["h0"])[None])
    assert hs.shape == size[:2] + (size[3],) and hs.dtype == np.float64
    assert _relative_error(hs, out.detach().numpy()) < 1e-10
    assert _relative_error(h_last, h_n[0].detach().numpy()) < 1e-10


@pytest.mark.parametrize("size", SIZES, ids=[f"T{T}-N{N}-D{D}-H{H}" for T, N, D, H in SIZES])
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_backward_matches_autograd(size, scale):
    """A gradient on every hidden state: what autograd gives for torch.nn.RNN with grad_outputs = dhs."""
    rng = np.random.default_rng(100 + sum(size))
    problem = _problem(rng, *size, scale=scale)
    module = _torch_rnn(problem)
    x = torch.tensor(problem["x"], requires_grad=True)
    h0 = torch.tensor(problem["h0"][None], requires_grad=True)
    out, _ = module(x, h0)
    dhs = rng.normal(size=out.shape)
    inputs = [x, h0, module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0]
    expected = torch.autograd.grad(out, inputs, grad_outputs=torch.from_numpy(dhs))
    hs, _ = rnn.rnn_forward(**problem)
    ours = rnn.rnn_backward(dhs, problem["x"], problem["h0"], hs, problem["W_ih"], problem["W_hh"])
    names = ["dx", "dh0", "dW_ih", "dW_hh", "db_ih", "db_hh"]
    for name, got, want in zip(names, ours, expected):
        want = want.numpy().reshape(got.shape)
        assert got.dtype == np.float64 and got.shape == want.shape, name
        assert _relative_error(got, want) < 1e-10, name


def test_backward_of_a_loss_on_the_last_state_only():
    """h_last is hs[-1]: a loss on it alone puts its gradient in dhs[-1] and zeros elsewhere."""
    rng = np.random.default_rng(5)
    problem = _problem(rng, 30, 2, 3, 4)
    module = _torch_rnn(problem)
    h0 = torch.tensor(problem["h0"][None], requires_grad=True)
    _, h_n = module(torch.from_numpy(problem["x"]), h0)
    weights = rng.normal(size=4)
    (h_n[0] @ torch.from_numpy(weights)).sum().backward()
    hs, _ = rnn.rnn_forward(**problem)
    dhs = np.zeros_like(hs)
    dhs[-1] = weights
    _, dh0, _, dW_hh, _, _ = rnn.rnn_backward(dhs, problem["x"], problem["h0"], hs, problem["W_ih"], problem["W_hh"])
    assert _relative_error(dh0, h0.grad[0].numpy()) < 1e-10
    assert _relative_error(dW_hh, module.weight_hh_l0.grad.numpy()) < 1e-10


def test_concatenated_form_equals_the_two_matrix_form():
    """The seed article's h_t = tanh(W [h_{t-1}, x_t] + b) is rnn_forward with W = [W_hh, W_ih], b = b_ih + b_hh."""
    problem = _problem(np.random.default_rng(6), 9, 3, 2, 5)
    W = np.hstack([problem["W_hh"], problem["W_ih"]])
    b = problem["b_ih"] + problem["b_hh"]
    h = problem["h0"]
    for x_t in problem["x"]:
        h = np.tanh(np.hstack([h, x_t]) @ W.T + b)
    np.testing.assert_allclose(h, rnn.rnn_forward(**problem)[1], rtol=1e-12, atol=1e-14)


GRAD_SHAPES = [[(3,)], [(2, 3), (3,)], [(4, 5), (5, 5), (5,), (5,)], [(2, 3, 4), (1,), (7, 2)], []]


@pytest.mark.parametrize("shapes", GRAD_SHAPES, ids=[str(len(s)) for s in GRAD_SHAPES])
@pytest.mark.parametrize("ratio", [0.01, 0.5, 0.999, 1.0, 1.5, 100.0, float("inf"), None])
def test_clip_matches_torch_clip_grad_norm_(shapes, ratio):
    """``ratio`` sets max_norm as a multiple of the total norm (None: max_norm = 0; inf: no clipping), on both sides of the limit."""
    rng = np.random.default_rng(len(shapes) + int(1000 * min(ratio or 0, 1e6)))
    grads = [rng.normal(size=shape) * 10 ** rng.uniform(-3, 3) for shape in shapes]
    total = np.sqrt(sum(np.sum(g**2) for g in grads))
    max_norm = 0.0 if ratio is None else ratio if ratio == np.inf else float(ratio * total)
    parameters = [torch.zeros(shape, dtype=torch.float64, requires_grad=True) for shape in shapes]
    for parameter, grad in zip(parameters, grads):
        parameter.grad = torch.from_numpy(grad.copy())
    expected_norm = float(torch.nn.utils.clip_grad_norm_(parameters, max_norm))
    clipped, total_norm = rnn.clip_grad_norm(grads, max_norm)
    assert isinstance(clipped, list) and len(clipped) == len(grads)
    assert isinstance(total_norm, float)
    assert abs(total_norm - expected_norm) <= 1e-10 * max(expected_norm, 1e-300)
    for got, parameter in zip(clipped, parameters):
        assert got.dtype == np.float64 and got.shape == parameter.shape
        np.testing.assert_allclose(got, parameter.grad.numpy(), rtol=1e-10, atol=0)


def test_clip_keeps_the_direction_and_caps_the_norm():
    rng = np.random.default_rng(8)
    grads = [rng.normal(size=(4, 3)), rng.normal(size=7)]
    clipped, total = rnn.clip_grad_norm(grads, 0.25)
    flat, flat_clipped = np.concatenate([g.ravel() for g in grads]), np.concatenate([g.ravel() for g in clipped])
    np.testing.assert_allclose(flat_clipped / np.linalg.norm(flat_clipped), flat / total, rtol=1e-12)
    assert 0.25 * (1 - 1e-5) < np.linalg.norm(flat_clipped) < 0.25


def _forward_arguments(rng):
    return _problem(rng, 4, 2, 3, 5)


def _backward_arguments(rng):
    problem = _problem(rng, 4, 2, 3, 5)
    hs, _ = rnn.rnn_forward(**problem)
    return {"dhs": rng.normal(size=hs.shape), "x": problem["x"], "h0": problem["h0"], "hs": hs,
            "W_ih": problem["W_ih"], "W_hh": problem["W_hh"]}


def _clip_arguments(rng):
    return {"grads": [rng.normal(size=(3, 2)), rng.normal(size=4)], "max_norm": 0.5}


CALLS = [(rnn.rnn_forward, _forward_arguments), (rnn.rnn_backward, _backward_arguments), (rnn.clip_grad_norm, _clip_arguments)]


@pytest.mark.parametrize("function, arguments", CALLS, ids=[f.__name__ for f, _ in CALLS])
def test_inputs_are_not_modified_and_outputs_are_new_float64(function, arguments):
    kwargs = arguments(np.random.default_rng(9))
    before = {k: [np.copy(a) for a in v] if isinstance(v, list) else np.copy(v) for k, v in kwargs.items()}
    result = function(**kwargs)
    outputs = [*result[0], result[1]] if function is rnn.clip_grad_norm else list(result)
    inputs = [a for v in kwargs.values() for a in (v if isinstance(v, list) else [v]) if isinstance(a, np.ndarray)]
    for key, value in kwargs.items():
        np.testing.assert_equal(value, before[key])
    for output in outputs:
        if isinstance(output, np.ndarray):
            assert output.dtype == np.float64
            assert not any(np.shares_memory(output, a) for a in inputs)
    if function is not rnn.clip_grad_norm:  # every output array is its own
        arrays = [o for o in outputs if isinstance(o, np.ndarray)]
        assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])


def test_accepts_integer_and_list_inputs():
    hs, h_last = rnn.rnn_forward([[[1, 0]]], [[0, 0, 0]], np.ones((3, 2), int), np.zeros((3, 3)), [0, 0, 0], [0, 0, 0])
    assert hs.dtype == np.float64 and hs.shape == (1, 1, 3)
    clipped, total = rnn.clip_grad_norm([[3, 4]], 1)
    np.testing.assert_allclose(clipped[0], [0.6, 0.8], rtol=1e-5)
    assert total == 5.0


BAD_FORWARD = [
    ({"x": np.zeros((4, 2))}, "x"),
    ({"x": np.zeros((0, 2, 3))}, "x"),
    ({"h0": np.zeros((2, 4))}, "h0"),
    ({"h0": np.zeros((3, 5))}, "h0"),
    ({"W_ih": np.zeros((3, 5))}, "W_ih"),
    ({"W_ih": np.zeros((5, 2))}, "W_ih"),
    ({"W_hh": np.zeros((5, 4))}, "W_hh"),
    ({"W_hh": np.zeros(5)}, "W_hh"),
    ({"b_ih": np.zeros(4)}, "b_ih"),
    ({"b_hh": np.zeros((5, 1))}, "b_hh"),
    ({"x": "abc"}, "x"),
]


@pytest.mark.parametrize("change, name", BAD_FORWARD, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD_FORWARD)])
def test_forward_names_the_bad_argument(change, name):
    kwargs = dict(_forward_arguments(np.random.default_rng(10)), **change)
    with pytest.raises(ValueError, match=rf"^{name} "):
        rnn.rnn_forward(**kwargs)


BAD_BACKWARD = [
    ({"dhs": np.zeros((3, 2, 5))}, "dhs"),
    ({"hs": np.zeros((4, 2, 4))}, "hs"),
    ({"h0": np.zeros((1, 5))}, "h0"),
    ({"W_ih": np.zeros((5, 4))}, "W_ih"),
    ({"W_hh": np.zeros((4, 4))}, "W_ih"),  # H is read from W_hh, so W_ih's shape no longer fits
    ({"x": np.zeros((4, 2))}, "x"),
]


@pytest.mark.parametrize("change, name", BAD_BACKWARD, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD_BACKWARD)])
def test_backward_names_the_bad_argument(change, name):
    kwargs = dict(_backward_arguments(np.random.default_rng(11)), **change)
    with pytest.raises(ValueError, match=rf"^{name} "):
        rnn.rnn_backward(**kwargs)


@pytest.mark.parametrize(
    "grads, max_norm, name",
    [(np.zeros(3), 1.0, "grads"), ([np.zeros(2)], -1.0, "max_norm"), ([np.zeros(2)], float("nan"), "max_norm"),
     ([np.zeros(2), "a"], 1.0, r"grads\[1\]")],
)
def test_clip_names_the_bad_argument(grads, max_norm, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        rnn.clip_grad_norm(grads, max_norm)
