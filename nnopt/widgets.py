"""Sliders over a figure that respond in JupyterLab *and* in the built book.

``explore(render, sliders)`` shows one selection slider per hyperparameter above
the figure ``render(**values)``. In a live kernel each move re-renders the
figure. When the book is built (the book's Sphinx extension sets
``NNOPT_WIDGETS=static``) every combination is rendered once, at build time, into
nested ``Stack`` widgets whose ``selected_index`` is linked to the sliders with
``jslink``; the browser then switches frames with no kernel at all.

Figures are rendered at 1.5 device pixels per CSS pixel and shown at their natural
size (never stretched), so they stay sharp in JupyterLab and in the book.
"""

import io
import os
import struct

MODE_VARIABLE = "NNOPT_WIDGETS"
CSS_DPI = 96  # a CSS pixel is 1/96 inch
PIXEL_RATIO = 1.5  # device pixels rendered per CSS pixel


def _png(figure):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CSS_DPI * PIXEL_RATIO, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _css_width(png):
    """The natural CSS width of a PNG rendered at PIXEL_RATIO."""
    pixels = struct.unpack(">I", png[16:20])[0]  # the IHDR chunk's width field
    return f"{pixels / PIXEL_RATIO:.0f}px"


def _image(png):
    """An Image widget showing ``png`` at its natural CSS size, shrinking only to fit the page."""
    import ipywidgets as widgets

    layout = widgets.Layout(width=_css_width(png), max_width="100%", height="auto")
    return widgets.Image(value=png, format="png", layout=layout)


def _options(values):
    """Slider options as (label, index) pairs; values may be given as (label, value) pairs."""
    pairs = [value if isinstance(value, tuple) else (f"{value:g}" if isinstance(value, float) else str(value), value) for value in values]
    return [label for label, _ in pairs], [value for _, value in pairs]


def explore(render, sliders, *, labels=None, initial=None, mode=None):
    """Show ``render(**values)`` under one slider per entry of ``sliders``.

    ``sliders`` maps a parameter name to its values (or ``(label, value)`` pairs);
    ``labels`` maps a parameter name to the description the reader sees beside its
    slider, with symbol and unit (``{"lr": "learning rate η"}``; default: the name);
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
    option_labels, values = zip(*(_options(sliders[name]) for name in names))
    for name, options in zip(names, values):
        if not options:
            raise ValueError(f"sliders[{name!r}] has no values")
    unknown = set(labels or {}) - set(names)
    if unknown:
        raise ValueError(f"labels names parameters that have no slider: {', '.join(sorted(unknown))}")
    descriptions = [(labels or {}).get(name, name) for name in names]
    label_width = f"{0.6 * max(len(text) for text in descriptions) + 1:.1f}em"  # one width: the tracks line up
    start = [(initial or {}).get(name, 0) for name in names]
    controls = [
        widgets.SelectionSlider(
            options=[(label, i) for i, label in enumerate(options)],
            value=start[k],
            description=descriptions[k],
            continuous_update=mode == "static",
            style={"description_width": label_width},
            layout=widgets.Layout(width=f"calc({label_width} + 340px)"),
        )
        for k, options in enumerate(option_labels)
    ]

    def frame(indices):
        return _png(render(**{name: values[k][i] for k, (name, i) in enumerate(zip(names, indices))}))

    if mode == "live":
        image = _image(frame(start))

        def redraw(_change):
            png = frame([control.value for control in controls])
            image.layout.width = _css_width(png)
            image.value = png

        for control in controls:
            control.observe(redraw, names="value")
        return widgets.VBox([*controls, image])

    def stack(level, prefix):
        if level == len(names):
            return _image(frame(prefix))
        children = [stack(level + 1, prefix + [i]) for i in range(len(values[level]))]
        box = widgets.Stack(children, selected_index=start[level])
        widgets.jslink((controls[level], "index"), (box, "selected_index"))
        return box

    return widgets.VBox([*controls, stack(0, [])])
