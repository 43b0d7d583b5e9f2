"""Sliders over a figure that respond in JupyterLab *and* in the built book.

``explore(render, sliders)`` shows one selection slider per hyperparameter above
the figure ``render(**values)``. In a live kernel each move re-renders the
figure. When the book is built (the book's Sphinx extension sets
``NNOPT_WIDGETS=static``) every combination is rendered once, at build time, into
nested ``Stack`` widgets whose ``selected_index`` is linked to the sliders with
``jslink``; the browser then switches frames with no kernel at all.
"""

import io
import os

MODE_VARIABLE = "NNOPT_WIDGETS"


def _png(figure):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _options(values):
    """Slider options as (label, index) pairs; values may be given as (label, value) pairs."""
    pairs = [value if isinstance(value, tuple) else (f"{value:g}" if isinstance(value, float) else str(value), value) for value in values]
    return [label for label, _ in pairs], [value for _, value in pairs]


def explore(render, sliders, *, initial=None, mode=None):
    """Show ``render(**values)`` under one slider per entry of ``sliders``.

    ``sliders`` maps a parameter name to its values (or ``(label, value)`` pairs);
    ``initial`` maps names to the starting value's index (default: the first).
    ``mode`` is ``"live"`` or ``"static"`` (default: from ``NNOPT_WIDGETS``, else live).
    Returns the widget (a ``VBox``), which Jupyter displays.
    """
    import ipywidgets as widgets

    if not sliders:
        raise ValueError("sliders must name at least one parameter")
    mode = mode or os.environ.get(MODE_VARIABLE, "live")
    if mode not in ("live", "static"):
        raise ValueError(f"mode must be 'live' or 'static', got {mode!r}")
    names = list(sliders)
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"slider names are passed to render as keywords; {name!r} is not a valid name")
    labels, values = zip(*(_options(sliders[name]) for name in names))
    for name, options in zip(names, values):
        if not options:
            raise ValueError(f"sliders[{name!r}] has no values")
    start = [(initial or {}).get(name, 0) for name in names]
    controls = [
        widgets.SelectionSlider(
            options=[(label, i) for i, label in enumerate(options)],
            value=start[k],
            description=name,
            continuous_update=mode == "static",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="420px"),
        )
        for k, (name, options) in enumerate(zip(names, labels))
    ]

    def frame(indices):
        return _png(render(**{name: values[k][i] for k, (name, i) in enumerate(zip(names, indices))}))

    if mode == "live":
        image = widgets.Image(value=frame(start), format="png")

        def redraw(_change):
            image.value = frame([control.value for control in controls])

        for control in controls:
            control.observe(redraw, names="value")
        return widgets.VBox([*controls, image])

    def stack(level, prefix):
        if level == len(names):
            return widgets.Image(value=frame(prefix), format="png")
        children = [stack(level + 1, prefix + [i]) for i in range(len(values[level]))]
        box = widgets.Stack(children, selected_index=start[level])
        widgets.jslink((controls[level], "index"), (box, "selected_index"))
        return box

    return widgets.VBox([*controls, stack(0, [])])
