"""Chapter 5 exercises: magnitude masks, channel masks, and the bytes of a CSR matrix.

Where magnitudes (or slice norms) tie at the threshold, any choice of which equal
entries to remove is right: PyTorch's own choice among ties is an accident of its
C++ selection algorithm (:mod:`nnopt.prune` replays it). So the two mask exercises are
judged by what a mask must satisfy, not compared entry by entry: a bool array of
the weights' shape that removes exactly ``round(sparsity * n)`` entries (or slices),
none of them larger than a kept one. The known mistakes are still recognised by
their exact output.

Every seed draws the same kinds of cases, in an order chosen so that the first
case a mistake fails on is one where no other known mistake gives the same answer:
distinct magnitudes first (the inverted, signed and float masks and the sparsity
read as the fraction kept fail there), then ties with an exact count (the threshold
mistakes), then counts whose fractional part is above one half (``int`` against
``round``), then exact halves (round half up against half to even), then the edges
0 and 1. Where two mistakes can still give the same mask on a case, the one listed
first in ``mistakes`` is named, so the order of that list matters too.
"""

import numpy as np

from .. import prune
from .core import Call, Exercise, Mistake

CHAPTER = "05_pruning"


def _signed_normal(rng, shape):
    """Normal weights at a random scale, with distinct magnitudes, the largest negative, the next positive.

    A large negative weight tells the sign mistakes apart: ranking by w removes it
    first, the seed article's rule keeps it, ranking by |w| keeps it last. The large
    positive one tells the seed article's rule (keep the most negative) from reading
    the sparsity as the fraction kept (keep the largest |w|) when two or more go.
    """
    w = rng.normal(size=shape) * 10 ** rng.uniform(-2, 1)
    flat = w.reshape(-1)
    largest = np.abs(flat).max()
    flat[0], flat[-1] = -1.5 * largest, 1.25 * largest
    return w


def _sparsity_for(rng, n, fraction, least=1):
    """A sparsity ``s`` whose ``s * n`` has the given kind of fractional part.

    ``fraction`` is ``"low"`` (int and round agree), ``"high"`` (round goes up, int
    down) or ``"half"`` (exactly ``m + 0.5`` with ``m`` even: round half to even
    goes down, round half up goes up). The count is never exactly half of ``n``;
    for ``"low"`` and ``"high"``, ``int(s * n)`` is in ``[least, n - least]``.
    """
    for _ in range(1000):
        if fraction == "half":
            m = 2 * int(rng.integers(0, max(1, (n - 1) // 2)))
            s = (m + 0.5) / n
            if s * n == m + 0.5:
                return s
            continue
        k = int(rng.integers(least, n - least + 1))
        if 2 * k == n:  # removing half: an inverted mask would remove as many, and look like other mistakes
            continue
        offset = rng.uniform(0.05, 0.35) if fraction == "low" else rng.uniform(0.6, 0.95)
        s = round((k + offset) / n, 6)
        part = s * n - int(s * n)
        if (fraction == "low" and part < 0.45) or (fraction == "high" and 0.55 < part < 1):
            return s
    raise RuntimeError(f"no sparsity found for n={n}, {fraction}")


def _tied_sparsity(rng, magnitudes):
    """A sparsity whose count ends inside a group of equal magnitudes (int and round agree)."""
    ordered = np.sort(magnitudes.ravel())
    n = ordered.size
    inside = [k for k in range(1, n) if ordered[k - 1] == ordered[k]]
    k = int(rng.choice(inside))
    return round((k + 0.25) / n, 6)


# --- magnitude_mask ------------------------------------------------------------------------------


def _magnitude_cases(rng):
    calls = []
    for shape in [(20,), (6, 8), (4, 3, 3, 3)]:
        w = _signed_normal(rng, shape)
        calls.append(Call((w, _sparsity_for(rng, w.size, "low", least=2)), label=f"shape {shape}, distinct magnitudes"))
    for shape in [(40,), (5, 12)]:
        w = rng.integers(-4, 5, size=shape) * 0.25 * 10 ** rng.uniform(-1, 1)
        w.reshape(-1)[:2] = [-w.reshape(-1)[:2].max() - 0.5, w.reshape(-1)[:2].max() + 0.5]  # both signs
        calls.append(Call((w, _tied_sparsity(rng, np.abs(w))), label=f"shape {shape}, tied magnitudes and zeros"))
    same = np.full(12, 0.3) * rng.choice([-1.0, 1.0], size=12)
    calls.append(Call((same, _sparsity_for(rng, same.size, "low")), label="12 weights of equal magnitude"))
    for shape in [(30,), (7, 9)]:
        w = _signed_normal(rng, shape)
        calls.append(Call((w, _sparsity_for(rng, w.size, "high")), label=f"shape {shape}, sparsity * size just below an integer"))
    for shape in [(10,), (6, 6)]:
        w = _signed_normal(rng, shape)
        calls.append(Call((w, _sparsity_for(rng, w.size, "half")), label=f"shape {shape}, sparsity * size ends in .5"))
    for sparsity in (0.0, 1.0):
        w = _signed_normal(rng, (3, 5))
        calls.append(Call((w, sparsity), label=f"sparsity {sparsity:g}"))
    return calls


def _mask_problems(name, w, output):
    if not isinstance(output, np.ndarray):
        return [f"{name} should return a bool array of shape {w.shape}, got {type(output).__name__}"]
    if output.dtype != bool:
        return [f"the mask has dtype {output.dtype}; return a bool array (True = kept)"]
    if output.shape != w.shape:
        return [f"the mask has shape {output.shape}, expected the shape of w, {w.shape}"]
    return []


def _removed_count_problem(what, removed, total, sparsity, expected):
    if removed == expected:
        return []
    return [
        f"the mask removes {removed} of {total} {what}; it should remove "
        f"round(sparsity * {total}) = round({sparsity!r} * {total}) = {expected}"
    ]


def _order_problem(what, scores, kept):
    if kept.all() or not kept.any():
        return []
    largest_removed, smallest_kept = scores[~kept].max(), scores[kept].min()
    if largest_removed <= smallest_kept:
        return []
    return [f"the mask removes {what} {largest_removed:.4g} but keeps {what} {smallest_kept:.4g}: keep the largest"]


def _check_magnitude(call, output):
    w, sparsity = call.args
    problems = _mask_problems("magnitude_mask", w, output)
    if problems:
        return problems
    removed = int(np.count_nonzero(~output))
    return _removed_count_problem("weights", removed, w.size, sparsity, round(sparsity * w.size)) or _order_problem(
        "a weight of magnitude |w| =", np.abs(w), output
    )


MAGNITUDE_SIGNATURE = "def magnitude_mask(w, sparsity):\n"
KEEP_AFTER = (
    "    mask = np.ones(w.size, dtype=bool)\n"
    "    mask[order[:k]] = False\n"
    "    return mask.reshape(w.shape)\n"
)
REMOVE_EXACTLY = "remove exactly k: sort the magnitudes (np.argsort) and mask the first k positions"

MAGNITUDE_MASK = Exercise(
    chapter=CHAPTER,
    name="magnitude_mask",
    points=3,
    cases=_magnitude_cases,
    reference=prune.magnitude_mask,
    compare_to_reference=False,
    check=_check_magnitude,
    mistakes=(
        Mistake(
            "inverted",
            MAGNITUDE_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    order = np.argsort(np.abs(w), axis=None)\n"
            "    mask = np.zeros(w.size, dtype=bool)\n"
            "    mask[order[:k]] = True\n"
            "    return mask.reshape(w.shape)\n",
            diagnosis="the mask is inverted: it keeps the smallest |w| and removes the largest, like the "
            "seed article's I(w < threshold). True marks a weight that stays: the largest magnitudes",
        ),
        Mistake(
            "seed_article",
            MAGNITUDE_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    order = np.argsort(w, axis=None)\n"
            "    mask = np.zeros(w.size, dtype=bool)\n"
            "    mask[order[:k]] = True\n"
            "    return mask.reshape(w.shape)\n",
            diagnosis="this is the seed article's w * I(w < threshold): it keeps the smallest signed weights, "
            "so it is inverted and ignores the sign. Rank by |w| and keep the largest",
        ),
        Mistake(
            "no_abs",
            MAGNITUDE_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    order = np.argsort(w, axis=None)\n" + KEEP_AFTER,
            diagnosis="the weights were ranked by w, not |w|, so negative weights are always removed first: "
            "rank by magnitude, np.abs(w)",
        ),
        Mistake(
            "float_mask",
            MAGNITUDE_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    order = np.argsort(np.abs(w), axis=None)\n"
            "    mask = np.ones(w.size)\n"
            "    mask[order[:k]] = 0.0\n"
            "    return mask.reshape(w.shape)\n",
            diagnosis="the mask holds floats 0.0 and 1.0 (as PyTorch's weight_mask does); return a bool array, "
            "True = kept",
        ),
        Mistake(
            "threshold_removes_ties",
            MAGNITUDE_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    if k == 0:\n"
            "        return np.ones(w.shape, dtype=bool)\n"
            "    threshold = np.sort(np.abs(w), axis=None)[k - 1]\n"
            "    return np.abs(w) > threshold\n",
            diagnosis="np.abs(w) > threshold also removes every other weight equal to the threshold, so on ties "
            "it removes more than k = round(sparsity * w.size); " + REMOVE_EXACTLY,
        ),
        Mistake(
            "threshold_keeps_ties",
            MAGNITUDE_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    if k == w.size:\n"
            "        return np.zeros(w.shape, dtype=bool)\n"
            "    threshold = np.sort(np.abs(w), axis=None)[k]\n"
            "    return np.abs(w) >= threshold\n",
            diagnosis="np.abs(w) >= threshold also keeps every weight equal to the threshold, so on ties it "
            "removes fewer than k = round(sparsity * w.size); " + REMOVE_EXACTLY,
        ),
        Mistake(
            "int_count",
            MAGNITUDE_SIGNATURE + "    k = int(sparsity * w.size)\n"
            "    order = np.argsort(np.abs(w), axis=None)\n" + KEEP_AFTER,
            diagnosis="int() cuts sparsity * w.size down (int(28.99...) is 28); PyTorch rounds: "
            "k = round(sparsity * w.size)",
        ),
        Mistake(
            "round_half_up",
            MAGNITUDE_SIGNATURE + "    k = int(sparsity * w.size + 0.5)\n"
            "    order = np.argsort(np.abs(w), axis=None)\n" + KEEP_AFTER,
            diagnosis="halves were rounded up; PyTorch uses Python's round, which rounds halves to the even "
            "integer (round(2.5) == 2, round(3.5) == 4)",
        ),
        # last: on ties or odd counts its wrong mask can equal that of a mistake above
        Mistake(
            "sparsity_as_kept",
            MAGNITUDE_SIGNATURE + "    k = round((1 - sparsity) * w.size)\n"
            "    order = np.argsort(np.abs(w), axis=None)\n" + KEEP_AFTER,
            diagnosis="the sparsity was read as the fraction kept; it is the fraction removed: remove "
            "k = round(sparsity * w.size) weights and keep the rest",
        ),
    ),
)

# --- channel_mask --------------------------------------------------------------------------------


def _spiky_or_flat(rng, n, size):
    """``n`` slices of ``size`` entries: half with one large entry, half with many moderate ones.

    A spiky slice (one entry ``a``) has L1 norm ~a and L2 norm ~a; a flat one (all
    entries ``b``) has L1 norm ``size * b`` and L2 norm ``sqrt(size) * b``. With
    ``sqrt(size) * b < a < size * b`` the two norms rank the slices in opposite ways.
    """
    slices = []
    for i in range(n):
        sign = rng.choice([-1.0, 1.0], size=size)
        if i % 2 == 0:
            row = 0.01 * rng.uniform(0.5, 1.0, size=size) * sign
            row[rng.integers(size)] = rng.uniform(1.0, 1.4) * sign[0]
        else:
            row = rng.uniform(0.9, 1.1, size=size) / size**0.75 * rng.uniform(0.8, 1.25) * sign
        slices.append(row)
    return np.array(slices)[rng.permutation(n)]


def _spikes(rng, n):
    """``n`` slices of ``n`` entries, slice ``m`` with ``m + 1`` non-zero entries of magnitude ``(m + 1) ** -0.25``.

    Their L2 norms ``(m + 1) ** 0.25`` grow with ``m`` while their largest entries
    shrink: ranked by the largest |w| (or any norm but the L2 and the L1), the slices
    come in the opposite order, and any count removes the wrong ones.
    """
    w = np.zeros((n, n))
    for m in range(n):
        w[m, rng.choice(n, size=m + 1, replace=False)] = (m + 1) ** -0.25 * rng.choice([-1.0, 1.0], size=m + 1)
    return w[rng.permutation(n)]


def _channel_cases(rng):
    calls = []
    scale = 10 ** rng.uniform(-1, 1)
    w = _spiky_or_flat(rng, 10, 9) * scale
    calls.append(Call((w, _sparsity_for(rng, 10, "low")), label="(10, 9), dim=0 (the default)"))
    w = np.moveaxis(_spiky_or_flat(rng, 8, 12).reshape(8, 3, 4), 0, 1) * scale
    calls.append(Call((w, _sparsity_for(rng, 8, "low")), {"dim": 1}, label="(3, 8, 4), dim=1"))
    w = _spiky_or_flat(rng, 6, 27).reshape(6, 3, 3, 3) * scale
    calls.append(Call((w, _sparsity_for(rng, 6, "low")), {"dim": 0}, label="conv weight (6, 3, 3, 3), dim=0"))
    w = _spiky_or_flat(rng, 9, 5).T * scale
    calls.append(Call((w, _sparsity_for(rng, 9, "low", least=2), -1), label="(5, 9), dim=-1"))
    w = _spikes(rng, 8) * scale
    calls.append(Call((w, _sparsity_for(rng, 8, "low")), label="(8, 8), slices of 1 to 8 equal entries"))
    rows = rng.normal(size=(4, 6)) * scale
    w = np.concatenate([rows, rows[rng.permutation(4)] * rng.choice([-1.0, 1.0], size=(4, 1)), np.zeros((2, 6))])
    w = w[rng.permutation(len(w))]
    calls.append(Call((w, _tied_sparsity(rng, prune.channel_norms(w))), label="(10, 6) with equal and zero rows"))
    w = _spiky_or_flat(rng, 14, 6) * scale
    calls.append(Call((w, _sparsity_for(rng, 14, "high")), label="(14, 6), sparsity * 14 just below an integer"))
    w = _spiky_or_flat(rng, 7, 4).T.reshape(2, 2, 7) * scale
    calls.append(Call((w, _sparsity_for(rng, 7, "half")), {"dim": 2}, label="(2, 2, 7), dim=2, sparsity * 7 ends in .5"))
    for sparsity in (0.0, 1.0):
        w = rng.normal(size=(5, 4)) * scale
        calls.append(Call((w, sparsity), {"dim": 1}, label=f"(5, 4), dim=1, sparsity {sparsity:g}"))
    return calls


def _check_channel(call, output):
    w, sparsity, *rest = call.args
    dim = rest[0] if rest else call.kwargs.get("dim", 0)
    problems = _mask_problems("channel_mask", w, output)
    if problems:
        return problems
    axis = dim % w.ndim
    per_slice = np.moveaxis(output, axis, 0).reshape(w.shape[axis], -1)
    uneven = np.flatnonzero(per_slice.any(axis=1) != per_slice.all(axis=1))
    if uneven.size:
        return [
            f"the mask is not constant on slice {uneven[0]} along dim={dim}: structured pruning keeps or "
            f"removes whole slices w.take(i, axis={dim})"
        ]
    kept = per_slice[:, 0]
    removed = int(np.count_nonzero(~kept))
    return _removed_count_problem(f"slices along dim={dim}", removed, kept.size, sparsity, round(sparsity * kept.size)) or _order_problem(
        "a slice of L2 norm", prune.channel_norms(w, dim), kept
    )


CHANNEL_SIGNATURE = "def channel_mask(w, sparsity, dim=0):\n"


def _channel_variant(norms="np.sqrt(np.sum(w**2, axis=others))", axis="dim % w.ndim", count="round(sparsity * n)", keep="True"):
    """The code of a channel mask with one part written differently from the reference."""
    return (
        CHANNEL_SIGNATURE
        + f"    axis = {axis}\n"
        + "    others = tuple(a for a in range(w.ndim) if a != axis)\n"
        + f"    norms = {norms}\n"
        + "    n = w.shape[axis]\n"
        + f"    k = {count}\n"
        + f"    keep = np.full(n, {keep})\n"
        + f"    keep[np.argsort(norms)[:k]] = {'False' if keep == 'True' else 'True'}\n"
        + "    shape = [1] * w.ndim\n"
        + "    shape[axis] = n\n"
        + "    return np.broadcast_to(keep.reshape(shape), w.shape).copy()\n"
    )


WRONG_AXIS = (
    "the slices were taken along the wrong axis: slice i along dim is w.take(i, axis=dim), and its norm "
    "sums over all the other axes"
)

CHANNEL_MASK = Exercise(
    chapter=CHAPTER,
    name="channel_mask",
    points=3,
    cases=_channel_cases,
    reference=prune.channel_mask,
    compare_to_reference=False,
    check=_check_channel,
    mistakes=(
        Mistake(
            "inverted",
            _channel_variant(keep="False"),
            diagnosis="the mask is inverted: it keeps the slices of smallest norm. True marks a slice that "
            "stays: the largest L2 norms",
        ),
        Mistake(
            "l1_norm",
            _channel_variant(norms="np.sum(np.abs(w), axis=others)"),
            diagnosis="the slices were ranked by their L1 norm (sum of |w|); ln_structured(n=2) ranks them by "
            "the L2 norm, np.sqrt(np.sum(w**2, axis=others))",
        ),
        Mistake("dim_ignored", _channel_variant(axis="0"), diagnosis=WRONG_AXIS),
        Mistake("next_axis", _channel_variant(axis="(dim + 1) % w.ndim"), diagnosis=WRONG_AXIS),
        Mistake(
            "negative_dim",
            _channel_variant(axis="dim"),
            diagnosis="dim=-1 was used as it is: `a != dim` excludes no axis numbered 0 to w.ndim - 1, so the "
            "norm summed over every axis. Turn it into an axis first: axis = dim % w.ndim",
        ),
        Mistake(
            "int_count",
            _channel_variant(count="int(sparsity * n)"),
            diagnosis="int() cuts sparsity * n down; PyTorch rounds: k = round(sparsity * n), "
            "n = w.shape[dim]",
        ),
        Mistake(
            "per_weight",
            CHANNEL_SIGNATURE + "    k = round(sparsity * w.size)\n"
            "    mask = np.ones(w.size, dtype=bool)\n"
            "    mask[np.argsort(np.abs(w), axis=None)[:k]] = False\n"
            "    return mask.reshape(w.shape)\n",
            diagnosis="this removes single weights (unstructured pruning); channel_mask removes whole slices "
            "along dim, ranked by their L2 norm",
        ),
    ),
)

# --- csr_bytes -----------------------------------------------------------------------------------


def _sparse_matrix(rng, shape, nonzero):
    w = np.zeros(shape)
    places = rng.choice(w.size, size=nonzero, replace=False)
    w.reshape(-1)[places] = rng.normal(size=nonzero) + rng.choice([-1.0, 1.0], size=nonzero)
    return w


def _csr_cases(rng):
    calls = [
        Call(
            (_sparse_matrix(rng, (7, 13), int(rng.integers(20, 61))), "float32", "int16"),
            label="(7, 13), float32 values, int16 indices",
        )
    ]
    for shape, dtypes in [
        ((13, 7), ("float32", "int32")),
        ((30, 20), ("float64", "int64")),
        ((16, 40), ("float64", "int16")),
        ((9, 9), ("float64", "int32")),
    ]:
        nonzero = int(rng.integers(1, shape[0] * shape[1]))
        calls.append(Call((_sparse_matrix(rng, shape, nonzero), *dtypes), label=f"{shape}, {nonzero} non-zeros, {dtypes}"))
    calls.append(Call((_sparse_matrix(rng, (5, 8), 40), "float32", "int32"), label="(5, 8), no zeros"))
    calls.append(Call((np.zeros((6, 4)), "float32", "int16"), label="(6, 4), all zero"))
    calls.append(Call((_sparse_matrix(rng, (1, 12), 5),), label="one row, default dtypes"))
    calls.append(Call((_sparse_matrix(rng, (12, 1), 5),), {"index_dtype": "int16"}, label="one column, int16 indices"))
    return calls


CSR_SIGNATURE = "def csr_bytes(weights, value_dtype='float32', index_dtype='int32'):\n"
SIZES = (
    "    value_size = np.dtype(value_dtype).itemsize\n"
    "    index_size = np.dtype(index_dtype).itemsize\n"
    "    rows, columns = weights.shape\n"
    "    nnz = np.count_nonzero(weights)\n"
)

CSR_BYTES = Exercise(
    chapter=CHAPTER,
    name="csr_bytes",
    points=2,
    cases=_csr_cases,
    reference=prune.csr_bytes,
    mistakes=(
        Mistake(
            "no_row_pointers",
            CSR_SIGNATURE + SIZES + "    return nnz * (value_size + index_size)\n",
            diagnosis="the row pointers are missing: CSR also stores rows + 1 of them, "
            "(rows + 1) * index bytes",
        ),
        Mistake(
            "rows_pointers",
            CSR_SIGNATURE + SIZES + "    return nnz * (value_size + index_size) + rows * index_size\n",
            diagnosis="there are rows + 1 row pointers, not rows: row i's entries are "
            "indptr[i]:indptr[i + 1], so the last row needs an end",
        ),
        Mistake(
            "column_pointers",
            CSR_SIGNATURE + SIZES + "    return nnz * (value_size + index_size) + (columns + 1) * index_size\n",
            diagnosis="columns + 1 pointers (one per column) is CSC; CSR keeps one pointer per row, rows + 1",
        ),
        Mistake(
            "coo",
            CSR_SIGNATURE + SIZES + "    return nnz * (value_size + 2 * index_size)\n",
            diagnosis="a row index and a column index per non-zero is COO; CSR keeps the column index per "
            "non-zero and replaces the row indices by rows + 1 row pointers",
        ),
        Mistake(
            "every_entry",
            CSR_SIGNATURE + SIZES + "    return weights.size * (value_size + index_size) + (rows + 1) * index_size\n",
            diagnosis="every entry was counted; CSR stores only the non-zeros, np.count_nonzero(weights)",
        ),
        Mistake(
            "pointers_as_values",
            CSR_SIGNATURE + SIZES + "    return nnz * (value_size + index_size) + (rows + 1) * value_size\n",
            diagnosis="the row pointers are indices: they take index_dtype's bytes, not value_dtype's",
        ),
        Mistake(
            "bits",
            CSR_SIGNATURE + "    bits = lambda name: int(''.join(c for c in name if c.isdigit()))\n"
            "    rows, columns = weights.shape\n"
            "    nnz = np.count_nonzero(weights)\n"
            "    return nnz * (bits(value_dtype) + bits(index_dtype)) + (rows + 1) * bits(index_dtype)\n",
            diagnosis="that counts bits: 'int32' is 32 bits but 4 bytes, np.dtype('int32').itemsize",
        ),
    ),
)

EXERCISES = (MAGNITUDE_MASK, CHANNEL_MASK, CSR_BYTES)
