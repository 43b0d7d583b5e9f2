"""nnopt.cnn (chapter 3) against torch.nn.functional on random inputs, in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnopt import cnn

# (N, C, H, W, F, KH, KW, stride, padding): odd sizes, stride 2, padding 1-2, 1x1 and
# non-square kernels, batch 1, strides and paddings given as pairs
CONVOLUTIONS = [
    (2, 3, 7, 9, 4, 3, 3, 1, 0),
    (1, 1, 8, 8, 1, 3, 3, 1, 1),
    (3, 2, 9, 7, 5, 3, 3, 2, 1),
    (2, 4, 10, 11, 3, 1, 1, 1, 0),
    (1, 3, 7, 7, 2, 1, 1, 2, 2),
    (2, 2, 11, 6, 3, 2, 3, 2, 2),
    (1, 5, 6, 13, 4, 5, 2, (2, 1), (1, 2)),
    (4, 1, 5, 5, 6, 5, 5, 1, 2),
    (2, 3, 9, 9, 2, 4, 4, 3, (0, 1)),
    (1, 2, 1, 40, 3, 1, 5, (1, 2), (0, 2)),  # a 1-D convolution: height 1
]
IDS = [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}F{c[4]}K{c[5]}x{c[6]}s{c[7]}p{c[8]}" for c in CONVOLUTIONS]
TOLERANCE = 1e-10


def close(ours, theirs):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.dtype == np.float64 and ours.shape == theirs.shape
    scale = max(np.max(np.abs(theirs)), 1.0) if theirs.size else 1.0
    assert np.max(np.abs(ours - theirs), initial=0.0) <= TOLERANCE * scale


def convolution_inputs(spec, seed):
    n, c, h, w, f, kh, kw, stride, padding = spec
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c, h, w)), rng.normal(size=(f, c, kh, kw)), rng.normal(size=f), stride, padding


@pytest.mark.parametrize("spec", CONVOLUTIONS, ids=IDS)
def test_im2col_and_col2im_match_unfold_and_fold(spec):
    x, w, _, stride, padding = convolution_inputs(spec, 0)
    kernel = w.shape[2:]
    columns = cnn.im2col(x, kernel, stride, padding)
    close(columns, F.unfold(torch.tensor(x), kernel, padding=padding, stride=stride))
    z = np.random.default_rng(1).normal(size=columns.shape)
    folded = cnn.col2im(z, x.shape[2:], kernel, stride, padding)
    close(folded, F.fold(torch.tensor(z), x.shape[2:], kernel, padding=padding, stride=stride))
    assert np.isclose(np.sum(columns * z), np.sum(x * folded))  # adjoint: <im2col x, z> = <x, col2im z>


@pytest.mark.parametrize("spec", CONVOLUTIONS, ids=IDS)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_torch(spec, with_bias):
    x, w, b, stride, padding = convolution_inputs(spec, 2)
    b = b if with_bias else None
    expected = F.conv2d(torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), stride, padding)
    close(cnn.conv2d(x, w, b, stride, padding), expected)


@pytest.mark.parametrize("spec", CONVOLUTIONS, ids=IDS)
def test_conv2d_backward_matches_autograd(spec):
    x, w, b, stride, padding = convolution_inputs(spec, 3)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(tx, tw, tb, stride, padding)
    dy = np.random.default_rng(4).normal(size=tuple(y.shape))
    y.backward(torch.tensor(dy))
    dx, dw, db = cnn.conv2d_backward(dy, x, w, stride, padding)
    close(dx, tx.grad)
    close(dw, tw.grad)
    close(db, tb.grad)


def test_output_size_is_the_floor_formula():
    assert cnn.output_size(8, 3) == 6
    assert cnn.output_size(8, 3, stride=2) == 3  # floor(5 / 2) + 1: the last row of the input is never read
    assert cnn.output_size(7, 3, stride=2, padding=1) == 4
    assert cnn.output_size(2, 3) == 0


# (N, C, H, W, kernel_size, stride): stride None is kernel_size; stride < kernel overlaps windows
POOLS = [
    (2, 3, 8, 8, 2, None),
    (1, 2, 7, 9, 2, None),
    (2, 1, 9, 9, 3, 2),
    (1, 3, 6, 7, (2, 3), (1, 2)),
    (3, 2, 5, 5, 3, 1),
    (1, 1, 1, 40, (1, 2), None),
    (2, 2, 4, 4, 1, None),
]
POOL_IDS = [f"N{p[0]}C{p[1]}H{p[2]}W{p[3]}k{p[4]}s{p[5]}" for p in POOLS]


def torch_pool(x, kernel_size, stride, dy):
    tx = torch.tensor(x, requires_grad=True)
    y = F.max_pool2d(tx, kernel_size, stride)
    y.backward(torch.tensor(dy))
    return y, tx.grad


@pytest.mark.parametrize("spec", POOLS, ids=POOL_IDS)
@pytest.mark.parametrize("values", ["continuous", "ties"])
def test_max_pool2d_and_backward_match_torch(spec, values):
    n, c, h, w, kernel_size, stride = spec
    rng = np.random.default_rng(5)
    # small integers make ties in almost every window: the gradient must go where PyTorch sends it
    x = rng.normal(size=(n, c, h, w)) if values == "continuous" else rng.integers(0, 3, size=(n, c, h, w)).astype(float)
    y = cnn.max_pool2d(x, kernel_size, stride)
    dy = rng.normal(size=y.shape)
    expected_y, expected_dx = torch_pool(x, kernel_size, stride, dy)
    close(y, expected_y)
    close(cnn.max_pool2d_backward(dy, x, kernel_size, stride), expected_dx)


def test_max_pool2d_ties_go_to_the_first_maximum_row_by_row():
    x = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [0.0, 2.0, 2.0]]]])
    dx = cnn.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, kernel_size=2, stride=1)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 0], [0, 0, 2], [0, 1, 0]])


def test_max_pool2d_propagates_nan_like_torch():
    x = np.array([[[[np.nan, 1.0, np.nan, 0.0, 3.0, 2.0, 3.0, 1.0]]]])
    dy = np.array([[[[1.0, 2.0]]]])
    expected_y, expected_dx = torch_pool(x, (1, 4), None, dy)
    np.testing.assert_array_equal(cnn.max_pool2d(x, (1, 4)), expected_y.detach().numpy())
    np.testing.assert_array_equal(cnn.max_pool2d_backward(dy, x, (1, 4)), expected_dx.numpy())


def test_functions_are_pure():
    x, w, b, stride, padding = convolution_inputs(CONVOLUTIONS[2], 6)
    dy = np.ones((3, 5, 5, 4))
    arrays = [x, w, b, dy]
    copies = [a.copy() for a in arrays]
    cnn.conv2d(x, w, b, stride, padding)
    cnn.conv2d_backward(dy, x, w, stride, padding)
    cnn.max_pool2d(x, 2)
    cnn.max_pool2d_backward(np.ones((3, 2, 4, 3)), x, 2)
    cnn.im2col(x, 3, stride, padding)
    for array, copy in zip(arrays, copies):
        np.testing.assert_array_equal(array, copy)
    assert not np.shares_memory(cnn.max_pool2d(x, 1), x)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: cnn.conv2d(np.ones((3, 8, 8)), np.ones((2, 3, 3, 3))), "x must have shape (N, C, H, W)"),
        (lambda: cnn.conv2d(np.ones((1, 3, 8, 8)), np.ones((2, 2, 3, 3))), "w must have shape (F, C=3"),
        (lambda: cnn.conv2d(np.ones((1, 3, 8, 8)), np.ones((2, 3, 3, 3)), np.ones(3)), "b must have shape (2,)"),
        (lambda: cnn.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 5, 5))), "the kernel of w (5, 5) is larger"),
        (lambda: cnn.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=0), "stride must be at least 1"),
        (lambda: cnn.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=-1), "padding must be at least 0"),
        (lambda: cnn.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=(1, 1, 1)), "padding must be an int or a pair"),
        (lambda: cnn.conv2d_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))), "dy must have the shape"),
        (lambda: cnn.max_pool2d(np.ones((1, 1, 3, 3)), 4), "kernel_size (4, 4) is larger"),
        (lambda: cnn.max_pool2d(np.ones((1, 1, 4, 4)), 2, stride=0.5), "stride must be an integer"),
        (lambda: cnn.max_pool2d_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4))), "dy must have the shape"),
        (lambda: cnn.col2im(np.ones((1, 9, 5)), (4, 4), 3), "columns must have shape (N, C*3*3, 4)"),
    ],
)
def test_bad_arguments_raise_value_errors_that_name_them(call, name):
    with pytest.raises(ValueError) as error:
        call()
    assert name in str(error.value)
