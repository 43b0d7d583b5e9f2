"""nnopt.experiments: the statistics and timing rules every chapter's measured table uses."""

import time

import numpy as np
import pytest
from scipy import stats

from nnopt.experiments import Difference, choose, difference, interleaved_medians, paired_difference, summarize


def test_summary_is_mean_sample_std_and_t_interval():
    values = [0.91, 0.95, 0.93, 0.97, 0.92]
    summary = summarize(values)
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert summary.half_width == pytest.approx((high - low) / 2)
    assert summary.format(percent=True) == f"{np.mean(values):.1%} ± {np.std(values, ddof=1):.1%}"
    assert np.isnan(summarize([1.0]).std)


def test_choose_uses_the_mean_flags_the_edge_and_reports_ties():
    chosen = choose({0.1: [0.90, 0.92], 0.3: [0.95, 0.93], 1.0: [0.80, 0.85]})
    assert chosen.best == 0.3 and not chosen.at_edge and chosen.tied_with == ()
    edge = choose({1.0: [0.99, 0.98], 0.3: [0.95, 0.93], 0.1: [0.80, 0.85]})
    assert edge.best == 1.0 and edge.at_edge and edge.flag() == "*"
    # an exact tie of means is broken by the smaller spread, whatever the order of the dictionary
    for results in ({0.3: [0.9, 1.0], 0.1: [0.95, 0.95], 1.0: [0.5, 0.5]}, {1.0: [0.5, 0.5], 0.1: [0.95, 0.95], 0.3: [0.9, 1.0]}):
        tie = choose(results)
        assert tie.best == 0.1 and tie.tied_with == (0.3,)
    assert choose({1: [3.0, 3.1], 2: [1.0, 1.1], 3: [2.0, 2.0]}, higher_is_better=False).best == 2
    with pytest.raises(ValueError, match="at least one"):
        choose({})
    with pytest.raises(ValueError, match="finite"):
        choose({1: [float("nan")]})


def test_difference_is_a_welch_interval():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.1, 6), rng.normal(0.5, 0.3, 5)
    found = difference(a, b)
    result = stats.ttest_ind(a, b, equal_var=False)
    low, high = result.confidence_interval(0.95)
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))
    assert found.resolved and "higher than" in found.describe("a", "b")
    same = difference([1.0, 1.2, 0.9], [1.1, 1.0, 1.05])
    assert not same.resolved and "cannot be told apart" in same.describe("a", "b")
    near_zero = Difference(0.007, 0.0004, 0.0136)  # excludes 0, but its low end rounds to 0.0%
    assert near_zero.describe("a", "b", percent=True).endswith("[0.04%, 1.36%])")
    assert Difference(0.07, 0.02, 0.12).describe("a", "b", percent=True).endswith("[2.0%, 12.0%])")
    # b higher: the interval is b's lead, in the sentence's direction
    assert Difference(-0.07, -0.12, -0.02).describe("a", "b", percent=True) == (
        "b is higher than a by 7.0% (95% interval of the difference [2.0%, 12.0%])")
    unresolved = Difference(0.007, -0.00004, 0.0145).describe("a", "b", percent=True)
    assert unresolved == "a and b cannot be told apart by these seeds (95% interval of a minus b [-0.004%, 1.450%])"
    with pytest.raises(ValueError, match="two seeds"):
        difference([1.0], [1.0, 2.0])


def test_difference_of_equal_constant_samples_says_so_instead_of_a_zero_interval():
    equal = difference([1.0] * 5, [1.0] * 5)
    assert not equal.resolved
    sentence = equal.describe("a", "b", percent=True)
    assert sentence == "a and b give the same value in every seed: no difference, and no spread"
    apart = difference([1.0] * 5, [0.5] * 5)  # constant but different: resolved, as before
    assert apart.resolved and "a is higher than b by 50.0%" in apart.describe("a", "b", percent=True)

def test_paired_difference_is_a_t_interval_of_the_per_seed_differences():
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0.0, 1.0, 6)  # shared by both measurements of a seed
    a, b = seed_effect + 0.1 + rng.normal(0.0, 0.02, 6), seed_effect + rng.normal(0.0, 0.02, 6)
    found = paired_difference(a, b)
    low, high = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert found.mean == pytest.approx(np.mean(a - b))
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))
    # the seed effect cancels in the pairs; unpaired, it swamps the difference
    assert found.resolved and "higher than" in found.describe("a", "b")
    assert not difference(a, b).resolved
    with pytest.raises(ValueError, match="one value per seed"):
        paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="two seeds"):
        paired_difference([1.0], [2.0])


def test_interleaved_medians_time_each_function_in_turns():
    calls = []
    medians = interleaved_medians(
        {"short": lambda: calls.append("short"), "long": lambda: (calls.append("long"), time.sleep(0.01))},
        repeats=3, warmup=1,
    )
    assert medians["long"] > 0.009 and medians["short"] < medians["long"]
    assert calls[-6:] == ["short", "long"] * 3  # in turns, not one function's repeats in a row
    with pytest.raises(ValueError, match="repeats"):
        interleaved_medians({"f": lambda: None}, repeats=0)


def test_interleaved_medians_synchronize_before_every_clock_reading():
    events = []
    interleaved_medians({"f": lambda: events.append("call")}, repeats=2, warmup=1, synchronize=lambda: events.append("sync"))
    # warm-up, one calibration call between two synchronisations, then each timed turn inside two
    assert events == ["call", "sync", "call", "sync"] + ["sync", "call", "sync"] * 2


def test_interleaved_medians_read_the_given_clock():
    ticks = iter(range(1000))
    medians = interleaved_medians({"f": lambda: None}, repeats=3, clock=lambda: next(ticks))
    assert medians == {"f": 1.0}  # one tick between the two readings around each timed turn


def test_interleaved_medians_can_count_thread_cpu_time_only():
    def spin():
        started = time.thread_time()
        while time.thread_time() - started < 0.005:
            pass

    medians = interleaved_medians({"sleep": lambda: time.sleep(0.02), "spin": spin}, repeats=3, clock=time.thread_time)
    assert medians["sleep"] < 0.005 <= medians["spin"]  # sleeping uses no CPU time
