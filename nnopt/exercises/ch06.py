"""Chapter 6 exercises: quantization parameters, quantize, dequantize, an integer-only linear layer.

Every case set holds the inputs that separate the known mistakes on every seed: ranges of
one sign only (the range must include 0), an all-zero range (the scale's floor), exact half
steps with odd and even zero points (round half to even, and where the zero point is
added), a zero point three quarters of a step above a code (truncation), values outside
the range (clamping), ``uint8`` codes below their zero point (wrap-around), and layers
with a power-of-two multiplier, where the requantization meets exact halves. The first case
of each set is an ordinary one, so that most mistakes fail there, where their answers
differ most.
"""

import numpy as np

from .. import quant
from .core import Call, Exercise, Mistake

CHAPTER = "06_quantization"


def _magnitude(rng, low=-3, high=3):
    return float(10 ** rng.uniform(low, high))


def _float32(values):
    """Values that float32 holds exactly (so that PyTorch and NumPy see the same inputs)."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


# --- qparams -------------------------------------------------------------------------------------


def _qparams_cases(rng):
    calls = []

    def add(x_min, x_max, bits, label):
        x_min, x_max = (float(v) for v in _float32([x_min, x_max]))
        args = (x_min, x_max) if bits is None else (x_min, x_max, int(bits))
        calls.append(Call(args, label=f"{label}, bits={bits or 8}{' (default)' if bits is None else ''}"))

    m = _magnitude(rng, -1)  # ranges of at least 0.02: above the scale's floor even at 16 bits
    add(-m * rng.uniform(0.2, 1), m * rng.uniform(1, 3), None, "mixed signs")
    add(m * rng.uniform(0.1, 0.5), m * rng.uniform(1, 2), 8, "all positive")
    add(-m * rng.uniform(1, 2), -m * rng.uniform(0.1, 0.5), int(rng.choice([4, 8])), "all negative")
    for bits in rng.choice([2, 3, 4, 6, 12, 16], size=3, replace=False):
        m = _magnitude(rng, -1)
        add(-m * rng.uniform(0.2, 2), m * rng.uniform(0.2, 2), bits, "mixed signs")
    m = _magnitude(rng, -1)
    add(m, m, None, "a constant positive tensor")
    add(-m, -m, 6, "a constant negative tensor")
    steps = 2 * int(rng.integers(1, 30)) + 0.5  # 0.0 half-way between two codes, the lower one even
    step = 2.0 ** int(rng.integers(-8, 4))
    add(-steps * step, (255 - steps) * step, 8, f"a zero point on an exact half step ({steps} steps)")
    steps = int(rng.integers(1, 60)) + 0.75  # 0.0 three quarters of a step above a code: rounds up
    add(-steps * step, (255 - steps) * step, 8, f"a zero point three quarters of a step above a code ({steps} steps)")
    m = _magnitude(rng, -5, -4)
    add(-m, m * rng.uniform(0.5, 2), 16, "a range so small that the scale would fall below its floor")
    add(0.0, 0.0, int(rng.choice([4, 8])), "all zeros (an empty range)")
    return calls


QPARAMS_SIGNATURE = "def qparams(x_min, x_max, bits=8):\n"
QPARAMS_BODY = "    qmin, qmax = 0, 2**bits - 1\n    low, high = min(x_min, 0.0), max(x_max, 0.0)\n"
QPARAMS_SCALE = "    scale = max((high - low) / (qmax - qmin), float(np.finfo(np.float32).eps))\n"
QPARAMS_CLAMPED = "    return scale, int(min(max(zero_point, qmin), qmax))\n"
HALVES = (
    "exact half steps are rounded up (as int(v + 0.5) or np.floor(v + 0.5) do); PyTorch rounds "
    "them to the even neighbour, as np.round and Python's round do, so that rounding errors do "
    "not lean one way on average"
)

QPARAMS = Exercise(
    chapter=CHAPTER,
    name="qparams",
    points=3,
    cases=_qparams_cases,
    reference=quant.qparams,
    mistakes=(
        Mistake(
            "range_without_zero",
            QPARAMS_SIGNATURE + "    qmin, qmax = 0, 2**bits - 1\n    low, high = x_min, x_max\n"
            + QPARAMS_SCALE + "    zero_point = qmin - round(low / scale)\n" + QPARAMS_CLAMPED,
            diagnosis="the range must include 0: widen it to [min(x_min, 0), max(x_max, 0)] first. "
            "Otherwise 0.0 has no exact code, and every exact zero (zero padding, a ReLU output that "
            "is 0, a pruned weight) comes back as a small nonzero number, an error that adds up over "
            "a layer",
        ),
        Mistake(
            "divides_by_2_to_the_bits",
            QPARAMS_SIGNATURE + QPARAMS_BODY
            + "    scale = max((high - low) / 2**bits, float(np.finfo(np.float32).eps))\n"
            "    zero_point = qmin - round(low / scale)\n" + QPARAMS_CLAMPED,
            diagnosis="the scale divides by 2**bits; the codes 0 to 2**bits - 1 have 2**bits - 1 "
            "steps between them, so divide the range by 2**bits - 1 (qmax - qmin)",
        ),
        Mistake(
            "zero_point_not_rounded",
            QPARAMS_SIGNATURE + QPARAMS_BODY + QPARAMS_SCALE
            + "    zero_point = qmin - low / scale\n    return scale, min(max(zero_point, qmin), qmax)\n",
            diagnosis="the zero point must be an integer: round it, qmin - round(x_min / scale). It is "
            "the code of 0.0, and only an integer code makes 0.0 exactly representable",
        ),
        Mistake(
            "zero_point_float_type",
            QPARAMS_SIGNATURE + QPARAMS_BODY + QPARAMS_SCALE
            + "    zero_point = qmin - np.round(low / scale)\n    return scale, np.clip(zero_point, qmin, qmax)\n",
            diagnosis="the zero point has the right value but is a float (np.round returns floats): "
            "return it as an integer, int(...)",
        ),
        Mistake(
            "zero_point_truncated",
            QPARAMS_SIGNATURE + QPARAMS_BODY + QPARAMS_SCALE
            + "    zero_point = qmin - int(low / scale)\n" + QPARAMS_CLAMPED,
            diagnosis="the zero point was truncated (int() or np.floor) instead of rounded: round it to the "
            "nearest code, qmin - round(x_min / scale), halves to even, so that the codes' range is "
            "[x_min, x_max] shifted by at most half a step",
        ),
        Mistake(
            "zero_point_sign",
            QPARAMS_SIGNATURE + QPARAMS_BODY + QPARAMS_SCALE
            + "    zero_point = qmin + round(low / scale)\n" + QPARAMS_CLAMPED,
            diagnosis="the zero point has the wrong sign: it is the code of 0.0, qmin - round(x_min / scale), "
            "which is positive when x_min is negative",
        ),
        Mistake(
            "round_half_up",
            QPARAMS_SIGNATURE + QPARAMS_BODY + QPARAMS_SCALE
            + "    zero_point = qmin + int(np.floor(-low / scale + 0.5))\n" + QPARAMS_CLAMPED,
            diagnosis="in the zero point, " + HALVES,
        ),
        Mistake(
            "no_scale_floor",
            QPARAMS_SIGNATURE + QPARAMS_BODY
            + "    scale = (high - low) / (qmax - qmin)\n    zero_point = qmin - round(low / scale)\n"
            + QPARAMS_CLAMPED,
            diagnosis="the scale has no floor: like PyTorch, never return a scale below float32's "
            "machine epsilon, max(scale, np.finfo(np.float32).eps); for an all-zero tensor the range "
            "is empty and the scale would be 0",
        ),
    ),
)

# --- quantize ------------------------------------------------------------------------------------


def _quantize_cases(rng):
    calls = []

    def add(x, scale, zero_point, label, qmin=None, qmax=None):
        kwargs = {} if qmin is None else {"qmin": int(qmin), "qmax": int(qmax)}
        limits = f"[{qmin}, {qmax}]" if kwargs else "default [0, 255]"
        calls.append(Call((x, float(scale), int(zero_point)), kwargs, f"{label}, codes {limits}, zero point {zero_point}"))

    shapes = [(7,), (3, 4), (2, 3, 5), (1, 9), (16,)]  # several values: an ordinary first case
    x = (rng.normal(size=shapes[rng.integers(len(shapes))]) + 0.3) * _magnitude(rng)
    add(x, *quant.qparams(x.min(), x.max()), "x with its own min/max range")
    x = rng.normal(size=(4, 6)) * _magnitude(rng)
    scale, zero_point = quant.qparams(0.3 * x.min(), 0.3 * x.max())
    add(x, scale, zero_point, "values outside the range (clipped)", 0, 255)
    x = rng.normal(size=(5, 3)) * _magnitude(rng)
    scale, zero_point = quant.qparams(x.min(), x.max(), bits=4)
    x = np.append(x, [40 * x.max(), 40 * x.min()])  # outliers far outside the 4-bit range
    add(x, scale, zero_point, "4 bits, with outliers", 0, 15)
    x = rng.normal(size=(3, 5)) * _magnitude(rng)
    add(x, np.abs(x).max() / 100, 0, "signed codes", -128, 127)
    for parity in (1, 0):  # exact half steps (a power-of-two scale), odd then even zero point
        step = 2.0 ** int(rng.integers(-6, 4))
        zero_point = 2 * int(rng.integers(20, 100)) + parity
        halves = rng.permutation(np.arange(-12, 12)) + 0.5
        add(halves * step, step, zero_point, "exact half steps")
    x = np.abs(rng.normal(size=6)) * _magnitude(rng)
    add(x, *quant.qparams(0.0, x.max(), bits=3), "all positive, 3 bits", 0, 7)
    return calls


QUANTIZE_SIGNATURE = "def quantize(x, scale, zero_point, qmin=0, qmax=255):\n"


def _quantize_variant(codes="zero_point + np.round(x / scale)", clamp="np.clip({}, qmin, qmax)", cast=".astype(np.int64)"):
    return QUANTIZE_SIGNATURE + f"    return ({clamp.format(codes)}){cast}\n"


QUANTIZE = Exercise(
    chapter=CHAPTER,
    name="quantize",
    points=3,
    cases=_quantize_cases,
    reference=quant.quantize,
    mistakes=(
        Mistake(
            "floor",
            _quantize_variant(codes="zero_point + np.floor(x / scale)"),
            diagnosis="the codes are rounded down (np.floor); round to the nearest code, halves "
            "to even, with np.round: rounding down makes every error negative, a bias of half a step",
        ),
        Mistake(
            "truncated",
            _quantize_variant(codes="zero_point + np.trunc(x / scale)"),
            diagnosis="x / scale was truncated toward 0 (int() or .astype(int) cut off the fraction); round "
            "it to the nearest code, halves to even, with np.round, before converting",
        ),
        Mistake("round_half_up", _quantize_variant(codes="zero_point + np.floor(x / scale + 0.5)"), diagnosis=HALVES),
        Mistake(
            "round_half_away_from_zero",
            _quantize_variant(codes="zero_point + np.sign(x) * np.floor(np.abs(x / scale) + 0.5)"),
            diagnosis="exact half steps are rounded away from 0 (as C's round does); PyTorch rounds them "
            "to the even neighbour, as np.round and Python's round do",
        ),
        Mistake(
            "round_after_zero_point",
            _quantize_variant(codes="np.round(x / scale + zero_point)"),
            diagnosis="x / scale + zero_point was rounded; round x / scale first, then add the integer "
            "zero point. The two differ on exact half steps when the zero point is odd: the rounding "
            "of a real value must not depend on where its zero point is",
        ),
        Mistake(
            "no_clamp",
            _quantize_variant(clamp="{}"),
            diagnosis="the codes are not clamped: values outside the range must saturate at qmin and "
            "qmax (np.clip), or they do not fit in the integer type",
        ),
        Mistake(
            "zero_point_subtracted",
            _quantize_variant(codes="np.round(x / scale) - zero_point"),
            diagnosis="the zero point was subtracted; quantize adds it, q = zero_point + round(x / scale), "
            "and dequantize subtracts it",
        ),
        Mistake(
            "clamped_before_zero_point",
            _quantize_variant(codes="np.clip(np.round(x / scale), qmin, qmax) + zero_point", clamp="{}"),
            diagnosis="round(x / scale) was clamped before the zero point was added; clamp the code itself, "
            "zero_point + round(x / scale), to [qmin, qmax]",
        ),
        Mistake(
            "multiplied_by_scale",
            _quantize_variant(codes="zero_point + np.round(x * scale)"),
            diagnosis="x was multiplied by the scale; divide by it: the scale is the real size of one step",
        ),
        Mistake(
            "fixed_range",
            _quantize_variant(clamp="np.clip({}, 0, 255)"),
            diagnosis="the codes were clamped to [0, 255]; clamp them to the qmin and qmax you are given",
        ),
        Mistake("float_codes", _quantize_variant(cast=""), expect="dtype float64, expected int64"),
    ),
)

# --- dequantize ----------------------------------------------------------------------------------


def _dequantize_cases(rng):
    calls = []

    def add(q, scale, zero_point, label):
        calls.append(Call((q, float(scale), int(zero_point)), label=f"{label}, {q.dtype} codes, zero point {zero_point}"))

    zero_point = int(rng.integers(60, 200))
    q = rng.integers(0, 256, size=(3, 4)).astype(np.uint8)
    q[0, 0] = rng.integers(0, zero_point)  # at least one code below the zero point
    add(q, _magnitude(rng) / 255, zero_point, "codes on both sides of the zero point")
    add(rng.integers(0, 16, size=7), _magnitude(rng) / 15, int(rng.integers(1, 15)), "4-bit codes")
    add(rng.integers(-128, 128, size=(2, 5)).astype(np.int8), _magnitude(rng) / 127.5, 0, "signed codes")
    add(rng.integers(0, 256, size=6).astype(np.uint8), _magnitude(rng) / 255, 0, "zero point 0")
    add(rng.integers(0, 2**12, size=(2, 2, 3)), _magnitude(rng) / 4095, int(rng.integers(0, 4096)), "12-bit codes")
    return calls


DEQUANTIZE_SIGNATURE = "def dequantize(q, scale, zero_point):\n"

DEQUANTIZE = Exercise(
    chapter=CHAPTER,
    name="dequantize",
    points=1,
    cases=_dequantize_cases,
    reference=quant.dequantize,
    mistakes=(
        Mistake(
            "wraps_around",
            DEQUANTIZE_SIGNATURE + "    return scale * (q - zero_point)\n",
            diagnosis="q - zero_point was computed in the codes' own type: for uint8 codes, 3 - 128 wraps "
            "around to 131. Convert first: scale * (q.astype(np.float64) - zero_point)",
        ),
        Mistake(
            "zero_point_added",
            DEQUANTIZE_SIGNATURE + "    return scale * (q.astype(np.float64) + zero_point)\n",
            diagnosis="the zero point was added; dequantize subtracts it: scale * (q - zero_point)",
        ),
        Mistake(
            "divided_by_scale",
            DEQUANTIZE_SIGNATURE + "    return (q.astype(np.float64) - zero_point) / scale\n",
            diagnosis="the codes were divided by the scale; multiply: x = scale * (q - zero_point)",
        ),
        Mistake(
            "zero_point_in_real_units",
            DEQUANTIZE_SIGNATURE + "    return scale * q.astype(np.float64) - zero_point\n",
            diagnosis="the zero point is a code, not a real value: subtract it before scaling, "
            "scale * (q - zero_point)",
        ),
        Mistake(
            "float32",
            DEQUANTIZE_SIGNATURE + "    return (scale * (q.astype(np.float64) - zero_point)).astype(np.float32)\n",
            expect="dtype float32, expected float64",
        ),
    ),
)

# --- the integer-only linear layer ---------------------------------------------------------------


def quantized_layer(rng, n, k, out, per_channel=True, relu=False, narrow=1.0):
    """The arguments of ``integer_linear`` for a random float layer, quantized as a converter would.

    ``x`` (n, k) and ``W`` (out, k) are drawn at random magnitudes (``W`` skewed, so that a
    per-tensor zero point is not 0), then: the input gets ``qparams`` of its range; the
    weights per-channel symmetric codes, or per-tensor affine codes shifted into int8
    (``zero point - 128``); the bias int32 codes at ``x_scale * w_scale``; the output
    ``qparams`` of the float result's range (of ``[0, max |y|]`` with ``relu``, so that negative
    results clamp to the code of 0.0), times ``narrow`` (below 1, results beyond the range
    saturate); ``multiplier, shift`` from ``x_scale * w_scale / y_scale``.
    Returns ``(arguments, y, y_scale)``, ``y`` the float layer applied to the dequantized codes.
    """
    x = (rng.normal(size=(n, k)) + 0.2) * _magnitude(rng)
    x_scale, x_zero_point = quant.qparams(x.min(), x.max())
    q_x = quant.quantize(x, x_scale, x_zero_point).astype(np.uint8)
    w_zero_point = 0
    while True:  # per tensor: a skewed weight range whose zero point is not 0 after the shift into int8
        w = (rng.normal(size=(out, k)) + 0.4) * 10 ** rng.uniform(-2, 1)
        if per_channel:
            w_scale = quant.quantize_symmetric(w, axis=0)[1]
            q_w = np.stack([quant.quantize(row, scale, 0, -128, 127) for row, scale in zip(w, w_scale)])
            break
        w_scale, unsigned_zero_point = quant.qparams(w.min(), w.max())
        w_zero_point = unsigned_zero_point - 128
        q_w = quant.quantize(w, w_scale, w_zero_point, -128, 127)
        if w_zero_point != 0:
            break
    q_w = q_w.astype(np.int8)
    w_hat = np.reshape(w_scale, (-1, 1)) * (q_w.astype(np.float64) - w_zero_point)
    x_hat = quant.dequantize(q_x, x_scale, x_zero_point)
    b = 0.5 * rng.normal(size=out) * np.abs(x_hat @ w_hat.T).mean()
    q_bias = quant.quantize_bias(b, x_scale, w_scale)
    y = x_hat @ w_hat.T + b
    low, high = (0.0, np.abs(y).max()) if relu else (y.min(), y.max())
    y_scale, y_zero_point = quant.qparams(narrow * low, narrow * high)
    multiplier, shift = quant.quantize_multiplier(np.broadcast_to(x_scale * np.asarray(w_scale) / y_scale, (out,)))
    arguments = (q_x, q_w, q_bias, int(x_zero_point), int(w_zero_point), int(y_zero_point), multiplier, shift)
    return arguments, y, y_scale


def exact_halves_layer(rng, n=8, k=8, out=12):
    """Arguments of ``integer_linear`` with a power-of-two multiplier, 1/2 to 1/8, and small codes.

    About one output in eight is then an exact half before rounding, and about one in
    sixteen comes out differently when halves are rounded to even instead of up.
    """
    x_zero_point = int(rng.integers(100, 156))
    q_x = (x_zero_point + rng.integers(-12, 13, size=(n, k))).astype(np.uint8)
    w_zero_point = int(rng.integers(-3, 4))
    q_w = rng.integers(-12, 13, size=(out, k)).astype(np.int8)
    q_bias = rng.integers(-50, 51, size=out).astype(np.int32)
    multiplier, shift = quant.quantize_multiplier(np.full(out, 2.0 ** -int(rng.integers(1, 4))))
    return (q_x, q_w, q_bias, x_zero_point, w_zero_point, 128, multiplier, shift)


def _integer_linear_cases(rng):
    calls = []
    layers = [
        ((8, 6, 5), {"per_channel": False}, "per-tensor weights with a zero point"),
        ((3, 5, 4), {}, "per-channel weights"),
        ((5, 8, 6), {"relu": True}, "output range [0, max |y|]: a fused ReLU"),
        ((4, 10, 5), {"narrow": 0.5}, "an output range narrower than the results (saturation)"),
        ((2, 200, 3), {"per_channel": False}, "200 inputs"),
        ((1, 1, 1), {}, "one input, one output"),
    ]
    for (n, k, out), options, label in layers:
        arguments, _, _ = quantized_layer(rng, n, k, out, **options)
        calls.append(Call(arguments, label=f"{label}: q_x {n}x{k}, q_w {out}x{k}"))
    for _ in range(2):
        calls.append(Call(exact_halves_layer(rng), label="a power-of-two multiplier (exact halves): q_x 8x8, q_w 12x8"))
    return calls


INTEGER_LINEAR_SIGNATURE = (
    "def integer_linear(q_x, q_w, q_bias, x_zero_point, w_zero_point, y_zero_point, multiplier, shift):\n"
)
WIDENED = "    x, w = q_x.astype(np.int64), q_w.astype(np.int64)\n"


def _integer_linear_variant(
    accumulator="(x - x_zero_point) @ (w - w_zero_point).T + q_bias",
    scaled="(accumulator * multiplier + (np.int64(1) << (total - 1))) >> total",
    result="np.clip(y_zero_point + scaled, 0, 255).astype(np.uint8)",
    widen=WIDENED,
    total="31 + shift",
):
    """The code of an integer linear layer with one part written differently from the reference."""
    return (
        INTEGER_LINEAR_SIGNATURE
        + widen
        + f"    accumulator = {accumulator}\n"
        + f"    total = {total}\n"
        + f"    scaled = {scaled}\n"
        + f"    return {result}\n"
    )


INTEGER_LINEAR = Exercise(
    chapter=CHAPTER,
    name="integer_linear",
    points=4,
    cases=_integer_linear_cases,
    reference=quant.integer_linear,
    mistakes=(
        Mistake(
            "not_widened",
            _integer_linear_variant(
                widen="    x, w = q_x, q_w\n",
                accumulator="((x - x_zero_point) @ (w - w_zero_point).T + q_bias).astype(np.int64)",
            ),
            diagnosis="the codes were combined in their own 8-bit types: uint8 and int8 arithmetic wraps "
            "around (3 - 128 becomes 131) and their products overflow 16 bits. Convert q_x and q_w to "
            "np.int32 or np.int64 (the accumulator's width) before subtracting the zero points",
        ),
        Mistake(
            "input_zero_point_missing",
            _integer_linear_variant(accumulator="x @ (w - w_zero_point).T + q_bias"),
            diagnosis="the input's zero point is missing: the sum runs over (q_x - x_zero_point) * "
            "(q_w - w_zero_point). Folded, that is the correction term - x_zero_point * q_w.sum(axis=1), "
            "one number per output that a converter computes once with the weights",
        ),
        Mistake(
            "weight_zero_point_missing",
            _integer_linear_variant(accumulator="(x - x_zero_point) @ w.T + q_bias"),
            diagnosis="the weights' zero point is missing: subtract w_zero_point from q_w too (it is 0 "
            "for symmetric weights, not for per-tensor affine ones)",
        ),
        Mistake(
            "bias_missing",
            _integer_linear_variant(accumulator="(x - x_zero_point) @ (w - w_zero_point).T"),
            diagnosis="q_bias was not added: it is an int32 at the accumulator's scale x_scale * w_scale, "
            "and goes into the sum before requantization",
        ),
        Mistake(
            "bias_after_requantization",
            _integer_linear_variant(
                accumulator="(x - x_zero_point) @ (w - w_zero_point).T",
                result="np.clip(y_zero_point + scaled + q_bias, 0, 255).astype(np.uint8)",
            ),
            diagnosis="q_bias was added after requantization; it is at the accumulator's scale "
            "x_scale * w_scale, not the output's: add it to the int32 sum before multiplying",
        ),
        Mistake(
            "truncating_shift",
            _integer_linear_variant(scaled="(accumulator * multiplier) >> total"),
            diagnosis="the right shift alone rounds down (toward minus infinity): add the rounding term "
            "2**(total - 1) before shifting right by total = 31 + shift",
        ),
        Mistake(
            "shift_without_31",
            _integer_linear_variant(total="shift"),
            diagnosis="the right shift must be by t = 31 + shift: multiplier is the Q31 fixed-point number "
            "M0 * 2**31 and M = M0 * 2**(-shift), so M * accumulator = accumulator * multiplier / 2**(31 + shift)",
        ),
        Mistake(
            "output_zero_point_missing",
            _integer_linear_variant(result="np.clip(scaled, 0, 255).astype(np.uint8)"),
            diagnosis="the output's zero point y_zero_point was not added to the requantized value",
        ),
        Mistake(
            "wraps_instead_of_saturating",
            _integer_linear_variant(result="(y_zero_point + scaled).astype(np.uint8)"),
            diagnosis="the result was converted to uint8 without clamping, so values outside [0, 255] wrap "
            "around: saturate first, np.clip(..., 0, 255)",
        ),
        Mistake(
            "float_round_half_even",
            _integer_linear_variant(
                scaled="np.round(accumulator * (multiplier / 2.0**total)).astype(np.int64)"
            ),
            diagnosis="exact halves were rounded to even (np.round in floating point); the fixed-point "
            "requantization rounds them up: (accumulator * multiplier + 2**(total - 1)) >> total",
        ),
        Mistake(
            "round_half_away_from_zero",
            _integer_linear_variant(
                scaled="np.sign(accumulator) * ((np.abs(accumulator) * multiplier + (np.int64(1) << (total - 1))) >> total)"
            ),
            diagnosis="exact halves of negative values were rounded away from 0 (-2.5 became -3, as C's round "
            "does); here every half rounds up, also below 0 "
            "(-2.5 becomes -2): (accumulator * multiplier + 2**(t - 1)) >> t on the signed product",
        ),
        Mistake(
            "int64_result",
            _integer_linear_variant(result="np.clip(y_zero_point + scaled, 0, 255)"),
            expect="dtype int64, expected uint8",
        ),
    ),
)

EXERCISES = (QPARAMS, QUANTIZE, DEQUANTIZE, INTEGER_LINEAR)
