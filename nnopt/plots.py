"""Figures shared by the chapters: optimizer paths on a landscape, and loss curves.

Widgets render every frame of a figure when the book is built, so these figures
are laid out with fixed margins (no ``tight_layout`` pass, which draws the figure
once more) and label a logarithmic axis with plain text rather than mathtext.
"""

import numpy as np

from .landscapes import contour_grid

SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _distance_to_minimum(landscape, path):
    return np.linalg.norm(path - np.asarray(landscape.minimum), axis=1)


def power_of_ten(exponent):
    """``"10⁻⁴"`` for ``-4``: a tick label in Unicode superscripts (no mathtext to typeset)."""
    return "1" if exponent == 0 else "10" + str(int(exponent)).translate(SUPERSCRIPTS)


def log_ticks(axis, low, high, every=2):
    """Label the logarithmic y-axis of ``axis`` at every ``every``-th power of ten from ``low`` to ``high``."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    exponents = range(int(np.ceil(np.log10(low))), int(np.floor(np.log10(high))) + 1, every)
    axis.yaxis.set_major_locator(FixedLocator([10.0**e for e in exponents]))
    axis.yaxis.set_major_formatter(FixedFormatter([power_of_ten(e) for e in exponents]))
    axis.yaxis.set_minor_locator(NullLocator())


def landscape_figure(landscape, paths, title="", figsize=(8.4, 3.6)):
    """Contours of ``landscape`` with each path of ``paths`` (label -> array (steps+1, 2)),
    and beside it each path's distance to the minimum per step (log scale)."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.1, 1]})
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.88 if title else 0.95, wspace=0.22)
    X, Y, Z = contour_grid(landscape)
    levels = np.quantile(Z, np.linspace(0.0, 0.95, 14) ** 2)
    left.contour(X, Y, Z, levels=np.unique(levels), colors="0.75", linewidths=0.7)
    left.plot(*landscape.minimum, marker="*", color="k", markersize=10, linestyle="none")
    x0, x1, y0, y1 = landscape.window
    for label, path in paths.items():
        (line,) = left.plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1, label=label)
        distance = _distance_to_minimum(landscape, path)
        right.semilogy(np.arange(len(path)), np.maximum(distance, 1e-16), color=line.get_color(), label=label)
        if np.isnan(path).any():
            right.annotate("diverged", xy=(np.argmax(np.isnan(path[:, 0])), 1.0), color=line.get_color())
    left.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal", xlabel="θ₁", ylabel="θ₂")
    right.set(xlabel="step k", ylabel="distance to the minimum ‖θₖ − θ*‖", ylim=(1e-8, 1e3))
    log_ticks(right, 1e-8, 1e3)
    right.grid(True, which="major", alpha=0.3)
    if len(paths) > 1:
        left.legend(loc="lower right", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure
