"""Which entries ``torch.topk`` picks on the CPU, ties included (NumPy and the standard library only).

PyTorch's CPU ``topk`` (``topk_impl_loop`` in ``aten/src/ATen/native/TopKImpl.h``) pairs
every value with its index and compares the pairs by value alone, so which of several
*equal* values it returns is whatever the C++ standard library's selection leaves:
``std::nth_element`` when ``64 * k > n``, otherwise a heap of ``k`` entries that the
others replace when they compare smaller (``std::partial_sort``'s heap selection).
This module replays GCC's libstdc++ versions of both (``bits/stl_algo.h``,
``bits/stl_heap.h``), which PyTorch's Linux builds use, step by step, and returns the
same set of positions. ``tests/test_prune.py`` checks it against ``torch.topk`` on
thousands of random tie patterns. Other standard libraries (libc++ on macOS, MSVC's)
implement these functions differently and may pick other equal entries.

Where some values are NaN they are replaced by their ranks (equal values share a rank,
NaN ranks above every number), so that NaN compares as in PyTorch's comparator: larger
than any number and equal to another NaN.
"""

import numpy as np


def smallest(values, k):
    """The positions that ``torch.topk(values, k, largest=False)`` returns for a 1-D ``values`` (any order)."""
    return _select(_keys(values), k)


def largest(values, k):
    """The positions that ``torch.topk(values, k, largest=True)`` returns for a 1-D ``values`` (any order)."""
    return _select(-_keys(values), k)


def _keys(values):
    """``values`` as float64, or, where some are NaN, their ranks (NaN above every number, NaNs equal)."""
    values = np.array(values, dtype=np.float64).ravel()
    if np.isnan(values).any():
        return np.unique(values, return_inverse=True, equal_nan=True)[1].ravel().astype(np.float64)
    return values


def _select(keys, k):
    """The positions of ``k`` smallest keys, chosen as libstdc++ chooses among equal keys."""
    n = keys.size
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if 64 * k <= n:
        return _heap_of_smallest(keys, k)
    keys, order = keys.copy(), np.arange(n)
    _nth_element(keys, order, k - 1)
    return order[:k]


# --- heaps (bits/stl_heap.h); a heap is a list of (key, position) pairs compared by key --------


def _push_up(heap, hole, top, item):
    parent = (hole - 1) // 2
    while hole > top and heap[parent][0] < item[0]:
        heap[hole] = heap[parent]
        hole, parent = parent, (parent - 1) // 2
    heap[hole] = item


def _adjust(heap, hole, length, item):
    top = child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if heap[child][0] < heap[child - 1][0]:
            child -= 1
        heap[hole], hole = heap[child], child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        heap[hole], hole = heap[child - 1], child - 1
    _push_up(heap, hole, top, item)


def _make_heap(heap):
    for parent in range((len(heap) - 2) // 2, -1, -1):
        _adjust(heap, parent, len(heap), heap[parent])


def _heap_select(items, middle):
    """``std::__heap_select``: afterwards ``items[:middle]`` holds ``middle`` smallest keys."""
    heap = items[:middle]
    _make_heap(heap)
    for i in range(middle, len(items)):
        if items[i][0] < heap[0][0]:
            items[i], item = heap[0], items[i]
            _adjust(heap, 0, middle, item)
    items[:middle] = heap


def _heap_of_smallest(keys, k):
    items = list(zip(keys.tolist(), range(keys.size)))
    top = keys[:k].max()
    # a key not below the first k's largest never enters the heap (its top only decreases)
    candidates = items[:k] + [items[i] for i in (k + np.flatnonzero(keys[k:] < top)).tolist()]
    _heap_select(candidates, k)
    return np.array([position for _, position in candidates[:k]], dtype=np.int64)


# --- std::nth_element (bits/stl_algo.h: introselect) ---------------------------------------------


def _swap(keys, order, a, b):
    keys[[a, b]] = keys[[b, a]]
    order[[a, b]] = order[[b, a]]


def _move_median_to_first(keys, order, result, a, b, c):
    if keys[a] < keys[b]:
        median = b if keys[b] < keys[c] else c if keys[a] < keys[c] else a
    else:
        median = a if keys[a] < keys[c] else c if keys[b] < keys[c] else b
    _swap(keys, order, result, median)


def _partition_around_first(keys, order, first, last):
    """``std::__unguarded_partition_pivot``, its scans and swaps done at once; returns the cut."""
    _move_median_to_first(keys, order, first, first + 1, first + (last - first) // 2, last - 1)
    pivot = keys[first]
    # where the left scan stops (key >= pivot) and the right scan stops (key <= pivot, from the end)
    left = first + 1 + np.flatnonzero(~(keys[first + 1 : last] < pivot))
    right = (first + np.flatnonzero(~(pivot < keys[first:last])))[::-1]
    pairs = min(left.size, right.size)
    crossed = np.flatnonzero(left[:pairs] >= right[:pairs])
    swaps = int(crossed[0]) if crossed.size else pairs
    a, b = left[:swaps], right[:swaps]
    keys[a], keys[b] = keys[b], keys[a]
    order[a], order[b] = order[b], order[a]
    if swaps == 0:
        return int(left[0])
    # the left scan goes on to the next stop, or to the last swapped element, whichever comes first
    return int(min(left[swaps], right[swaps - 1])) if swaps < left.size else int(right[swaps - 1])


def _nth_element(keys, order, nth):
    first, last = 0, keys.size
    depth = 2 * ((last - first).bit_length() - 1)
    while last - first > 3:
        if depth == 0:
            items = list(zip(keys[first:last].tolist(), order[first:last].tolist()))
            _heap_select(items, nth + 1 - first)
            keys[first:last] = [key for key, _ in items]
            order[first:last] = [position for _, position in items]
            _swap(keys, order, first, nth)
            return
        depth -= 1
        cut = _partition_around_first(keys, order, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    # insertion sort of the last few (stable): which of them fall at or before nth
    part = sorted(zip(keys[first:last].tolist(), order[first:last].tolist()), key=lambda item: item[0])
    keys[first:last] = [key for key, _ in part]
    order[first:last] = [position for _, position in part]
