"""Chapter 3 exercises: convolution and max pooling, forward and backward.

The cases are small fixed shapes with fresh random values (and a random number of
input channels), chosen so that every known mistake shows on every seed, and shows
first on a case where the mistaken code still returns an answer (so that the
verdict can name the mistake):

* the first convolution has N = F = output width = 3, so that a bias added along
  the batch axis or along the last axis still gives an output of the right shape;
* the strided convolutions have an even H + 2p - k, where ``(H + 2p - k + 1) // s``
  is one too small;
* most pooling inputs are small integers, so that windows have tied maxima, and
  some pooling windows overlap (stride < kernel_size).

Mistakes are written as a student would write them: loops over the kernel taps or
the pooling windows, with NumPy inside.
"""

import numpy as np

from .. import cnn
from .core import Call, Exercise, Mistake

CHAPTER = "03_cnn"

# (N, H, W, F, KH, KW, stride, padding, bias); C is drawn per case
CONVOLUTIONS = [
    (3, 5, 5, 3, 3, 3, 1, 0, True),
    (2, 7, 9, 4, 3, 3, 1, 1, True),
    (2, 9, 9, 3, 3, 3, 2, 0, False),
    (1, 8, 8, 2, 2, 3, 2, 1, True),
    (2, 6, 5, 3, 1, 1, 1, 0, True),
    (1, 7, 7, 2, 1, 1, 2, 2, False),
    (2, 7, 6, 2, 5, 5, 1, 2, True),
    (2, 1, 12, 3, 1, 5, 1, 0, True),
    (1, 10, 11, 2, 3, 2, 3, 1, False),
]


def _convolution(rng, spec):
    n, h, w, f, kh, kw, stride, padding, bias = spec
    c = int(rng.integers(1, 4))
    x, weights = rng.normal(size=(n, c, h, w)), rng.normal(size=(f, c, kh, kw))
    b = rng.normal(size=f) if bias else None
    label = (
        f"x {x.shape}, w {weights.shape}, stride {stride}, padding {padding}, "
        + ("with bias" if bias else "b=None")
    )
    return x, weights, b, {"stride": stride, "padding": padding}, label


def _conv2d_cases(rng):
    calls = []
    for spec in CONVOLUTIONS:
        x, w, b, settings, label = _convolution(rng, spec)
        calls.append(Call((x, w, b), settings, label))
    return calls


def _conv2d_variant(pad="((0, 0), (0, 0), (p, p), (p, p))", out_h="(xp.shape[2] - KH) // s + 1",
                    out_w="(xp.shape[3] - KW) // s + 1", tap="i, j", bias="y + b[None, :, None, None]"):
    """A student's conv2d (a loop over the kernel taps) with one part written differently."""
    return (
        "def conv2d(x, w, b=None, stride=1, padding=0):\n"
        "    N, C, H, W = x.shape\n"
        "    F, _, KH, KW = w.shape\n"
        "    s, p = stride, padding\n"
        f"    xp = np.pad(x, {pad})\n"
        f"    OH = {out_h}\n"
        f"    OW = {out_w}\n"
        "    y = np.zeros((N, F, OH, OW))\n"
        "    for i in range(KH):\n"
        "        for j in range(KW):\n"
        "            patch = xp[:, :, i:i + s * (OH - 1) + 1:s, j:j + s * (OW - 1) + 1:s]\n"
        f"            y += np.einsum('nchw,fc->nfhw', patch, w[:, :, {tap}])\n"
        "    if b is not None:\n"
        f"        y = {bias}\n"
        "    return y\n"
    )


BIAS_AXIS = (
    "the bias went along the wrong axis: b holds one value per filter, and the filters are "
    "axis 1 of y (N, F, OH, OW), so add b[None, :, None, None] (plain y + b adds it along "
    "the last axis, the output columns)"
)

CONV2D = Exercise(
    chapter=CHAPTER,
    name="conv2d",
    points=3,
    cases=_conv2d_cases,
    reference=cnn.conv2d,
    mistakes=(
        Mistake(
            "flipped_kernel",
            _conv2d_variant(tap="KH - 1 - i, KW - 1 - j"),
            diagnosis="the kernel is flipped: that is the convolution of mathematics, but PyTorch's "
            "conv2d, like other deep-learning libraries', is a cross-correlation, "
            "y[n, f, u, v] = sum of w[f, c, i, j] * x_padded[n, c, s*u + i, s*v + j], with no flip",
        ),
        Mistake(
            "padding_one_side",
            _conv2d_variant(pad="((0, 0), (0, 0), (p, 0), (p, 0))"),
            diagnosis="the input was padded on one side only: padding p adds p rows of zeros at the "
            "top and at the bottom, and p columns at the left and at the right, so the padded "
            "size is H + 2p",
        ),
        Mistake(
            "output_size_off_by_one",
            _conv2d_variant(out_h="(H + 2 * p - KH + 1) // s", out_w="(W + 2 * p - KW + 1) // s"),
            diagnosis="the output size is one too small for stride > 1: the number of window "
            "positions is floor((H + 2p - k) / s) + 1 (the first window, then one per stride "
            "that still fits), not (H + 2p - k + 1) // s",
        ),
        Mistake(
            "bias_missing",
            _conv2d_variant(bias="y"),
            diagnosis="the bias is missing: when b is given, b[f] is added to every output pixel "
            "of filter f, y + b[None, :, None, None]",
        ),
        Mistake("bias_last_axis", _conv2d_variant(bias="y + b"), diagnosis=BIAS_AXIS),
        Mistake("bias_batch_axis", _conv2d_variant(bias="y + b.reshape(-1, 1, 1, 1)"), diagnosis=BIAS_AXIS),
        Mistake(
            "in_place",
            "def conv2d(x, w, b=None, stride=1, padding=0):\n"
            "    from numpy.lib.stride_tricks import sliding_window_view\n"
            "    N, C, H, W = x.shape\n"
            "    F, _, KH, KW = w.shape\n"
            "    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))\n"
            "    windows = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]\n"
            "    OH, OW = windows.shape[2:4]\n"
            "    columns = windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * KH * KW, OH * OW)\n"
            "    w.shape = (F, C * KH * KW)  # flattens the caller's array too\n"
            "    y = (w @ columns).reshape(N, F, OH, OW)\n"
            "    return y if b is None else y + b[None, :, None, None]\n",
            expect="modified its input `w` in place",
        ),
    ),
)


def _conv2d_backward_cases(rng):
    calls = []
    for spec in CONVOLUTIONS:
        x, w, _, settings, label = _convolution(rng, spec)
        y = cnn.conv2d(x, w, **settings)
        calls.append(Call((rng.normal(size=y.shape), x, w), settings, label.replace(", b=None", "").replace(", with bias", "")))
    return calls


def _backward_variant(tap="i, j", dx="dxp[:, :, p:p + H, p:p + W]", dw="dw", db="dy.sum(axis=(0, 2, 3))"):
    """A student's conv2d_backward (a loop over the kernel taps) with one part written differently."""
    return (
        "def conv2d_backward(dy, x, w, stride=1, padding=0):\n"
        "    N, C, H, W = x.shape\n"
        "    F, _, KH, KW = w.shape\n"
        "    OH, OW = dy.shape[2:]\n"
        "    s, p = stride, padding\n"
        "    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))\n"
        "    dxp, dw = np.zeros_like(xp), np.zeros_like(w)\n"
        "    for i in range(KH):\n"
        "        for j in range(KW):\n"
        "            rows, cols = slice(i, i + s * (OH - 1) + 1, s), slice(j, j + s * (OW - 1) + 1, s)\n"
        "            dw[:, :, i, j] = np.einsum('nfhw,nchw->fc', dy, xp[:, :, rows, cols])\n"
        f"            dxp[:, :, rows, cols] += np.einsum('nfhw,fc->nchw', dy, w[:, :, {tap}])\n"
        f"    return {dx}, {dw}, {db}\n"
    )


DW_NOT_SUMMED = (
    "dw was not summed over the batch: every example of the batch uses the same kernel, so "
    "its gradient is the sum of the examples' contributions, dw[f, c, i, j] = sum over n, u, v "
    "of dy[n, f, u, v] * x_padded[n, c, s*u + i, s*v + j] (no mean, no single example)"
)

CONV2D_BACKWARD = Exercise(
    chapter=CHAPTER,
    name="conv2d_backward",
    points=4,
    cases=_conv2d_backward_cases,
    reference=cnn.conv2d_backward,
    mistakes=(
        Mistake(
            "dx_kernel_flipped",
            _backward_variant(tap="KH - 1 - i, KW - 1 - j"),
            diagnosis="dx used the kernel the wrong way round: the input at offset (i, j) of a "
            "window was multiplied by w[f, c, i, j], so it receives dy * w[f, c, i, j]. (Written as "
            "a convolution, dx is dy correlated with the flipped kernel: flip once, not twice.)",
        ),
        Mistake(
            "dx_assigned",
            _backward_variant().replace("dxp[:, :, rows, cols] += ", "dxp[:, :, rows, cols] = "),
            diagnosis="dx was overwritten, not accumulated: an input pixel lies in several windows, "
            "at a different offset (i, j) in each, so its gradient is the sum of what every tap "
            "sends it; add into dx_padded (+=) instead of assigning",
        ),
        Mistake("dw_mean_over_batch", _backward_variant(dw="dw / N"), diagnosis=DW_NOT_SUMMED),
        Mistake(
            "dw_last_example",
            _backward_variant().replace(
                "np.einsum('nfhw,nchw->fc', dy, xp[:, :, rows, cols])",
                "np.einsum('fhw,chw->fc', dy[-1], xp[-1, :, rows, cols])",
            ),
            diagnosis=DW_NOT_SUMMED,
        ),
        Mistake(
            "db_not_summed_over_batch",
            _backward_variant(db="dy.sum(axis=(2, 3))"),
            diagnosis="db was not summed over the batch: each bias b[f] is added to every output "
            "pixel of filter f of every example, so db[f] = dy[:, f].sum(), "
            "db = dy.sum(axis=(0, 2, 3)), of shape (F,)",
        ),
        Mistake(
            "dx_keeps_padding",
            _backward_variant(dx="dxp"),
            diagnosis="dx has the shape of the padded input: the padding is not part of x, so cut "
            "it off, dx = dx_padded[:, :, p:p + H, p:p + W]",
        ),
        Mistake(
            "in_place",
            _backward_variant().replace(
                "    OH, OW = dy.shape[2:]\n",
                "    OH, OW = dy.shape[2:]\n    dy.shape = (N, F, OH * OW)  # reshapes the caller's array too\n"
                "    dy = dy.reshape(N, F, OH, OW)\n",
            ),
            expect="modified its input `dy` in place",
        ),
    ),
)

# (N, H, W, kernel_size, stride, tied values); stride None is left to the default
POOLS = [
    (2, 6, 6, 2, None, True),
    (2, 7, 9, 2, None, True),
    (1, 9, 9, 3, 2, True),
    (2, 6, 7, 3, 1, True),
    (1, 5, 8, 2, 1, False),
    (2, 8, 8, 3, 3, False),
    (1, 7, 7, 3, 1, False),
]


def _pool_input(rng, spec):
    n, h, w, kernel_size, stride, tied = spec
    c = int(rng.integers(1, 4))
    x = rng.integers(0, 3, size=(n, c, h, w)).astype(np.float64) if tied else rng.normal(size=(n, c, h, w))
    settings = {"kernel_size": kernel_size} | ({} if stride is None else {"stride": stride})
    label = f"x {x.shape}, kernel_size {kernel_size}, stride {'default' if stride is None else stride}"
    return x, settings, label + (", tied maxima" if tied else "")


def _max_pool2d_cases(rng):
    calls = []
    for spec in POOLS:
        x, settings, label = _pool_input(rng, spec)
        calls.append(Call((x,), settings, label))
    return calls


def _pool_variant(stride="kernel_size if stride is None else stride", out_h="(H - k) // s + 1",
                  out_w="(W - k) // s + 1"):
    """A student's max_pool2d (a loop over the windows) with one part written differently."""
    return (
        "def max_pool2d(x, kernel_size=2, stride=None):\n"
        f"    k, s = kernel_size, {stride}\n"
        "    N, C, H, W = x.shape\n"
        f"    OH, OW = {out_h}, {out_w}\n"
        "    y = np.zeros((N, C, OH, OW))\n"
        "    for a in range(OH):\n"
        "        for b in range(OW):\n"
        "            y[:, :, a, b] = x[:, :, a * s:a * s + k, b * s:b * s + k].max(axis=(2, 3))\n"
        "    return y\n"
    )


DEFAULT_STRIDE = (
    "stride=None means stride = kernel_size (windows side by side, as in PyTorch), not stride 1"
)

MAX_POOL2D = Exercise(
    chapter=CHAPTER,
    name="max_pool2d",
    points=2,
    cases=_max_pool2d_cases,
    reference=cnn.max_pool2d,
    mistakes=(
        Mistake(
            "default_stride_one",
            _pool_variant(stride="1 if stride is None else stride"),
            diagnosis=DEFAULT_STRIDE,
        ),
        Mistake(
            "stride_ignored",
            _pool_variant(stride="kernel_size"),
            diagnosis="the stride argument was ignored: windows start every `stride` pixels, and only "
            "stride=None means stride = kernel_size",
        ),
        Mistake(
            "ceil_mode",
            _pool_variant(out_h="-(-(H - k) // s) + 1", out_w="-(-(W - k) // s) + 1"),
            diagnosis="windows that do not fit were kept, cut short: PyTorch's default "
            "(ceil_mode=False) drops them, so OH = floor((H - k) / s) + 1",
        ),
    ),
)


def _max_pool2d_backward_cases(rng):
    calls = []
    for spec in POOLS:
        x, settings, label = _pool_input(rng, spec)
        y = cnn.max_pool2d(x, **settings)
        calls.append(Call((rng.normal(size=y.shape), x), settings, label))
    return calls


def _pool_backward_variant(route):
    """A student's max_pool2d_backward: ``route`` sends the gradient of window (a, b) into dx."""
    return (
        "def max_pool2d_backward(dy, x, kernel_size=2, stride=None):\n"
        "    k = kernel_size\n"
        "    s = kernel_size if stride is None else stride\n"
        "    N, C, OH, OW = dy.shape\n"
        "    n, c = np.indices((N, C))\n"
        "    dx = np.zeros_like(x)\n"
        "    for a in range(OH):\n"
        "        for b in range(OW):\n"
        "            window = x[:, :, a * s:a * s + k, b * s:b * s + k].reshape(N, C, k * k)\n"
        "            g = dy[:, :, a, b]\n"
        + "".join(f"            {line}\n" for line in route)
        + "    return dx\n"
    )


TIES = (
    "a window with several equal maxima sent its gradient to more than one of them (or shared it); "
    "PyTorch sends it all to one input, the first maximum in row-major order "
    "(np.argmax of the flattened window)"
)

MAX_POOL2D_BACKWARD = Exercise(
    chapter=CHAPTER,
    name="max_pool2d_backward",
    points=3,
    cases=_max_pool2d_backward_cases,
    reference=cnn.max_pool2d_backward,
    mistakes=(
        Mistake(
            "every_position",
            _pool_backward_variant(["dx[:, :, a * s:a * s + k, b * s:b * s + k] += g[:, :, None, None]"]),
            diagnosis="the gradient went to every position of the window: only the maximum reaches "
            "the output (the other inputs can move a little without changing it), so dy goes to "
            "the position of the maximum and the others get 0",
        ),
        Mistake(
            "every_tied_maximum",
            _pool_backward_variant([
                "tied = window == window.max(axis=2, keepdims=True)",
                "dx[:, :, a * s:a * s + k, b * s:b * s + k] += (tied * g[:, :, None]).reshape(N, C, k, k)",
            ]),
            diagnosis=TIES,
        ),
        Mistake(
            "ties_share",
            _pool_backward_variant([
                "tied = window == window.max(axis=2, keepdims=True)",
                "share = tied / tied.sum(axis=2, keepdims=True)",
                "dx[:, :, a * s:a * s + k, b * s:b * s + k] += (share * g[:, :, None]).reshape(N, C, k, k)",
            ]),
            diagnosis=TIES,
        ),
        Mistake(
            "last_maximum",
            _pool_backward_variant([
                "last = k * k - 1 - window[:, :, ::-1].argmax(axis=2)",
                "dx[n, c, a * s + last // k, b * s + last % k] += g",
            ]),
            diagnosis="on ties the gradient went to the last maximum of the window; PyTorch sends it "
            "to the first one in row-major order (np.argmax of the flattened window)",
        ),
        Mistake(
            "index_transposed",
            _pool_backward_variant([
                "first = window.argmax(axis=2)",
                "dx[n, c, a * s + first % k, b * s + first // k] += g",
            ]),
            diagnosis="the gradient went to the maximum's position with row and column swapped: "
            "the flattened window lists offset (i, j) at index i * k + j, so the row is "
            "index // k and the column index % k",
        ),
        Mistake(
            "default_stride_one",
            _pool_backward_variant([
                "first = window.argmax(axis=2)",
                "dx[n, c, a * s + first // k, b * s + first % k] += g",
            ]).replace("s = kernel_size if stride is None else stride", "s = 1 if stride is None else stride"),
            diagnosis=DEFAULT_STRIDE,
        ),
        Mistake(
            "overlaps_not_added",
            "def max_pool2d_backward(dy, x, kernel_size=2, stride=None):\n"
            "    k = kernel_size\n"
            "    s = kernel_size if stride is None else stride\n"
            "    N, C, OH, OW = dy.shape\n"
            "    rows, cols = np.zeros(dy.shape, dtype=int), np.zeros(dy.shape, dtype=int)\n"
            "    for a in range(OH):\n"
            "        for b in range(OW):\n"
            "            window = x[:, :, a * s:a * s + k, b * s:b * s + k].reshape(N, C, k * k)\n"
            "            first = window.argmax(axis=2)\n"
            "            rows[:, :, a, b], cols[:, :, a, b] = a * s + first // k, b * s + first % k\n"
            "    n, c = np.indices((N, C, 1, 1), sparse=True)[:2]\n"
            "    dx = np.zeros_like(x)\n"
            "    dx[n, c, rows, cols] += dy  # a repeated index is written once, not added up\n"
            "    return dx\n",
            diagnosis="where windows overlap (stride < kernel_size), an input that is the maximum of "
            "several windows must receive the sum of their gradients; dx[index] += g adds only once "
            "when an index repeats (use np.add.at, or a loop over the windows)",
        ),
        Mistake(
            "in_place",
            _pool_backward_variant([
                "first = window.argmax(axis=2)",
                "dx[n, c, a * s + first // k, b * s + first % k] += g",
            ]).replace("dx = np.zeros_like(x)", "dx = x  # the gradient buffer is the caller's x\n    dx[...] = 0.0"),
            expect="modified its input `x` in place",
        ),
    ),
)

EXERCISES = (CONV2D, CONV2D_BACKWARD, MAX_POOL2D, MAX_POOL2D_BACKWARD)
