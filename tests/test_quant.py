"""nnopt.quant (chapter 6) against PyTorch's observers and fake-quantize functions, and the
integer-only layer against a direct integer reference written here with Python integers.

PyTorch computes in float32 and the references in float64. The data are drawn in float32 so
that both see the same values; a code may then differ by one only where ``x / scale`` lies
within float32 rounding of a half step, and those entries are excluded from exact
comparisons (``near_half``). Exact half steps are tested on their own, with power-of-two
scales where float32 and float64 agree exactly: there the oracle is
``torch.fake_quantize_per_tensor_affine`` (``z + round(x / s)``), which
``torch.quantize_per_tensor`` (``round(x / s + z)``) contradicts for odd zero points.
"""

import numpy as np
import pytest
import torch
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

from nnopt import quant, train
from nnopt.exercises.ch06 import exact_halves_layer, quantized_layer

BITS = [2, 3, 4, 6, 8, 12, 16]
SCALES = [1e-4, 1e-2, 1.0, 1e2, 1e4]


def datasets(rng, magnitude, n=200):
    """float32 data of one magnitude in the shapes that matter: mixed signs, one sign, constant, outliers."""
    normal = rng.normal(size=n) * magnitude
    return {
        "mixed": normal,
        "positive": np.abs(normal) + 0.1 * magnitude,
        "negative": -np.abs(normal) - 0.1 * magnitude,
        "skewed": rng.exponential(size=n) * magnitude - 0.2 * magnitude,
        "outlier": np.append(normal, 40 * magnitude),
        "constant positive": np.full(n, 3.0 * magnitude),
        "constant negative": np.full(n, -3.0 * magnitude),
        "zeros": np.zeros(n),
        "one value": np.array([0.7 * magnitude]),
    }


def float32(values):
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def observer(bits, **kwargs):
    """MinMaxObserver with the unsigned range of ``bits`` (quint8 up to 8 bits, int32 above)."""
    dtype = torch.quint8 if bits <= 8 else torch.int32
    return MinMaxObserver(dtype=dtype, quant_min=0, quant_max=2**bits - 1, **kwargs)


def near_half(x, scale):
    """Entries whose x / scale lies within float32 rounding of a half step (PyTorch may round them either way)."""
    steps = x / scale
    fraction = np.abs(steps - np.floor(steps) - 0.5)
    return fraction < 1e-4 + 8 * np.finfo(np.float32).eps * np.abs(steps)


def torch_codes(x, scale, zero_point, qmin, qmax):
    """The codes of torch.fake_quantize_per_tensor_affine (its output is scale * (q - z) in float32)."""
    fake = torch.fake_quantize_per_tensor_affine(torch.tensor(x, dtype=torch.float32), scale, zero_point, qmin, qmax)
    return np.round(fake.double().numpy() / scale).astype(np.int64) + zero_point


# --- qparams -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("magnitude", SCALES)
def test_qparams_match_min_max_observer(bits, magnitude):
    rng = np.random.default_rng(bits * 1000 + int(np.log10(magnitude)) + 10)
    for name, values in datasets(rng, magnitude).items():
        x = float32(values)
        watcher = observer(bits)
        watcher(torch.tensor(x, dtype=torch.float32))
        torch_scale, torch_zero_point = (t.item() for t in watcher.calculate_qparams())
        scale, zero_point = quant.qparams(x.min(), x.max(), bits)
        assert isinstance(scale, float) and isinstance(zero_point, int), name
        assert scale == pytest.approx(torch_scale, rel=1e-6), name
        assert zero_point == torch_zero_point, name


def test_qparams_include_zero_exactly():
    for x_min, x_max in [(0.5, 2.0), (-3.0, -1.0), (-1.0, 7.0), (2.0, 2.0)]:
        scale, zero_point = quant.qparams(x_min, x_max)
        assert 0 <= zero_point <= 255
        assert quant.fake_quantize(np.array([0.0]), scale, zero_point)[0] == 0.0
    assert quant.qparams(0.5, 2.0) == (2.0 / 255, 0)
    assert quant.qparams(-3.0, -1.0) == (3.0 / 255, 255)
    assert quant.qparams(0.0, 0.0) == (quant.SCALE_FLOOR, 0)


def test_qparams_zero_point_rounds_half_to_even():
    # a range of exactly 255 steps of 1/4 whose lower end sits on a half step
    for steps_below, expected in [(2.5, 2), (3.5, 4), (10.5, 10)]:
        scale, zero_point = quant.qparams(-steps_below / 4, (255 - steps_below) / 4)
        assert scale == 0.25 and zero_point == expected


# --- quantize, dequantize, fake_quantize ---------------------------------------------------------


def ranges_for(x, bits):
    """Test settings for ``x``: its own qparams, a clipped range, and a signed range with zero point 0."""
    qmax = 2**bits - 1
    scale, zero_point = quant.qparams(x.min(), x.max(), bits)
    spread = max(float(np.abs(x).max()), 1e-30)
    clipped, clipped_zero = quant.qparams(-0.3 * spread, 0.2 * spread, bits)
    qmin_s, qmax_s = quant.signed_range(bits)
    symmetric = spread / ((qmax_s - qmin_s) / 2)
    settings = [(scale, zero_point, 0, qmax), (clipped, clipped_zero, 0, qmax), (symmetric, 0, qmin_s, qmax_s)]
    return [(float(np.float32(s)), z, lo, hi) for s, z, lo, hi in settings]


@pytest.mark.parametrize("bits", [b for b in BITS if b <= 16])
@pytest.mark.parametrize("magnitude", SCALES)
def test_quantize_and_fake_quantize_match_torch(bits, magnitude):
    rng = np.random.default_rng(bits * 7919 + int(np.log10(magnitude)) + 10)
    for name, values in datasets(rng, magnitude).items():
        x = float32(values)
        for scale, zero_point, qmin, qmax in ranges_for(x, bits):
            q = quant.quantize(x, scale, zero_point, qmin, qmax)
            assert q.dtype == np.int64 and q.shape == x.shape
            assert q.min() >= qmin and q.max() <= qmax
            clear = ~near_half(x, scale)
            expected = torch_codes(x, scale, zero_point, qmin, qmax)
            np.testing.assert_array_equal(q[clear], expected[clear], err_msg=name)
            assert np.all(np.abs(q - expected) <= 1), name
            fake = torch.fake_quantize_per_tensor_affine(torch.tensor(x, dtype=torch.float32), scale, zero_point, qmin, qmax)
            ours = quant.fake_quantize(x, scale, zero_point, qmin, qmax)
            np.testing.assert_allclose(ours[clear], fake.double().numpy()[clear], rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_quantize_matches_quantize_per_tensor_away_from_half_steps():
    rng = np.random.default_rng(3)
    for magnitude in SCALES:
        x = float32(rng.normal(size=500) * magnitude)
        scale, zero_point = quant.qparams(x.min(), x.max())
        scale = float(np.float32(scale))
        codes = torch.quantize_per_tensor(torch.tensor(x, dtype=torch.float32), scale, zero_point, torch.quint8)
        expected = codes.int_repr().numpy().astype(np.int64)
        clear = ~near_half(x, scale)
        np.testing.assert_array_equal(quant.quantize(x, scale, zero_point)[clear], expected[clear])


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
@pytest.mark.parametrize("zero_point", [0, 1, 2, 3, 127, 128])
def test_exact_half_steps_round_to_even_before_the_zero_point_is_added(zero_point):
    scale = 0.25  # x / scale is exact in float32 and float64
    steps = np.arange(-6, 6) + 0.5
    x = steps * scale
    q = quant.quantize(x, scale, zero_point)
    np.testing.assert_array_equal(q, np.clip(zero_point + np.round(steps), 0, 255))
    np.testing.assert_array_equal(q, torch_codes(x, scale, zero_point, 0, 255))  # the oracle for ties
    per_tensor = torch.quantize_per_tensor(torch.tensor(x, dtype=torch.float32), scale, zero_point, torch.quint8)
    disagrees = not np.array_equal(q, per_tensor.int_repr().numpy())
    assert disagrees == (zero_point % 2 == 1)  # round(x/s + z) moves ties with the parity of z


def test_rounding_error_is_at_most_half_a_step_inside_the_range_and_grows_outside():
    rng = np.random.default_rng(4)
    x = rng.normal(size=10_000)
    scale, zero_point = quant.qparams(-1.0, 1.0, bits=4)
    error = np.abs(quant.fake_quantize(x, scale, zero_point, 0, 15) - x)
    low, high = scale * (0 - zero_point), scale * (15 - zero_point)
    inside = (x >= low) & (x <= high)
    assert error[inside].max() <= scale / 2 + 1e-12
    np.testing.assert_allclose(error[x > high], x[x > high] - high)
    np.testing.assert_allclose(error[x < low], low - x[x < low])


def test_dequantize_does_not_wrap_unsigned_codes():
    q = np.array([0, 3, 128, 255], dtype=np.uint8)
    expected = 0.5 * (np.array([0, 3, 128, 255]) - 128)
    result = quant.dequantize(q, 0.5, 128)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(quant.dequantize(np.array([-128, 0, 127], dtype=np.int8), 2.0, 0), [-256.0, 0.0, 254.0])


def test_fake_quantize_is_dequantize_of_quantize_and_pure():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 5))
    before = x.copy()
    scale, zero_point = quant.qparams(x.min(), x.max())
    q = quant.quantize(x, scale, zero_point)
    np.testing.assert_array_equal(quant.fake_quantize(x, scale, zero_point), quant.dequantize(q, scale, zero_point))
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(q, x)


# --- per-channel weights -------------------------------------------------------------------------


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("shape,axis", [((16, 40), 0), ((40, 16), 1), ((6, 3, 5, 5), 0), ((1, 7), 0), ((16, 40), None), ((5,), None)])
def test_symmetric_matches_torch_observers_and_fake_quantize(bits, shape, axis):
    rng = np.random.default_rng(bits * 31 + len(shape) + (axis or 0))
    per_slice = [1] * len(shape) if axis is None else [-1 if i == axis else 1 for i in range(len(shape))]
    magnitudes = 10.0 ** rng.uniform(-3, 3, size=1 if axis is None else shape[axis])
    w = float32(rng.normal(size=shape) * magnitudes.reshape(per_slice))
    if axis is not None and shape[axis] > 2:
        w[(slice(None),) * axis + (1,)] = 0.0  # a dead channel: its scale is PyTorch's floor
        w[(slice(None),) * axis + (2,)] = np.abs(w[(slice(None),) * axis + (2,)])  # one sign only
    qmin, qmax = quant.signed_range(bits)
    dtype = torch.qint8 if bits <= 8 else torch.int32
    tensor = torch.tensor(w, dtype=torch.float32)
    if axis is None:
        watcher = MinMaxObserver(dtype=dtype, qscheme=torch.per_tensor_symmetric, quant_min=qmin, quant_max=qmax)
    else:
        watcher = PerChannelMinMaxObserver(ch_axis=axis, dtype=dtype, qscheme=torch.per_channel_symmetric, quant_min=qmin, quant_max=qmax)
    watcher(tensor)
    torch_scales, torch_zero_points = watcher.calculate_qparams()
    q, scales = quant.quantize_symmetric(w, bits, axis)
    assert q.dtype == np.int64 and q.shape == w.shape
    if axis is None:
        assert isinstance(scales, float)
        fake = torch.fake_quantize_per_tensor_affine(tensor, torch_scales.item(), 0, qmin, qmax)
    else:
        assert scales.shape == (shape[axis],)
        fake = torch.fake_quantize_per_channel_affine(tensor, torch_scales, torch_zero_points.int(), axis, qmin, qmax)
    np.testing.assert_allclose(scales, torch_scales.double().numpy().reshape(np.shape(scales)), rtol=1e-6)
    assert not torch_zero_points.any()
    torch_scales = torch_scales.double().numpy().reshape(per_slice)
    expected = np.round(fake.double().numpy() / torch_scales).astype(np.int64)
    clear = ~near_half(w, np.reshape(scales, per_slice))
    np.testing.assert_array_equal(q[clear], expected[clear])
    assert np.all(np.abs(q - expected) <= 1)


def test_symmetric_clamps_the_largest_weight_at_8_bits():
    q, scales = quant.quantize_symmetric(np.array([[1.0, -1.0, 0.5]]), axis=0)
    assert scales[0] == 1.0 / 127.5
    np.testing.assert_array_equal(q, [[127, -128, 64]])  # 127.5 rounds to 128, clamped; 63.75 rounds to 64


# --- integer-only linear layer -------------------------------------------------------------------


def integer_reference(q_x, q_w, q_bias, x_zero_point, w_zero_point, y_zero_point, multiplier, shift):
    """The layer written directly, one output at a time, in Python's exact integers."""
    n, k = q_x.shape
    out = np.empty((n, q_w.shape[0]), dtype=np.uint8)
    for i in range(n):
        for o in range(q_w.shape[0]):
            total = sum((int(q_x[i, j]) - x_zero_point) * (int(q_w[o, j]) - w_zero_point) for j in range(k))
            total += int(q_bias[o])
            assert -(2**31) <= total < 2**31
            right = 31 + int(shift[o])
            value = (total * int(multiplier[o]) + (1 << (right - 1))) >> right
            out[i, o] = min(max(y_zero_point + value, 0), 255)
    return out


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("n,k,out", [(1, 1, 1), (3, 7, 5), (8, 64, 10), (2, 300, 3)])
def test_integer_linear_is_bit_exact_and_within_one_step_of_float(per_channel, n, k, out):
    rng = np.random.default_rng(n * 100 + k + out + per_channel)
    for relu in (False, True):
        arguments, y, y_scale = quantized_layer(rng, n, k, out, per_channel, relu)
        result = quant.integer_linear(*arguments)
        assert result.dtype == np.uint8 and result.shape == (n, out)
        np.testing.assert_array_equal(result, integer_reference(*arguments))
        ideal = np.clip(y / y_scale + arguments[5], 0, 255)
        assert np.all(np.abs(result - ideal) <= 1.0)


def test_integer_linear_is_bit_exact_on_exact_halves():
    rng = np.random.default_rng(12)
    for _ in range(5):
        arguments = exact_halves_layer(rng)
        np.testing.assert_array_equal(quant.integer_linear(*arguments), integer_reference(*arguments))


def test_integer_linear_halves_round_up_and_relu_is_a_clamp():
    q_x = np.array([[1, 3, 5, 7, 9]], dtype=np.uint8).T  # five inputs of one feature
    q_w = np.array([[1]], dtype=np.int8)
    multiplier, shift = quant.quantize_multiplier(np.array([0.5]))  # y = acc / 2
    assert (multiplier[0], shift[0]) == (2**30, 0)
    result = quant.integer_linear(q_x, q_w, np.array([-6], dtype=np.int32), 0, 0, 0, multiplier, shift)
    np.testing.assert_array_equal(result[:, 0], [0, 0, 0, 1, 2])  # -2.5, -1.5, -0.5 clamp at 0; 0.5 -> 1; 1.5 -> 2
    accumulator = quant.integer_accumulator(q_x, q_w, np.array([-6], dtype=np.int32), 0, 0)
    np.testing.assert_array_equal(accumulator[:, 0], [-5, -3, -1, 1, 3])


def test_quantize_multiplier_is_accurate_to_31_bits():
    real = np.array([2.0**-20, 1e-4, 0.3, 0.5, 0.999999999, 1.0, 3.7, 1000.0])
    multiplier, shift = quant.quantize_multiplier(real)
    assert np.all((multiplier >= 2**30) & (multiplier < 2**31))
    approximation = multiplier * 2.0 ** (-(31 + shift))
    assert np.all(np.abs(approximation / real - 1) <= 2.0**-31)
    np.testing.assert_array_equal(approximation[[0, 3, 5]], real[[0, 3, 5]])


def test_accumulator_overflow_and_bad_codes_raise():
    with pytest.raises(ValueError, match="overflows int32"):
        quant.integer_accumulator(np.full((1, 70_000), 255, np.uint8), np.full((1, 70_000), -128, np.int8),
                                  np.zeros(1, np.int32), 0, 0)
    with pytest.raises(ValueError, match="q_x must have dtype uint8"):
        quant.integer_accumulator(np.zeros((1, 2), np.int64), np.zeros((1, 2), np.int8), np.zeros(1, np.int32), 0, 0)
    with pytest.raises(ValueError, match="x_zero_point must be an integer in"):
        quant.integer_accumulator(np.zeros((1, 2), np.uint8), np.zeros((1, 2), np.int8), np.zeros(1, np.int32), 256, 0)


# --- packing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("count", [0, 1, 6, 7])
def test_int4_packing_round_trips_in_half_the_bytes(signed, count):
    rng = np.random.default_rng(count)
    low, high = (-8, 7) if signed else (0, 15)
    q = rng.integers(low, high + 1, size=count)
    packed = quant.pack_int4(q)
    assert packed.dtype == np.uint8 and packed.size == (count + 1) // 2
    np.testing.assert_array_equal(quant.unpack_int4(packed, count, signed=signed), q)


# --- the torch helper: fake-quantized MLP, straight-through gradient ----------------------------


def numpy_forward(model, x, ranges, bits, per_channel):
    """The fake-quantized forward pass written with the NumPy references."""
    linears = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
    for index, (layer, (low, high)) in enumerate(zip(linears, ranges)):
        scale, zero_point = quant.qparams(low, high, bits)
        x = quant.fake_quantize(x, scale, zero_point, 0, 2**bits - 1)
        w = layer.weight.detach().double().numpy()
        q, scales = quant.quantize_symmetric(w, bits, axis=0 if per_channel else None)
        w = q * np.reshape(scales, (-1, 1))
        x = x @ w.T + layer.bias.detach().double().numpy()
        if index < len(linears) - 1:
            x = np.maximum(x, 0.0)
    return x


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_fake_quantized_mlp_computes_what_the_references_compute(bits, per_channel):
    model = train.mlp((12, 16, 8, 3), seed=bits)
    with torch.no_grad():  # the largest |w| of a row lands on a half step (PyTorch divides by 127.5 at
        for layer in model[::2]:  # 8 bits); when it is positive, both ways of rounding clamp to the same code
            extreme = layer.weight.gather(1, layer.weight.abs().argmax(dim=1, keepdim=True))
            layer.weight.mul_(extreme.sign())
    x = torch.randn(20, 12, generator=torch.Generator().manual_seed(bits))
    ranges = [(-2.0, 2.5), (0.0, 1.5), (0.0, 0.8)]
    quantized = quant.fake_quantized_mlp(model, ranges, bits, per_channel)
    with torch.no_grad():
        ours = quantized(x).double().numpy()
    expected = numpy_forward(model, x.double().numpy(), ranges, bits, per_channel)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert not torch.nn.utils.parametrize.is_parametrized(model[0])  # the model itself is left alone


def test_fake_quantized_mlp_passes_gradients_straight_through_where_not_clamped():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    quantized = quant.fake_quantized_mlp(model, [(-1.0, 1.0)], bits=4)
    x = torch.linspace(-2, 2, 12).reshape(3, 4).requires_grad_()
    quantized(x).sum().backward()
    scale, zero_point = quant.qparams(-1.0, 1.0, 4)
    unclamped = zero_point + np.round(x.detach().double().numpy() / scale)
    inside = (unclamped >= 0) & (unclamped <= 15)
    weight = quantized[1].weight.detach().numpy()
    expected = np.where(inside, weight.sum(axis=0)[None, :], 0.0)  # d(sum of outputs)/dx_fq, gated by the mask
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
    original = quantized[1].parametrizations.weight.original
    assert original.grad is not None and original.grad.abs().sum() > 0


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: quant.qparams(0.0, 1.0, bits=1), "bits must be between 2 and 16"),
        (lambda: quant.qparams(0.0, 1.0, bits=17), "bits must be between 2 and 16"),
        (lambda: quant.qparams(0.0, 1.0, bits=8.0), "bits must be an integer"),
        (lambda: quant.qparams(2.0, 1.0), "x_min must not exceed x_max"),
        (lambda: quant.qparams(float("nan"), 1.0), "x_min must be a finite real number"),
        (lambda: quant.quantize(np.ones(3), 0.0, 0), "scale must be positive"),
        (lambda: quant.quantize(np.ones(3), -1.0, 0), "scale must be positive"),
        (lambda: quant.quantize(np.ones(3), 0.1, 300), "zero_point must be an integer in"),
        (lambda: quant.quantize(np.ones(3), 0.1, 2.5), "zero_point must be an integer"),
        (lambda: quant.quantize(np.ones(3), 0.1, 0, qmin=5, qmax=5), "qmin must be less than qmax"),
        (lambda: quant.quantize(np.array([np.nan]), 0.1, 0), "x must not contain NaN"),
        (lambda: quant.dequantize(np.ones(3), 0.1, 0), "q must be an array of integer codes"),
        (lambda: quant.dequantize(np.ones(3, int), 0.0, 0), "scale must be positive"),
        (lambda: quant.fake_quantize(np.ones(3), -0.5, 0), "scale must be positive"),
        (lambda: quant.quantize_symmetric(np.ones((2, 2)), bits=20), "bits must be between 2 and 16"),
        (lambda: quant.quantize_symmetric(np.ones((2, 2)), axis=2), "axis must be less than"),
        (lambda: quant.quantize_symmetric(np.ones(0)), "w must not be empty"),
        (lambda: quant.quantize_multiplier(0.0), "real_multiplier must be positive"),
        (lambda: quant.pack_int4(np.array([16])), "q must hold 4-bit codes"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_module_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, nnopt.quant, nnopt.exercises; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
