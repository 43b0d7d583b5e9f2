r"""Affine quantization (chapter 6): real numbers to integer codes and back, and integer-only layers.

A real number :math:`x` is stored as an integer code :math:`q` with a *scale* :math:`s > 0`
and an integer *zero point* :math:`z`:

.. math:: q = \operatorname{clamp}\bigl(z + \operatorname{round}(x / s),\ q_{\min},\ q_{\max}\bigr),
          \qquad \hat x = s\,(q - z),

where round rounds half to even. The functions are NumPy (float64 in, float64 or integer
arrays out), pure, and follow PyTorch's conventions so that PyTorch is the oracle in the
tests: the observers of ``torch.ao.quantization`` for the parameters,
``torch.fake_quantize_per_tensor_affine`` and ``torch.fake_quantize_per_channel_affine``
for the codes. The integer-only linear layer follows Jacob et al. (2018), with the
single-rounding fixed-point requantization of TensorFlow Lite's reference kernels.

One helper, :func:`fake_quantized_mlp`, builds a PyTorch model for quantization-aware
training; it imports torch inside, because the exercise registry imports this module
where torch must not be loaded.
"""

import copy
import math

import numpy as np

from . import _validate

# PyTorch's observers never return a scale below float32's machine epsilon (2**-23), so
# that an all-zero tensor still gets a usable scale.
SCALE_FLOOR = float(np.finfo(np.float32).eps)
MIN_BITS, MAX_BITS = 2, 16
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _bits(bits):
    bits = _validate.integer("bits", bits)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"bits must be between {MIN_BITS} and {MAX_BITS}, got {bits}")
    return bits


def _positive(name, value):
    value = _validate.number(name, value, low=-math.inf)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _range(qmin, qmax):
    qmin = _validate.integer("qmin", qmin, low=-(2**31))
    qmax = _validate.integer("qmax", qmax, low=-(2**31))
    if qmin >= qmax:
        raise ValueError(f"qmin must be less than qmax, got qmin={qmin}, qmax={qmax}")
    return qmin, qmax


def _code(name, value, qmin, qmax):
    value = _validate.integer(name, value, low=-(2**63))
    if not qmin <= value <= qmax:
        raise ValueError(f"{name} must be an integer in [{qmin}, {qmax}], got {value}")
    return value


def _finite(name, value):
    array = _validate.array(name, value)
    if np.isnan(array).any():
        raise ValueError(f"{name} must not contain NaN")
    return array


def _integer_array(name, value, dtype=None, ndim=None):
    array = np.array(value)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an array of integer codes, got dtype {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)}, got {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    return array


def signed_range(bits):
    """The codes of a signed ``bits``-bit integer, ``(-2**(bits-1), 2**(bits-1) - 1)``."""
    bits = _bits(bits)
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def qparams(x_min, x_max, bits=8):
    r"""Scale and zero point of asymmetric quantization of ``[x_min, x_max]`` to ``bits`` unsigned bits.

    The range is first widened to include 0, so that 0.0 gets an exact code:
    :math:`a = \min(x_{\min}, 0)`, :math:`b = \max(x_{\max}, 0)`. With
    :math:`q_{\min} = 0`, :math:`q_{\max} = 2^{\text{bits}} - 1`:

    .. math:: s = \max\Bigl(\frac{b - a}{q_{\max} - q_{\min}},\ \epsilon_{32}\Bigr), \qquad
              z = \operatorname{clamp}\bigl(q_{\min} - \operatorname{round}(a / s),\ q_{\min},\ q_{\max}\bigr),

    with round half to even and :math:`\epsilon_{32} = 2^{-23}` (:data:`SCALE_FLOOR`).
    Returns ``(scale, zero_point)`` as a Python float and int. Equal to
    ``torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)`` at 8 bits, and with
    ``quant_min=0, quant_max=2**bits - 1`` at other widths (PyTorch computes in float32).
    """
    bits = _bits(bits)
    x_min = _validate.number("x_min", x_min, low=-math.inf)
    x_max = _validate.number("x_max", x_max, low=-math.inf)
    if x_min > x_max:
        raise ValueError(f"x_min must not exceed x_max, got x_min={x_min} > x_max={x_max}")
    qmin, qmax = 0, 2**bits - 1
    low, high = min(x_min, 0.0), max(x_max, 0.0)
    scale = max((high - low) / (qmax - qmin), SCALE_FLOOR)
    zero_point = qmin - int(np.round(low / scale))
    return scale, min(max(zero_point, qmin), qmax)


def quantize(x, scale, zero_point, qmin=0, qmax=255):
    r"""Integer codes :math:`q = \operatorname{clamp}(z + \operatorname{round}(x / s), q_{\min}, q_{\max})`.

    ``x`` any shape; returns an int64 array of the same shape. Round ``x / scale`` half to
    even (``np.round``, in float64), *then* add the integer zero point, then clamp; as ONNX's
    ``QuantizeLinear``. Equal to the codes of
    ``torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)``
    (``fake / scale + zero_point``) except where :math:`x/s` lies within float32 rounding of
    a half step (PyTorch computes in float32), and to ``torch.quantize_per_tensor`` except
    also on exact half steps with an odd zero point, where that function rounds
    :math:`x/s + z` instead (so that its result depends on the zero point's parity).
    """
    x = _finite("x", x)
    scale = _positive("scale", scale)
    qmin, qmax = _range(qmin, qmax)
    zero_point = _code("zero_point", zero_point, qmin, qmax)
    return np.clip(zero_point + np.round(x / scale), qmin, qmax).astype(np.int64)


def dequantize(q, scale, zero_point):
    r"""Real values :math:`\hat x = s\,(q - z)` of integer codes ``q`` (any integer dtype, any shape).

    The subtraction is done in float64, never in the codes' own type (``uint8`` codes
    below the zero point would wrap around). Returns float64, the shape of ``q``.
    Inverse of :func:`quantize` on the grid; ``torch.dequantize`` for per-tensor affine codes.
    """
    q = _integer_array("q", q)
    scale = _positive("scale", scale)
    zero_point = _validate.integer("zero_point", zero_point, low=-(2**63))
    return scale * (q.astype(np.float64) - zero_point)


def fake_quantize(x, scale, zero_point, qmin=0, qmax=255):
    r"""Quantize and dequantize: :math:`s\,(\operatorname{clamp}(z + \operatorname{round}(x/s), q_{\min}, q_{\max}) - z)`.

    ``x`` any shape, float64 out. Equal to ``torch.fake_quantize_per_tensor_affine``
    (which computes in float32).
    """
    return dequantize(quantize(x, scale, zero_point, qmin, qmax), scale, zero_point)


def quantize_symmetric(w, bits=8, axis=None):
    r"""Symmetric signed quantization of ``w`` (zero point 0): one scale, or one per slice along ``axis``.

    With :math:`q_{\min} = -2^{\text{bits}-1}`, :math:`q_{\max} = 2^{\text{bits}-1} - 1` and
    :math:`m` the largest :math:`|w|` of the whole tensor (``axis=None``, *per tensor*) or of
    each slice :math:`c` along ``axis`` (*per channel*: an output row of a linear layer's
    weight for ``axis=0``):

    .. math:: s = \max\Bigl(\frac{m}{(q_{\max} - q_{\min})/2},\ \epsilon_{32}\Bigr), \qquad
              q = \operatorname{clamp}(\operatorname{round}(w / s), q_{\min}, q_{\max}).

    Returns ``(q, scale)``: int64 codes shaped like ``w``, and a float (per tensor) or a
    float64 array of shape ``(w.shape[axis],)``. Equal to PyTorch's observers with
    ``dtype=torch.qint8`` (``quant_min, quant_max`` as above at other widths):
    ``MinMaxObserver(qscheme=torch.per_tensor_symmetric)`` and
    ``PerChannelMinMaxObserver(ch_axis=axis, qscheme=torch.per_channel_symmetric)``, with
    ``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine``. Note PyTorch's
    divisor :math:`(q_{\max} - q_{\min})/2 = 127.5` at 8 bits: the largest weight lands on the
    half step 127.5, rounds to 128 and is clamped to 127.
    """
    w = _finite("w", w)
    bits = _bits(bits)
    if w.size == 0:
        raise ValueError(f"w must not be empty, got shape {w.shape}")
    qmin, qmax = signed_range(bits)
    if axis is None:
        scale = max(float(np.abs(w).max()) / ((qmax - qmin) / 2), SCALE_FLOOR)
        return np.clip(np.round(w / scale), qmin, qmax).astype(np.int64), scale
    axis = _validate.integer("axis", axis, low=-w.ndim)
    if axis >= w.ndim:
        raise ValueError(f"axis must be less than w.ndim = {w.ndim}, got {axis}")
    axis %= w.ndim
    others = tuple(i for i in range(w.ndim) if i != axis)
    scales = np.maximum(np.abs(w).max(axis=others) / ((qmax - qmin) / 2), SCALE_FLOOR)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), qmin, qmax).astype(np.int64)
    return q, scales


def quantize_multiplier(real_multiplier):
    r"""The fixed-point form of a positive real multiplier :math:`M`: ``(multiplier, shift)``.

    :math:`M = M_0\, 2^{-\text{shift}}` with :math:`M_0 \in [\tfrac12, 1)`, stored as the
    Q31 integer :math:`\text{multiplier} = \operatorname{round}(M_0\, 2^{31}) \in [2^{30}, 2^{31})`,
    so that :math:`M \approx \text{multiplier}\cdot 2^{-(31 + \text{shift})}` with a relative
    error below :math:`2^{-31}`. ``real_multiplier`` a positive number or array; returns two
    int64 arrays of its shape. As TensorFlow Lite's ``QuantizeMultiplier`` (whose shift has
    the opposite sign). Raises ``ValueError`` when ``31 + shift`` falls outside ``[1, 62]``.
    """
    real = _finite("real_multiplier", real_multiplier)
    if not (np.all(np.isfinite(real)) and np.all(real > 0)):
        raise ValueError("real_multiplier must be positive and finite")
    fraction, exponent = np.frexp(real)  # real = fraction * 2**exponent, fraction in [0.5, 1)
    multiplier = np.round(fraction * 2.0**31).astype(np.int64)
    carried = multiplier == 2**31  # fraction rounded up to 1: use 2**30 and one more power of 2
    multiplier = np.where(carried, 2**30, multiplier)
    shift = -(exponent.astype(np.int64) + carried)
    if np.any(shift < -30) or np.any(shift > 31):
        raise ValueError(f"real_multiplier must be between 2**-32 and 2**30, got {real.min():g} to {real.max():g}")
    return multiplier, shift


def quantize_bias(bias, x_scale, w_scale):
    r"""The bias as int32 codes at the accumulator's scale :math:`s_x s_w` with zero point 0.

    :math:`q_b = \operatorname{round}(b / (s_x s_w))`; ``bias`` of shape ``(out,)``,
    ``w_scale`` a number or one scale per output channel. Returns int32 of shape ``(out,)``.
    """
    bias = _finite("bias", bias)
    x_scale = _positive("x_scale", x_scale)
    w_scale = _finite("w_scale", w_scale)
    if np.any(w_scale <= 0):
        raise ValueError("w_scale must be positive")
    codes = np.round(bias / (x_scale * w_scale))
    if np.any(codes < INT32_MIN) or np.any(codes > INT32_MAX):
        raise ValueError("bias is too large for int32 codes at scale x_scale * w_scale")
    return codes.astype(np.int32)


def integer_accumulator(q_x, q_w, q_bias, x_zero_point, w_zero_point):
    r"""The int32 accumulator of a quantized linear layer, with the zero points folded in.

    With :math:`K` inputs, :math:`\sum_k (q_{x,nk} - z_x)(q_{w,ok} - z_w) + q_{b,o}`, computed
    as in Jacob et al. (2018), eq. (7)-(8): one integer matrix product of the raw codes and
    correction terms, two of which depend on one operand only and can be computed once
    (the weights' row sums when the model is converted):

    .. math:: \sum_k q_{x,nk}\,q_{w,ok} \;-\; z_w \sum_k q_{x,nk} \;-\; z_x \sum_k q_{w,ok}
              \;+\; K z_x z_w \;+\; q_{b,o}.

    ``q_x``: uint8 ``(N, K)``; ``q_w``: int8 ``(out, K)``; ``q_bias``: int32 ``(out,)``;
    ``x_zero_point`` in [0, 255], ``w_zero_point`` in [-128, 127]. Returns an int64 array
    ``(N, out)`` whose values fit in int32 (else ``ValueError``: the kernel's int32
    accumulator would overflow).
    """
    q_x = _integer_array("q_x", q_x, np.uint8, ndim=2)
    q_w = _integer_array("q_w", q_w, np.int8, ndim=2)
    q_bias = _integer_array("q_bias", q_bias, np.int32, ndim=1)
    if q_w.shape[1] != q_x.shape[1]:
        raise ValueError(f"q_w must have shape (out, {q_x.shape[1]}) to match q_x {q_x.shape}, got {q_w.shape}")
    if q_bias.shape != (q_w.shape[0],):
        raise ValueError(f"q_bias must have shape ({q_w.shape[0]},), got {q_bias.shape}")
    x_zero_point = _code("x_zero_point", x_zero_point, 0, 255)
    w_zero_point = _code("w_zero_point", w_zero_point, -128, 127)
    x, w = q_x.astype(np.int64), q_w.astype(np.int64)
    accumulator = (
        x @ w.T
        - w_zero_point * x.sum(axis=1, keepdims=True)
        - x_zero_point * w.sum(axis=1)
        + x.shape[1] * x_zero_point * w_zero_point
        + q_bias
    )
    if accumulator.size and (accumulator.min() < INT32_MIN or accumulator.max() > INT32_MAX):
        raise ValueError("the accumulator overflows int32: too many inputs K for 8-bit codes")
    return accumulator


def requantize(accumulator, multiplier, shift, y_zero_point, qmin=0, qmax=255):
    r"""uint8 output codes from an int32 accumulator, with integer arithmetic only.

    With the total shift :math:`t = 31 + \text{shift}` (see :func:`quantize_multiplier`),

    .. math:: q_y = \operatorname{clamp}\Bigl(z_y + \bigl\lfloor (a \cdot \text{multiplier} + 2^{t-1}) / 2^{t} \bigr\rfloor,\ q_{\min},\ q_{\max}\Bigr),

    one 64-bit product, one rounding (half up) and an arithmetic right shift, as TensorFlow
    Lite's single-rounding ``MultiplyByQuantizedMultiplier``. ``accumulator`` integer
    ``(N, out)``; ``multiplier`` and ``shift`` integers or arrays of shape ``(out,)`` (one
    per output channel); ``0 <= qmin < qmax <= 255`` (a clamp at the code of 0.0 is a fused
    ReLU). Returns uint8 ``(N, out)``.
    """
    accumulator = _integer_array("accumulator", accumulator).astype(np.int64)
    multiplier = _integer_array("multiplier", multiplier).astype(np.int64)
    shift = _integer_array("shift", shift).astype(np.int64)
    if np.any(multiplier < 2**30) or np.any(multiplier >= 2**31):
        raise ValueError("multiplier must be in [2**30, 2**31) (a Q31 number in [0.5, 1))")
    if np.any(shift < -30) or np.any(shift > 31):
        raise ValueError("shift must be in [-30, 31], so that 31 + shift is in [1, 62]")
    if np.any(accumulator < INT32_MIN) or np.any(accumulator > INT32_MAX):
        raise ValueError("accumulator must hold int32 values")
    qmin, qmax = _range(qmin, qmax)
    if qmin < 0 or qmax > 255:
        raise ValueError(f"qmin and qmax must lie in [0, 255] for uint8 codes, got [{qmin}, {qmax}]")
    y_zero_point = _code("y_zero_point", y_zero_point, qmin, qmax)
    total = 31 + shift
    scaled = (accumulator * multiplier + (np.int64(1) << (total - 1))) >> total
    return np.clip(y_zero_point + scaled, qmin, qmax).astype(np.uint8)


def integer_linear(q_x, q_w, q_bias, x_zero_point, w_zero_point, y_zero_point, multiplier, shift):
    r"""A quantized linear layer in integer arithmetic only: uint8 in, int8 weights, uint8 out.

    :func:`integer_accumulator` (int32 sum with the zero-point terms), then
    :func:`requantize` to :math:`[0, 255]` with the output's zero point, where
    ``multiplier, shift = quantize_multiplier(x_scale * w_scale / y_scale)``. The result is
    within one step of quantizing the float layer :math:`\hat x \hat W^\top + b` directly.
    Shapes: ``q_x (N, K)``, ``q_w (out, K)``, ``q_bias (out,)``, result ``(N, out)``.
    """
    accumulator = integer_accumulator(q_x, q_w, q_bias, x_zero_point, w_zero_point)
    return requantize(accumulator, multiplier, shift, y_zero_point)


def pack_int4(q):
    """Two 4-bit codes per byte: code ``2i`` in the low nibble of byte ``i``, code ``2i+1`` in the high one.

    ``q``: integer codes in [-8, 15] (signed codes are stored in two's complement);
    flattened in C order, padded with one zero code when the count is odd. Returns uint8
    of length ``ceil(q.size / 2)``.
    """
    q = _integer_array("q", q).ravel()
    if q.size and (q.min() < -8 or q.max() > 15):
        raise ValueError(f"q must hold 4-bit codes in [-8, 15], got values in [{q.min()}, {q.max()}]")
    nibbles = (q.astype(np.int64) & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed, count, signed=False):
    """Inverse of :func:`pack_int4`: the first ``count`` codes, int64, signed (two's complement) or not."""
    packed = _integer_array("packed", packed, np.uint8, ndim=1)
    count = _validate.integer("count", count)
    if count > 2 * packed.size:
        raise ValueError(f"count must be at most {2 * packed.size} for {packed.size} bytes, got {count}")
    nibbles = np.empty(2 * packed.size, dtype=np.int64)
    nibbles[0::2], nibbles[1::2] = packed & 0xF, packed >> 4
    codes = nibbles[:count]
    return np.where(codes >= 8, codes - 16, codes) if signed else codes


def fake_quantized_mlp(model, activation_ranges, bits=8, per_channel=True):
    r"""A copy of an MLP whose weights and activations are fake-quantized, for PTQ and QAT.

    ``model`` is a ``torch.nn.Sequential`` of ``Linear`` and ``ReLU`` layers (as
    :func:`nnopt.train.mlp` builds). ``activation_ranges`` holds one ``(low, high)`` per
    ``Linear``: the range of that layer's *input* (the network input, then each hidden
    ReLU output), e.g. min/max or percentiles over calibration data. Each input is
    fake-quantized with :func:`qparams` of its range at ``bits`` bits (unsigned, affine;
    the qparams are fixed). Each weight is fake-quantized at ``bits`` bits from its current
    values at every forward pass, symmetric (:func:`quantize_symmetric`): one scale per output
    channel, or one per tensor. The logits (the last layer's
    output) stay in float, as the int32 accumulator of an integer kernel.

    The fake quantization is PyTorch's ``FakeQuantize`` (weights through
    ``torch.nn.utils.parametrize``), whose backward pass is the straight-through
    estimator: the gradient passes unchanged where the code was not clamped and is 0
    where it was. So the result trains with any optimizer (quantization-aware training),
    and updates the float weights the quantized ones are computed from.
    """
    import torch
    from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver
    from torch.nn.utils import parametrize

    bits = _bits(bits)
    if bits > 8:
        raise ValueError(f"bits must be at most 8 for PyTorch's 8-bit fake-quantize modules, got {bits}")
    linears = [layer for layer in model if isinstance(layer, torch.nn.Linear)]
    if any(not isinstance(layer, (torch.nn.Linear, torch.nn.ReLU)) for layer in model):
        raise ValueError("model must be a torch.nn.Sequential of Linear and ReLU layers")
    if len(activation_ranges) != len(linears):
        raise ValueError(f"activation_ranges must hold one (low, high) per Linear layer ({len(linears)}), got {len(activation_ranges)}")
    qmax = 2**bits - 1
    weight_min, weight_max = signed_range(bits)
    # averaging_constant=1: the observer keeps the current weights' min and max, not a running average
    if per_channel:
        weight_observer = MovingAveragePerChannelMinMaxObserver.with_args(
            averaging_constant=1.0, ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        )
    else:
        weight_observer = MovingAverageMinMaxObserver.with_args(
            averaging_constant=1.0, dtype=torch.qint8, qscheme=torch.per_tensor_symmetric
        )

    def activation_quantizer(low, high):
        scale, zero_point = qparams(low, high, bits)
        quantizer = FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=qmax, dtype=torch.quint8)
        quantizer.disable_observer()
        quantizer.scale.copy_(torch.tensor([scale]))
        quantizer.zero_point.copy_(torch.tensor([zero_point]))
        return quantizer

    layers, ranges = [], iter(activation_ranges)
    for layer in copy.deepcopy(model):
        if isinstance(layer, torch.nn.Linear):
            layers.append(activation_quantizer(*next(ranges)))
            quantizer = FakeQuantize(observer=weight_observer, quant_min=weight_min, quant_max=weight_max)
            parametrize.register_parametrization(layer, "weight", quantizer)
        layers.append(layer)
    return torch.nn.Sequential(*layers)
