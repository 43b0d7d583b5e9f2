"""Figures shared by the chapters: optimizer paths on a landscape, and loss curves."""

import numpy as np

from .landscapes import contour_grid


def _distance_to_minimum(landscape, path):
    return np.linalg.norm(path - np.asarray(landscape.minimum), axis=1)


def landscape_figure(landscape, paths, title="", figsize=(8.4, 3.6)):
    """Contours of ``landscape`` with each path of ``paths`` (label -> array (steps+1, 2)),
    and beside it each path's distance to the minimum per step (log scale)."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.1, 1]})
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
    left.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal", xlabel=r"$\theta_1$", ylabel=r"$\theta_2$")
    right.set(xlabel="step $k$", ylabel=r"$\|\theta_k - \theta^*\|$", ylim=(1e-8, 1e3))
    right.grid(True, which="major", alpha=0.3)
    if len(paths) > 1:
        left.legend(loc="lower right", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
