"""Cost models for chapter 8: what an operation costs in arithmetic and in memory traffic,
how fast a device can run it (the roofline), and what averaging gradients over workers
costs (the ring all-reduce).

NumPy and the standard library only: the graded exercises use these functions as their
references. What is measured on a device (with PyTorch) is in :mod:`nnopt.gpu`.

Conventions, as in ``torch.utils.flop_counter.FlopCounterMode``: a multiply-add is two
floating-point operations (FLOPs); a bias is not counted. Bytes are the *minimum*
traffic to memory: every input read once and every output written once, each element
``dtype_size`` bytes (4 for float32, 2 for bfloat16 and float16, 8 for float64).
"""

import numpy as np

from . import _validate


def _size(dtype_size):
    return _validate.integer("dtype_size", dtype_size, low=1)


def matmul_cost(m, k, n, dtype_size=4):
    """FLOPs and bytes of the matrix product ``(m, k) @ (k, n)``.

    .. math:: F = 2mkn, \\qquad B = s\\,(mk + kn + mn)

    Each of the ``m * n`` outputs takes ``k`` multiplications and ``k`` additions
    (``torch.utils.flop_counter`` counts ``torch.mm`` this way); the two inputs are read
    and the output written once, ``s = dtype_size`` bytes per element. Returns the
    pair ``(flops, bytes)`` of Python ints.
    """
    m, k, n = (_validate.integer(name, value, low=1) for name, value in (("m", m), ("k", k), ("n", n)))
    size = _size(dtype_size)
    return 2 * m * k * n, size * (m * k + k * n + m * n)


def elementwise_cost(numel, inputs=1, flops_per_element=1, dtype_size=4):
    """FLOPs and bytes of an elementwise operation on tensors of ``numel`` elements.

    .. math:: F = f\\,N, \\qquad B = s\\,(\\text{inputs} + 1)\\,N

    ``torch.mul(x, 2)`` has one input and one FLOP per element; ``x + y`` has two
    inputs. ``FlopCounterMode`` does not count elementwise operations (it reports 0):
    their cost is the memory traffic. Returns ``(flops, bytes)`` as Python ints.
    """
    numel = _validate.integer("numel", numel, low=0)
    inputs = _validate.integer("inputs", inputs, low=0)
    flops_per_element = _validate.integer("flops_per_element", flops_per_element, low=0)
    return flops_per_element * numel, _size(dtype_size) * (inputs + 1) * numel


def conv2d_output_size(size, kernel, stride=1, padding=0):
    """The output length ``(size + 2 * padding - kernel) // stride + 1`` of a convolution along one axis."""
    size = _validate.integer("size", size, low=1)
    kernel = _validate.integer("kernel", kernel, low=1)
    stride = _validate.integer("stride", stride, low=1)
    padding = _validate.integer("padding", padding, low=0)
    if size + 2 * padding < kernel:
        raise ValueError(f"kernel {kernel} is larger than the padded input {size + 2 * padding}")
    return (size + 2 * padding - kernel) // stride + 1


def conv2d_cost(input_shape, weight_shape, stride=1, padding=0, dtype_size=4):
    """FLOPs and bytes of ``torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)``.

    ``x`` has shape ``(N, C, H, W)`` and ``w`` shape ``(F, C, KH, KW)``; the output
    ``(N, F, H', W')`` with ``H' = (H + 2p - KH) // stride + 1``. Each output is a dot
    product of length ``C * KH * KW``:

    .. math:: F = 2\\,N F H' W' C K_H K_W, \\qquad B = s\\,(NCHW + FCK_HK_W + NFH'W')

    (the count of ``FlopCounterMode``; the bias, if any, is not counted). Returns
    ``(flops, bytes)`` as Python ints.
    """
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be (N, C, H, W), got {tuple(input_shape)}")
    if len(weight_shape) != 4:
        raise ValueError(f"weight_shape must be (F, C, KH, KW), got {tuple(weight_shape)}")
    batch, channels, height, width = (_validate.integer("input_shape", v, low=1) for v in input_shape)
    filters, weight_channels, kernel_h, kernel_w = (_validate.integer("weight_shape", v, low=1) for v in weight_shape)
    if weight_channels != channels:
        raise ValueError(f"weight_shape has {weight_channels} input channels, input_shape has {channels}")
    out_h = conv2d_output_size(height, kernel_h, stride, padding)
    out_w = conv2d_output_size(width, kernel_w, stride, padding)
    outputs = batch * filters * out_h * out_w
    flops = 2 * outputs * channels * kernel_h * kernel_w
    elements = batch * channels * height * width + filters * channels * kernel_h * kernel_w + outputs
    return flops, _size(dtype_size) * elements


def attainable_flops(intensity, peak_flops, bandwidth):
    """The roofline (Williams, Waterman and Patterson 2009): the highest FLOP/s reachable
    at arithmetic ``intensity`` (FLOPs per byte of memory traffic).

    .. math:: P(I) = \\min(P_{\\text{peak}},\\; I \\cdot \\beta)

    ``peak_flops`` in FLOP/s, ``bandwidth`` β in bytes/s. Below the ridge point
    ``I* = peak_flops / bandwidth`` an operation is memory-bound, above it
    compute-bound. ``intensity`` is a number (a float is returned) or an array (an
    array of the same shape is returned).
    """
    peak_flops = _validate.number("peak_flops", peak_flops, low=0.0)
    bandwidth = _validate.number("bandwidth", bandwidth, low=0.0)
    values = _validate.array("intensity", intensity)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("intensity must be finite and non-negative")
    attainable = np.minimum(peak_flops, values * bandwidth)
    return attainable if values.ndim else float(attainable)


def _chunk_bounds(n, parts):
    """Start and end of each of ``parts`` nearly equal chunks of ``range(n)`` (as ``np.array_split``)."""
    sizes = np.full(parts, n // parts)
    sizes[: n % parts] += 1
    ends = np.cumsum(sizes)
    return list(zip((ends - sizes).tolist(), ends.tolist()))


def ring_allreduce(arrays):
    """Average the rows of ``arrays`` over a simulated ring of workers (Patarasuk and Yuan 2009).

    ``arrays`` has shape ``(P, N)``: row ``p`` is worker ``p``'s array (its gradient).
    Each array is cut into ``P`` chunks (as ``np.array_split``). In the reduce-scatter,
    for steps ``t = 0 .. P-2``, every worker ``i`` sends its chunk ``(i - t) mod P`` to
    worker ``(i + 1) mod P``, which adds it to its own; afterwards worker ``i`` holds the
    full sum of chunk ``(i + 1) mod P``. In the all-gather, for ``t = 0 .. P-2``, worker
    ``i`` sends chunk ``(i + 1 - t) mod P`` on, and the receiver keeps it. Every worker
    divides by ``P``. Each worker sends ``2 (P-1)`` chunks, about

    .. math:: 2\\,\\frac{P-1}{P}\\, N s \\ \\text{bytes}

    (exactly that when ``P`` divides ``N``), whatever the number of workers: this is
    what ``torch.distributed.all_reduce`` (then a division) computes, with NCCL's or
    Gloo's ring. Returns ``(results, bytes_sent)``: ``results`` of the shape and dtype
    of ``arrays``, every row the mean of the rows; ``bytes_sent`` an int64 array of
    shape ``(P,)``.
    """
    arrays = np.asarray(arrays)
    if arrays.ndim != 2 or arrays.shape[0] < 1 or arrays.dtype.kind != "f":
        raise ValueError(f"arrays must be a 2-D float array (workers, elements), got {arrays.dtype} {arrays.shape}")
    workers = arrays.shape[0]
    buffers = arrays.copy()
    bytes_sent = np.zeros(workers, dtype=np.int64)
    chunks = _chunk_bounds(arrays.shape[1], workers)

    def step(chunk_of, combine):
        messages = []
        for worker in range(workers):
            start, end = chunks[chunk_of(worker)]
            messages.append((worker, start, end, buffers[worker, start:end].copy()))
        for worker, start, end, data in messages:  # every worker sends at once, then all receive
            receiver = (worker + 1) % workers
            buffers[receiver, start:end] = combine(buffers[receiver, start:end], data)
            bytes_sent[worker] += data.nbytes

    for t in range(workers - 1):  # reduce-scatter
        step(lambda worker: (worker - t) % workers, lambda own, received: own + received)
    for t in range(workers - 1):  # all-gather
        step(lambda worker: (worker + 1 - t) % workers, lambda own, received: received)
    return buffers / np.asarray(workers, dtype=arrays.dtype), bytes_sent


def allreduce_seconds(nbytes, workers, bandwidth, latency=0.0, algorithm="ring"):
    """Predicted time of an all-reduce of ``nbytes`` per worker (the α-β cost model).

    Sending a message of ``b`` bytes takes ``α + b / β`` (``latency`` α in seconds,
    ``bandwidth`` β in bytes/s of each worker's link; all links work at once).

    * ``"ring"``: ``2 (P-1)`` steps of ``nbytes / P``, so ``2(P-1) α + 2 (P-1)/P · nbytes / β``;
    * ``"all-to-all"``: every worker sends its whole array to each of the ``P-1`` others
      through its one link, so ``(P-1) (α + nbytes / β)``.
    """
    nbytes = _validate.number("nbytes", nbytes, low=0.0)
    workers = _validate.integer("workers", workers, low=1)
    bandwidth = _validate.number("bandwidth", bandwidth, low=0.0)
    latency = _validate.number("latency", latency, low=0.0)
    if bandwidth == 0:
        raise ValueError("bandwidth must be positive")
    if algorithm == "ring":
        return 2 * (workers - 1) * (latency + nbytes / workers / bandwidth)
    if algorithm == "all-to-all":
        return (workers - 1) * (latency + nbytes / bandwidth)
    raise ValueError(f"algorithm must be 'ring' or 'all-to-all', got {algorithm!r}")
