"""Progress for anything slow: one line that updates in place.

``for item in progress(items, "sweep"):`` shows ``sweep: 3/28 (2.1 s)`` under the
cell while it runs and leaves ``sweep: 28/28 done in 21.3 s`` when it ends. In a
notebook the line is one display that is updated (no widget state, so it also
reads right in the built book); outside IPython it is printed once, at the end.
"""

import sys
import time

UPDATE_SECONDS = 0.5


def _display():
    """IPython's ``display`` when running in a kernel, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    return display if shell is not None and getattr(shell, "kernel", None) is not None else None


def progress(items, label, total=None):
    """Yield ``items``, showing how many are done and the time so far."""
    total = len(items) if total is None and hasattr(items, "__len__") else total
    display = _display()
    handle = display(_Line(label, 0, total, 0.0), display_id=True) if display else None
    started = shown = time.perf_counter()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if handle is not None and now - shown >= UPDATE_SECONDS:
            handle.update(_Line(label, done, total, now - started))
            shown = now
    final = _Line(label, done, total, time.perf_counter() - started, finished=True)
    if handle is not None:
        handle.update(final)
    else:
        print(final, file=sys.stderr)


class _Line:
    def __init__(self, label, done, total, seconds, finished=False):
        count = f"{done}/{total}" if total is not None else f"{done}"
        self.text = f"{label}: {count} done in {seconds:.1f} s" if finished else f"{label}: {count} ({seconds:.1f} s)"

    def __repr__(self):
        return self.text

    def __str__(self):
        return self.text
