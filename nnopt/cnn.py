r"""Convolution and max pooling, forward and backward, in NumPy float64 (chapter 3).

Shapes follow PyTorch: images ``x`` are ``(N, C, H, W)`` (batch, channels, height,
width), kernels ``w`` are ``(F, C, KH, KW)`` (filters, input channels, kernel height
and width). ``stride``, ``padding`` and ``kernel_size`` are an int or a pair
``(along H, along W)``. Every output dimension is

.. math:: \Bigl\lfloor \frac{H + 2p - k}{s} \Bigr\rfloor + 1 .

``conv2d`` is computed as one matrix product after :func:`im2col` lowers the input
to a matrix of patches; the backward pass uses the same lowering and its adjoint,
:func:`col2im`. All functions are pure (they never modify their inputs) and match
the PyTorch function named in their docstrings, which the tests use as the oracle.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _validate


def _pair(name, value, low):
    """``value`` (an int or a pair of ints, each at least ``low``) as a pair of ints."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(_validate.integer(name, v, low=low) for v in values)


def _images(name, value):
    result = _validate.array(name, value)
    if result.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {result.shape}")
    return result


def output_size(size, kernel_size, stride=1, padding=0):
    r"""Positions of a window of ``kernel_size`` along ``size`` inputs: :math:`\lfloor (n + 2p - k)/s \rfloor + 1`.

    Returns 0 when the window does not fit into the padded input.
    """
    size = _validate.integer("size", size)
    kernel_size = _validate.integer("kernel_size", kernel_size, low=1)
    stride = _validate.integer("stride", stride, low=1)
    padding = _validate.integer("padding", padding)
    room = size + 2 * padding - kernel_size
    return room // stride + 1 if room >= 0 else 0


def _output_shape(x_shape, kernel, stride, padding, kernel_name):
    """``(OH, OW)``, or a ValueError naming ``kernel_name`` when the kernel does not fit."""
    sizes = tuple(output_size(n, k, s, p) for n, k, s, p in zip(x_shape[2:], kernel, stride, padding))
    if 0 in sizes:
        padded = tuple(n + 2 * p for n, p in zip(x_shape[2:], padding))
        raise ValueError(f"{kernel_name} {kernel} is larger than the padded input {padded}")
    return sizes


def _windows(x, kernel, stride):
    """The windows of ``x`` as a read-only view of shape ``(N, C, OH, OW, KH, KW)``."""
    windows = sliding_window_view(x, kernel, axis=(2, 3))
    return windows[:, :, :: stride[0], :: stride[1]]


def _pad(x, padding):
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def im2col(x, kernel_size, stride=1, padding=0):
    r"""Lower ``x`` to its patches: one column per output position, one row per weight.

    .. math:: \mathrm{cols}[n,\ (c, i, j),\ (u, v)] = x_{\text{padded}}[n, c, s_h u + i, s_w v + j]

    ``x`` is ``(N, C, H, W)``; the result is ``(N, C*KH*KW, OH*OW)``, rows ordered by
    channel, then kernel row, then kernel column (the order of ``w.reshape(F, -1)``),
    columns by output row, then output column. Then a convolution is one matrix
    product, ``w.reshape(F, -1) @ cols``. Matches ``torch.nn.functional.unfold``.
    """
    x = _images("x", x)
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    _output_shape(x.shape, kernel, stride, padding, "kernel_size")
    windows = _windows(_pad(x, padding), kernel, stride)  # (N, C, OH, OW, KH, KW)
    n, c, oh, ow, kh, kw = windows.shape
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)


def col2im(columns, input_size, kernel_size, stride=1, padding=0):
    r"""The adjoint of :func:`im2col`: add every patch back where it came from.

    ``columns`` is ``(N, C*KH*KW, OH*OW)``, ``input_size`` is ``(H, W)``; the result
    is ``(N, C, H, W)``. An input pixel that lies in several patches receives the sum
    of their entries, and padding is cut off, so that
    :math:`\langle \mathrm{im2col}(x), Z\rangle = \langle x, \mathrm{col2im}(Z)\rangle`
    for all ``x`` and ``Z``. Matches ``torch.nn.functional.fold``.
    """
    columns = _validate.array("columns", columns)
    height, width = _pair("input_size", input_size, 1)
    kh, kw = kernel = _pair("kernel_size", kernel_size, 1)
    stride = _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    oh, ow = _output_shape((0, 0, height, width), kernel, stride, padding, "kernel_size")
    if columns.ndim != 3 or columns.shape[1] % (kh * kw) or columns.shape[2] != oh * ow:
        raise ValueError(f"columns must have shape (N, C*{kh}*{kw}, {oh * ow}), got {columns.shape}")
    n, c = columns.shape[0], columns.shape[1] // (kh * kw)
    patches = columns.reshape(n, c, kh, kw, oh, ow)
    (sh, sw), (ph, pw) = stride, padding
    padded = np.zeros((n, c, height + 2 * ph, width + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += patches[:, :, i, j]
    return padded[:, :, ph : ph + height, pw : pw + width]


def _conv_arguments(x, w, stride, padding):
    x = _images("x", x)
    w = _validate.array("w", w)
    if w.ndim != 4 or w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have shape (F, C={x.shape[1]}, KH, KW) to match x {x.shape}, got {w.shape}")
    stride = _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    out = _output_shape(x.shape, w.shape[2:], stride, padding, "the kernel of w")
    return x, w, stride, padding, out


def conv2d(x, w, b=None, stride=1, padding=0):
    r"""A convolutional layer's output, as PyTorch defines it (a cross-correlation: the kernel is not flipped).

    .. math:: y[n, f, u, v] = b_f + \sum_{c=0}^{C-1}\sum_{i=0}^{KH-1}\sum_{j=0}^{KW-1}
              w[f, c, i, j]\; x_{\text{padded}}[n, c,\ s_h u + i,\ s_w v + j]

    ``x`` is ``(N, C, H, W)``, ``w`` ``(F, C, KH, KW)``, ``b`` ``(F,)`` or None; ``x`` is
    padded with zeros. Returns ``y`` of shape ``(N, F, OH, OW)``. Computed as one
    matrix product on the lowered input (:func:`im2col`). Matches
    ``torch.nn.functional.conv2d(x, w, b, stride, padding)``.
    """
    x, w, stride, padding, (oh, ow) = _conv_arguments(x, w, stride, padding)
    f = w.shape[0]
    columns = im2col(x, w.shape[2:], stride, padding)  # (N, C*KH*KW, OH*OW)
    y = (w.reshape(f, -1) @ columns).reshape(x.shape[0], f, oh, ow)
    if b is not None:
        b = _validate.array("b", b)
        if b.shape != (f,):
            raise ValueError(f"b must have shape ({f},), one bias per filter of w, got {b.shape}")
        y = y + b[None, :, None, None]
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0):
    r"""Gradients of a loss through :func:`conv2d`, given ``dy`` = ∂L/∂y.

    With the lowering :math:`Y_n = W X_n` (``W = w.reshape(F, -1)``,
    :math:`X_n` = ``im2col(x)[n]``, :math:`Y_n` = ``dy[n].reshape(F, -1)``):

    .. math:: \frac{\partial L}{\partial W} = \sum_n \frac{\partial L}{\partial Y_n} X_n^\top,\qquad
              \frac{\partial L}{\partial x} = \mathrm{col2im}\Bigl(W^\top \frac{\partial L}{\partial Y_n}\Bigr),\qquad
              \frac{\partial L}{\partial b_f} = \sum_{n, u, v} dy[n, f, u, v].

    ``dy`` is ``(N, F, OH, OW)``; returns ``(dx, dw, db)`` shaped like ``x``, ``w`` and
    ``(F,)``. Equal to the gradients autograd computes for
    ``torch.nn.functional.conv2d(x, w, b, stride, padding)``.
    """
    x, w, stride, padding, (oh, ow) = _conv_arguments(x, w, stride, padding)
    dy = _validate.array("dy", dy)
    n, f = x.shape[0], w.shape[0]
    if dy.shape != (n, f, oh, ow):
        raise ValueError(f"dy must have the shape of conv2d's output {(n, f, oh, ow)}, got {dy.shape}")
    dy_matrix = dy.reshape(n, f, oh * ow)
    columns = im2col(x, w.shape[2:], stride, padding)
    dw = np.einsum("nfl,nkl->fk", dy_matrix, columns).reshape(w.shape)
    dx = col2im(w.reshape(f, -1).T @ dy_matrix, x.shape[2:], w.shape[2:], stride, padding)
    return dx, dw, dy.sum(axis=(0, 2, 3))


def _pool_arguments(x, kernel_size, stride):
    x = _images("x", x)
    kernel = _pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else _pair("stride", stride, 1)
    out = _output_shape(x.shape, kernel, stride, (0, 0), "kernel_size")
    return x, kernel, stride, out


def _window_argmax(x, kernel, stride):
    """Per window, the flat index of the element PyTorch picks as the maximum.

    The first maximum in row-major order (``np.argmax``); in a window holding NaN,
    the last NaN, as PyTorch's CPU kernel (``val > max || isnan(val)``) does.
    """
    windows = _windows(x, kernel, stride)
    flat = windows.reshape(*windows.shape[:4], -1)
    index = flat.argmax(axis=-1)
    is_nan = np.isnan(flat)
    last_nan = flat.shape[-1] - 1 - is_nan[..., ::-1].argmax(axis=-1)
    return flat, np.where(is_nan.any(axis=-1), last_nan, index)


def max_pool2d(x, kernel_size=2, stride=None):
    r"""The maximum over each window: :math:`y[n, c, u, v] = \max_{i<KH,\ j<KW} x[n, c, s_h u + i, s_w v + j]`.

    ``x`` is ``(N, C, H, W)``; ``stride`` defaults to ``kernel_size``; windows that
    do not fit are dropped (no padding, ``ceil_mode=False``). Returns
    ``(N, C, OH, OW)``. Matches ``torch.nn.functional.max_pool2d(x, kernel_size, stride)``.
    """
    x, kernel, stride, _ = _pool_arguments(x, kernel_size, stride)
    flat, index = _window_argmax(x, kernel, stride)
    return np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]


def max_pool2d_backward(dy, x, kernel_size=2, stride=None):
    r"""∂L/∂x through :func:`max_pool2d`, given ``dy`` = ∂L/∂y.

    Each window sends its ``dy`` to the one input its maximum came from; on ties,
    to the first maximum in row-major order (PyTorch's choice). Where windows
    overlap (``stride < kernel_size``), an input collects the sum over the windows
    it wins. ``dy`` is ``(N, C, OH, OW)``; returns ``dx`` of the shape of ``x``.
    Equal to autograd's gradient of ``torch.nn.functional.max_pool2d(x, kernel_size, stride)``.
    """
    x, kernel, stride, (oh, ow) = _pool_arguments(x, kernel_size, stride)
    dy = _validate.array("dy", dy)
    if dy.shape != (*x.shape[:2], oh, ow):
        raise ValueError(f"dy must have the shape of max_pool2d's output {(*x.shape[:2], oh, ow)}, got {dy.shape}")
    _, index = _window_argmax(x, kernel, stride)
    n, c, u, v = np.indices(index.shape, sparse=True)
    rows = stride[0] * u + index // kernel[1]
    cols = stride[1] * v + index % kernel[1]
    dx = np.zeros_like(x)
    np.add.at(dx, (n, c, rows, cols), dy)
    return dx
