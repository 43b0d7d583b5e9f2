"""Honest experiments: seeds, choices on validation data, intervals, and timings.

The rules every chapter follows (CONTRIBUTING.md) are written once, here:

* :func:`summarize` gives the mean, the sample standard deviation (``ddof=1``) and
  a 95 % Student-t confidence interval of a metric over seeds;
* :func:`choose` picks a hyperparameter by its *validation* mean, says when the
  best value sits at the edge of the sweep, and reports ties instead of breaking
  them by the order of a dictionary;
* :func:`difference` says whether two methods differ by more than the seeds'
  noise (a Welch interval for the difference of means), and
  :func:`paired_difference` says it for two measurements of the same runs (the
  same trained networks on two test sets: a t-interval of the per-seed differences);
* :func:`interleaved_medians` times several functions in turns and reports the
  median of each, so that a burst of load on the machine hits all of them alike;
  compare them as ratios measured in one run.
"""

import math
import time
from dataclasses import dataclass

import numpy as np


def _values(name, values):
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name} must hold at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    return array


def _t_quantile(degrees_of_freedom, level=0.95):
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, degrees_of_freedom))


@dataclass(frozen=True)
class Summary:
    """A metric over ``n`` seeds: mean, sample standard deviation, and 95 % confidence interval half-width."""

    mean: float
    std: float
    half_width: float
    n: int

    def format(self, percent=False, digits=None):
        """``"97.7% ± 0.3%"`` (mean ± sample std); ``digits`` decimals (default 1 for percent, else 3 significant)."""
        if percent:
            places = 1 if digits is None else digits
            return f"{self.mean:.{places}%} ± {self.std:.{places}%}"
        if digits is None:
            return f"{self.mean:.3g} ± {self.std:.2g}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def __str__(self):
        return self.format()


def summarize(values):
    """Mean, sample standard deviation (ddof=1) and 95 % t-interval half-width of ``values`` (one per seed)."""
    array = _values("values", values)
    n = array.size
    if n == 1:
        return Summary(float(array[0]), float("nan"), float("nan"), 1)
    std = float(array.std(ddof=1))
    return Summary(float(array.mean()), std, _t_quantile(n - 1) * std / math.sqrt(n), n)


@dataclass(frozen=True)
class Difference:
    """``a - b`` over seeds: the difference of means and its 95 % confidence interval (Welch's, or paired)."""

    mean: float
    low: float
    high: float

    @property
    def resolved(self):
        """True when the interval excludes zero: the seeds' noise cannot explain the difference."""
        return self.low > 0 or self.high < 0

    def describe(self, name_a, name_b, percent=False):
        """A sentence: which is better and by how much, that the seeds cannot tell them apart, or
        that every seed of both gave the same value (then there is no interval to report).

        With ``percent``, one decimal, or more where an interval that excludes zero would
        otherwise print a bound as 0.0% (up to three decimals).
        """
        if self.low == self.high == 0:  # both samples constant and equal: no interval to speak of
            return f"{name_a} and {name_b} give the same value in every seed: no difference, and no spread"
        places = 1
        nearest = min(abs(self.low), abs(self.high))
        while percent and places < 3 and 0 < nearest and round(100 * nearest, places) == 0:  # no "0.0%" or "-0.0%"
            places += 1
        show = (lambda x: f"{x:.{places}%}") if percent else (lambda x: f"{x:.3g}")
        if not self.resolved:
            interval = f"95% interval of {name_a} minus {name_b} [{show(self.low)}, {show(self.high)}]"
            return f"{name_a} and {name_b} cannot be told apart by these seeds ({interval})"
        if self.mean > 0:
            better, worse, low, high = name_a, name_b, self.low, self.high
        else:  # the interval of the higher minus the lower, so that it reads as the amount in the sentence
            better, worse, low, high = name_b, name_a, -self.high, -self.low
        interval = f"95% interval of the difference [{show(low)}, {show(high)}]"
        return f"{better} is higher than {worse} by {show(abs(self.mean))} ({interval})"


def difference(a, b):
    """Compare two samples (one value per seed each) with a Welch t-interval for ``mean(a) - mean(b)``."""
    a, b = _values("a", a), _values("b", b)
    if a.size < 2 or b.size < 2:
        raise ValueError("each sample needs at least two seeds to estimate its noise")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    mean = float(a.mean() - b.mean())
    if va + vb == 0:
        return Difference(mean, mean, mean)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = _t_quantile(dof) * math.sqrt(va + vb)
    return Difference(mean, mean - half, mean + half)


def paired_difference(a, b):
    """Compare two measurements of the same runs (``a[i]`` and ``b[i]`` from seed ``i``) with a paired t-interval.

    The interval is the t-interval of the mean of the per-seed differences
    ``a[i] - b[i]`` (``scipy.stats.ttest_rel``). Use it when each seed's two values
    come from the same trained model, for instance its test accuracy on plain and on
    shifted inputs: what varies from seed to seed is then common to both values and
    cancels in the difference, which :func:`difference` (independent samples) would
    count as noise.
    """
    a, b = _values("a", a), _values("b", b)
    if a.size != b.size:
        raise ValueError(f"a and b must hold one value per seed each, got {a.size} and {b.size} values")
    if a.size < 2:
        raise ValueError("each sample needs at least two seeds to estimate its noise")
    differences = a - b
    mean = float(differences.mean())
    half = _t_quantile(a.size - 1) * float(differences.std(ddof=1)) / math.sqrt(a.size)
    return Difference(mean, mean - half, mean + half)


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`choose`."""

    best: object  # the chosen setting
    summary: Summary  # its validation metric over seeds
    at_edge: bool  # the best is the smallest or largest setting of the sweep: widen it
    tied_with: tuple  # other settings with exactly the same validation mean

    def flag(self):
        """``"*"`` when the choice is at the edge of its sweep, else ``""`` (for tables)."""
        return "*" if self.at_edge else ""


def choose(results, higher_is_better=True):
    """Pick the setting whose *validation* metric has the best mean over seeds.

    ``results`` maps each setting of a sweep (numbers, in any order) to its
    validation metric, one value per seed. Exact ties of the mean are broken by the
    smaller sample standard deviation, then by the smaller setting, and reported in
    ``tied_with``, so that a table can say so. ``at_edge`` is set when the best
    setting is the smallest or the largest of a sweep of three or more.
    """
    if not results:
        raise ValueError("results must hold at least one setting")
    summaries = {setting: summarize(values) for setting, values in results.items()}
    sign = 1.0 if higher_is_better else -1.0
    best_mean = max(sign * s.mean for s in summaries.values())
    tied = sorted(setting for setting, s in summaries.items() if sign * s.mean == best_mean)
    best = min(tied, key=lambda setting: (np.nan_to_num(summaries[setting].std, nan=0.0), setting))
    settings = sorted(results)
    at_edge = len(settings) >= 3 and best in (settings[0], settings[-1])
    return Choice(best, summaries[best], at_edge, tuple(s for s in tied if s != best))


def interleaved_medians(functions, repeats=7, warmup=1, min_seconds=0.0, synchronize=None, clock=time.perf_counter):
    """Median seconds per call of each function, timed in turns.

    ``functions`` maps a name to a function of no arguments. Each of ``repeats``
    rounds calls every function once, in the same order, after ``warmup`` untimed
    rounds. A call shorter than ``min_seconds`` is repeated within its turn and the
    time divided by the count, so that very short calls are measured above the
    clock's resolution. ``synchronize``, when given, is called before every
    reading of the clock, so that work a device runs asynchronously (a CUDA
    kernel returns before it has run) is finished inside the measured time: pass
    ``torch.cuda.synchronize``. ``clock`` reads the time (wall-clock by default;
    ``time.thread_time`` counts only the CPU time of the calling thread, which other
    processes on a busy machine cannot inflate, and is right for work done on that
    one thread). Returns ``{name: median seconds}``.
    """
    if not functions:
        raise ValueError("functions must name at least one function")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    wait = synchronize or (lambda: None)
    counts = {}
    for name, function in functions.items():
        for _ in range(warmup):
            function()
        wait()
        count, started = 0, clock()
        while True:
            function()
            count += 1
            wait()
            if clock() - started >= min_seconds:
                break
        counts[name] = count
    timings = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            wait()
            started = clock()
            for _ in range(counts[name]):
                function()
            wait()
            timings[name].append((clock() - started) / counts[name])
    return {name: float(np.median(values)) for name, values in timings.items()}
