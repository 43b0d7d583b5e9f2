"""Chapter 8 exercises: the cost of a matrix product, the roofline, and the ring all-reduce.

The first two compare with the references in :mod:`nnopt.cost` exactly. The ring
all-reduce has more than one right answer when ``P`` does not divide ``N`` (which
worker sends which of the unequal chunks first is a choice), so a check judges it:
every worker must hold the mean, and the bytes each worker sends must be those of
``2 (P-1)`` chunks of a ring, whichever chunks they are.
"""

import math

import numpy as np

from .. import cost
from .core import Call, Exercise, Mistake

CHAPTER = "08_gpu"

# --- Exercise 1: FLOPs and bytes of a matrix product --------------------------------------------


def _matmul_cases(rng):
    def shape(low, high):
        return int(rng.integers(low, high))

    calls = [Call((shape(2, 300), shape(2, 300), shape(2, 300)), {"dtype_size": int(rng.choice([2, 4]))}, "random shape")]
    calls.append(Call((shape(2, 100), shape(2, 100), shape(2, 100)), label="dtype_size left at its default, 4"))
    calls.append(Call((1024, 1024, 1024), {"dtype_size": 4}, "square, float32"))
    batch, width = int(rng.choice([1, 2, 8])), int(rng.choice([1024, 4096]))
    calls.append(Call((batch, width, width), {"dtype_size": 2}, f"a linear layer {width} -> {width}, batch {batch}, bfloat16"))
    calls.append(Call((shape(2, 50), shape(2, 50), shape(2, 50)), {"dtype_size": 8}, "float64"))
    calls.append(Call((shape(2, 50), 1, shape(2, 50)), {"dtype_size": 4}, "k = 1 (an outer product)"))
    calls.append(Call((1, 1, 1), {"dtype_size": 1}, "1 x 1 matrices of 1-byte numbers"))
    return calls


MATMUL_SIGNATURE = "def matmul_cost(m, k, n, dtype_size=4):\n"

MATMUL_COST = Exercise(
    chapter=CHAPTER,
    name="matmul_cost",
    points=2,
    cases=_matmul_cases,
    reference=cost.matmul_cost,
    mistakes=(
        Mistake(
            "multiply_add_as_one",
            MATMUL_SIGNATURE + "    return m * k * n, dtype_size * (m * k + k * n + m * n)\n",
            diagnosis="a multiply-add was counted as one FLOP: each of the m * n outputs takes k "
            "multiplications and k additions, 2 * m * k * n FLOPs (as FlopCounterMode counts)",
        ),
        Mistake(
            "k_minus_one_additions",
            MATMUL_SIGNATURE + "    return m * n * (2 * k - 1), dtype_size * (m * k + k * n + m * n)\n",
            diagnosis="you counted k - 1 additions per output, m * n * (2k - 1); the convention (FlopCounterMode's, "
            "and the peak FLOP/s of every data sheet) counts a multiply-add as two FLOPs: 2 * m * k * n",
        ),
        Mistake(
            "output_bytes_forgotten",
            MATMUL_SIGNATURE + "    return 2 * m * k * n, dtype_size * (m * k + k * n)\n",
            diagnosis="the bytes of the output are missing: the m x n result is written to memory once, "
            "dtype_size * (m * k + k * n + m * n)",
        ),
        Mistake(
            "output_bytes_unscaled",
            MATMUL_SIGNATURE + "    return 2 * m * k * n, dtype_size * (m * k + k * n) + m * n\n",
            diagnosis="the m * n output elements were counted without dtype_size (check the parentheses): "
            "every element read or written is dtype_size bytes, dtype_size * (m * k + k * n + m * n)",
        ),
        Mistake(
            "pair_swapped",
            MATMUL_SIGNATURE + "    return dtype_size * (m * k + k * n + m * n), 2 * m * k * n\n",
            diagnosis="the pair is in the wrong order: return (flops, bytes)",
        ),
        Mistake(
            "elements_not_bytes",
            MATMUL_SIGNATURE + "    return 2 * m * k * n, m * k + k * n + m * n\n",
            diagnosis="you counted elements, not bytes: multiply by dtype_size (4 for float32, 2 for bfloat16)",
        ),
        Mistake(
            "dtype_size_ignored",
            MATMUL_SIGNATURE + "    return 2 * m * k * n, 4 * (m * k + k * n + m * n)\n",
            diagnosis="dtype_size was ignored (4 bytes assumed): use the dtype_size you are given",
        ),
        Mistake(
            "floats",
            MATMUL_SIGNATURE + "    return 2.0 * m * k * n, dtype_size * (m * k + k * n + m * n) * 1.0\n",
            expect="should be the integer",
        ),
    ),
)

# --- Exercise 2: the roofline --------------------------------------------------------------------


def _device(rng):
    return float(10 ** rng.uniform(10, 15)), float(10 ** rng.uniform(10, 13))


def _roofline_cases(rng):
    peak, bandwidth = _device(rng)
    ridge = peak / bandwidth
    calls = [Call((ridge * np.logspace(-2, 2, 9), peak, bandwidth), label="intensities from ridge/100 to 100 x ridge")]
    peak, bandwidth = _device(rng)
    calls.append(Call((float(peak / bandwidth * rng.uniform(0.01, 0.5)), peak, bandwidth), label="one intensity below the ridge"))
    calls.append(Call((float(peak / bandwidth * rng.uniform(2, 100)), peak, bandwidth), label="one intensity above the ridge"))
    calls.append(Call((0.0, peak, bandwidth), label="intensity 0"))
    peak, bandwidth = _device(rng)
    grid = peak / bandwidth * 10 ** rng.uniform(-3, 3, size=(3, 4))
    calls.append(Call((grid, peak, bandwidth), label="a 3 x 4 array of intensities"))
    for label, gpu_peak, gpu_bandwidth in [("a GPU: 60 TFLOP/s, 3 TB/s", 60e12, 3e12), ("a laptop CPU: 200 GFLOP/s, 50 GB/s", 200e9, 50e9)]:
        batch = int(rng.choice([1, 4, 16, 64, 256, 4096]))
        flops, nbytes = cost.matmul_cost(batch, 1024, 1024, 4)
        calls.append(Call((flops / nbytes, gpu_peak, gpu_bandwidth), label=f"a 1024 -> 1024 linear layer, batch {batch}, float32, on {label}"))
    return calls


ROOFLINE_SIGNATURE = "def attainable_flops(intensity, peak_flops, bandwidth):\n"

ATTAINABLE_FLOPS = Exercise(
    chapter=CHAPTER,
    name="attainable_flops",
    points=2,
    cases=_roofline_cases,
    reference=cost.attainable_flops,
    mistakes=(
        Mistake(
            "max_instead_of_min",
            ROOFLINE_SIGNATURE + "    return np.maximum(peak_flops, intensity * bandwidth)\n",
            diagnosis="you took the larger of the two roofs: an operation is limited by the slower of "
            "compute and memory, min(peak_flops, intensity * bandwidth)",
        ),
        Mistake(
            "sum_of_roofs",
            ROOFLINE_SIGNATURE + "    return peak_flops + intensity * bandwidth\n",
            diagnosis="you added the two roofs: they are two limits on the same operation, and the lower one "
            "holds, min(peak_flops, intensity * bandwidth)",
        ),
        Mistake(
            "times_added",
            ROOFLINE_SIGNATURE + "    intensity = np.asarray(intensity, dtype=float)\n"
            "    with np.errstate(divide='ignore'):\n"
            "        return 1 / (1 / peak_flops + 1 / (intensity * bandwidth))\n",
            diagnosis="you added the compute time and the memory time, F / peak_flops + B / bandwidth, as if "
            "they could not overlap: the roofline is the bound for perfect overlap, where the slower of the two "
            "sets the time, min(peak_flops, intensity * bandwidth)",
        ),
        Mistake(
            "memory_roof_only",
            ROOFLINE_SIGNATURE + "    return intensity * bandwidth\n",
            diagnosis="the compute roof is missing: above the ridge point peak_flops / bandwidth no operation "
            "runs faster than peak_flops, min(peak_flops, intensity * bandwidth)",
        ),
        Mistake(
            "divided_by_intensity",
            ROOFLINE_SIGNATURE + "    with np.errstate(divide='ignore'):\n"
            "        return np.minimum(peak_flops, bandwidth / np.asarray(intensity, dtype=float))\n",
            diagnosis="the memory roof is intensity * bandwidth (FLOP/byte times byte/s is FLOP/s); you divided "
            "the bandwidth by the intensity",
        ),
        Mistake(
            "in_place",
            ROOFLINE_SIGNATURE + "    intensity *= bandwidth\n    return np.minimum(peak_flops, intensity)\n",
            expect="modified its input",
        ),
    ),
)

# --- Exercise 3: the ring all-reduce -------------------------------------------------------------


def _ring_cases(rng):
    shapes = [(4, 4 * int(rng.integers(2, 10)) + int(rng.integers(1, 4)), np.float64, "P does not divide N")]
    shapes += [(2, 2 * int(rng.integers(1, 20)), np.float64, "two workers")]
    shapes += [(3, int(rng.integers(4, 40)), np.float64, "three workers")]
    shapes += [(1, int(rng.integers(1, 10)), np.float64, "a single worker: nothing to send")]
    shapes += [(4, int(rng.integers(1, 4)), np.float64, "fewer elements than workers")]
    shapes += [(8, 8 * int(rng.integers(2, 20)), np.float64, "P divides N")]
    shapes += [(int(rng.integers(5, 8)), int(rng.integers(20, 200)), np.float32, "float32")]
    shapes += [(16, int(rng.integers(100, 600)), np.float64, "16 workers")]
    calls = []
    for workers, elements, dtype, what in shapes:
        arrays = (rng.normal(size=(workers, elements)) * 10 ** rng.uniform(-2, 2)).astype(dtype)
        calls.append(Call((arrays,), label=f"P={workers}, N={elements}, {np.dtype(dtype).name}: {what}"))
    return calls


def _bytes_problems(sent, workers, elements, itemsize):
    """What is wrong with ``sent`` as the bytes each worker of a ring all-reduce sends (empty if nothing)."""
    low = 2 * (workers - 1) * (elements // workers) * itemsize
    high = 2 * (workers - 1) * math.ceil(elements / workers) * itemsize
    total = 2 * (workers - 1) * elements * itemsize
    if sent.sum() == total and sent.min() >= low and sent.max() <= high:
        return []
    whole = elements * itemsize
    ring = f"2(P-1)/P * N * itemsize = {2 * (workers - 1) / workers * whole:g}"
    if workers > 2 and np.all(sent == (workers - 1) * whole):
        return [
            f"every worker sent (P-1) * N * itemsize = {(workers - 1) * whole} bytes, its whole array to each of the "
            f"other {workers - 1} workers: that naive all-to-all grows with P. In a ring each worker sends 2(P-1) "
            f"chunks of N/P elements, {ring} bytes, less than 2N * itemsize however many workers there are"
        ]
    for extra, phases in ((1, "one of the two phases"), (2, "both phases")):
        if elements and sent.sum() == total + extra * whole:
            return [
                f"the workers sent {2 * (workers - 1) + extra} chunks each instead of 2(P-1) = {2 * (workers - 1)}: "
                f"{phases} ran P steps; the reduce-scatter and the all-gather each take P-1 steps (t = 0 .. P-2)"
            ]
    if np.all(sent * 2 >= low) and np.all(sent * 2 <= high) and sent.sum() * 2 == total:
        return [f"bytes_sent counts only the reduce-scatter, half of what is sent: count the all-gather's P-1 chunks too ({ring})"]
    if np.all(sent * itemsize >= low) and np.all(sent * itemsize <= high) and sent.sum() * itemsize == total:
        return [f"bytes_sent counts elements, not bytes: multiply by arrays.itemsize ({itemsize} for {'float64' if itemsize == 8 else 'this dtype'})"]
    if workers > 2 and sent[0] == (workers - 1) * whole and np.all(sent[1:] == whole):
        return [
            f"worker 0 sent (P-1) * N * itemsize bytes and every other worker N * itemsize: that is a reduce to one "
            f"worker and a broadcast, whose busiest worker's traffic grows with P. In a ring every worker sends {ring} bytes"
        ]
    return [
        f"bytes_sent is {sent.tolist()[:8]}{' ...' if workers > 8 else ''}: in a ring every worker sends 2(P-1) chunks of "
        f"about N/P elements, {ring} bytes (between {low} and {high} when P does not divide N; {total} bytes in all)"
    ]


def _check_ring(call, output):
    (arrays,) = call.args
    workers, elements = arrays.shape
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        return ["ring_allreduce should return a pair (results, bytes_sent)"]
    results, sent = output
    if not isinstance(results, np.ndarray):
        return [f"results should be an array of shape {arrays.shape} (one row per worker), got {type(results).__name__}"]
    if results.dtype != arrays.dtype:
        return [f"results has dtype {results.dtype}, expected {arrays.dtype} (the dtype of arrays)"]
    if results.shape != arrays.shape:
        return [f"results has shape {results.shape}, expected {arrays.shape}: one row per worker (no broadcasting)"]
    mean = arrays.astype(np.float64).mean(axis=0)
    scale = float(np.abs(arrays).max()) if arrays.size else 1.0
    tolerance = (1e-5 if arrays.dtype == np.float32 else 1e-10) * max(scale, 1e-300)
    error = np.abs(results - mean)
    if not np.all(error <= tolerance):  # NaN fails too
        if workers > 1 and np.allclose(results, workers * mean, rtol=1e-4, atol=tolerance * workers):
            return ["every worker holds the sum of the arrays, not their mean: divide the reduced result by P, the number of workers"]
        worker, element = np.unravel_index(np.argmax(np.where(np.isnan(error), np.inf, error)), error.shape)
        bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(elements), workers)])
        right = [[c for c in range(workers) if np.all(error[w, bounds[c] : bounds[c + 1]] <= tolerance)] for w in range(workers)]
        if workers > 1 and all(len(chunks) == 1 for chunks in right) and len({chunks[0] for chunks in right}) == workers:
            return [
                "each worker holds the mean in exactly one chunk, a different one each: the reduce-scatter worked, "
                "the all-gather did not deliver the other chunks (each completed chunk travels round the ring, and "
                "the receiver keeps it: it replaces its own copy, it does not add to it)"
            ]
        return [
            f"worker {worker}'s result is wrong at element {element}: expected the mean {mean[element]:.6g}, "
            f"got {results[worker, element]:.6g}"
        ]
    integers = (isinstance(sent, np.ndarray) and sent.dtype.kind in "iu") or (
        isinstance(sent, (tuple, list)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in sent)
    )
    if not integers or np.shape(sent) != (workers,):
        return [f"bytes_sent should hold {workers} integers, the bytes each worker sent, got {sent!r:.80}"]
    return _bytes_problems(np.asarray(sent, dtype=np.int64), workers, elements, arrays.itemsize)


RING_TEMPLATE = """def ring_allreduce(arrays):
    P, N = arrays.shape
    buffers = {copy}
    sent = np.zeros(P, dtype=np.int64)
    bounds = np.cumsum([0] + [len(c) for c in np.array_split(np.arange(N), P)])

    def chunk(c):
        return slice(bounds[c % P], bounds[c % P + 1])

    for t in range({scatter_steps}):
        outgoing = [buffers[i, chunk(i - t)].copy() for i in range(P)]
        for i in range(P):
            buffers[(i + 1) % P, chunk(i - t)] += outgoing[i]
            sent[i] += {count}
    for t in range({gather_steps}):
        outgoing = [buffers[i, chunk(i + 1 - t)].copy() for i in range(P)]
        for i in range(P):
            buffers[(i + 1) % P, chunk(i + 1 - t)] {keep} outgoing[i]
            sent[i] += {gather_count}
    return {result}, sent
"""


def _ring(copy="arrays.copy()", count="outgoing[i].nbytes", gather_count="outgoing[i].nbytes", result="buffers / P",
          scatter_steps="P - 1", gather_steps="P - 1", keep="="):
    """The code of a ring all-reduce with one part written differently from a correct one."""
    return RING_TEMPLATE.format(
        copy=copy, count=count, gather_count=gather_count, result=result,
        scatter_steps=scatter_steps, gather_steps=gather_steps, keep=keep,
    )


RING_ALLREDUCE = Exercise(
    chapter=CHAPTER,
    name="ring_allreduce",
    points=4,
    cases=_ring_cases,
    reference=cost.ring_allreduce,
    compare_to_reference=False,
    check=_check_ring,
    mistakes=(
        Mistake("sum_not_mean", _ring(result="buffers"), expect="the sum of the arrays, not their mean"),
        Mistake(
            "naive_all_to_all",
            "def ring_allreduce(arrays):\n"
            "    P = len(arrays)\n"
            "    results = np.empty_like(arrays)\n"
            "    sent = np.zeros(P, dtype=np.int64)\n"
            "    for i in range(P):\n"
            "        results[i] = arrays.sum(axis=0) / P  # worker i received every other worker's array\n"
            "        for j in range(P):\n"
            "            if j != i:\n"
            "                sent[j] += arrays[j].nbytes\n"
            "    return results, sent\n",
            expect="naive all-to-all grows with P",
        ),
        Mistake("reduce_scatter_only", _ring(gather_count="0"), expect="counts only the reduce-scatter"),
        Mistake("all_gather_one_step_too_many", _ring(gather_steps="P"), expect="one of the two phases ran P steps"),
        Mistake("p_steps_in_both_phases", _ring(scatter_steps="P", gather_steps="P"), expect="both phases ran P steps"),
        Mistake(
            "all_gather_adds",
            _ring(keep="+="),
            expect="the reduce-scatter worked, the all-gather did not deliver",
        ),
        Mistake("elements_not_bytes", _ring(count="outgoing[i].size", gather_count="outgoing[i].size"), expect="counts elements, not bytes"),
        Mistake(
            "reduce_to_one_worker",
            "def ring_allreduce(arrays):\n"
            "    P, N = arrays.shape\n"
            "    sent = np.full(P, arrays[0].nbytes, dtype=np.int64)  # everyone sends to worker 0\n"
            "    sent[0] = (P - 1) * arrays[0].nbytes  # which sends the mean back to each\n"
            "    return np.tile(arrays.sum(axis=0) / P, (P, 1)), sent\n",
            expect="a reduce to one worker and a broadcast",
        ),
        Mistake("in_place", _ring(copy="arrays"), expect="modified its input"),
    ),
)

EXERCISES = (MATMUL_COST, ATTAINABLE_FLOPS, RING_ALLREDUCE)
