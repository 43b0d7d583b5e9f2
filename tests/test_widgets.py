"""nnopt.widgets.explore: live re-rendering in a kernel, precomputed frames linked on the client in the book."""

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from nnopt.widgets import explore  # noqa: E402

RENDERED = []


def render(a, b):
    RENDERED.append((a, b))
    figure, axes = plt.subplots(figsize=(1, 1))
    axes.plot([0, 1], [a, b])
    return figure


def images(widget):
    if isinstance(widget, widgets.Image):
        return [widget]
    return [image for child in getattr(widget, "children", ()) for image in images(child)]


def test_static_mode_precomputes_every_frame_and_links_sliders_on_the_client():
    RENDERED.clear()
    box = explore(render, {"a": [1.0, 2.0, 3.0], "b": [("one", 1), ("two", 2)]}, initial={"a": 1}, mode="static")
    sliders = [child for child in box.children if isinstance(child, widgets.SelectionSlider)]
    stack = box.children[-1]
    assert [s.description for s in sliders] == ["a", "b"]
    assert len({s.style.description_width for s in sliders}) == 1  # the tracks line up
    assert sorted(RENDERED) == [(a, b) for a in (1.0, 2.0, 3.0) for b in (1, 2)]
    assert isinstance(stack, widgets.Stack) and stack.selected_index == 1
    assert len(images(stack)) == 6 and len({bytes(image.value) for image in images(stack)}) == 6
    links = [w for w in widgets.widget._instances.values() if isinstance(w, widgets.widget_link.Link)]
    assert any(link.source == (sliders[0], "index") and link.target == (stack, "selected_index") for link in links)
    assert sum(link.source == (sliders[1], "index") for link in links) >= 3


def test_live_mode_renders_on_demand():
    RENDERED.clear()
    box = explore(render, {"a": [1.0, 2.0], "b": [5, 6]}, mode="live")
    assert RENDERED == [(1.0, 5)]
    image = box.children[-1]
    before = image.value
    box.children[1].value = 1
    assert RENDERED[-1] == (1.0, 6) and image.value != before


def test_labels_describe_the_sliders_and_frames_are_sharp_and_not_stretched():
    box = explore(render, {"a": [1.0], "b": [5]}, labels={"a": "learning rate η"}, mode="live")
    sliders, image = box.children[:2], box.children[-1]
    assert [s.description for s in sliders] == ["learning rate η", "b"]
    assert sliders[0].style.description_width == sliders[1].style.description_width
    pixels = int.from_bytes(bytes(image.value)[16:20], "big")
    assert image.layout.width == f"{pixels / 1.5:.0f}px" and image.layout.max_width == "100%"
    assert pixels >= 1.4 * 96  # a 1-inch figure rendered at 1.5 device pixels per CSS pixel
    with pytest.raises(ValueError, match="no slider: c"):
        explore(render, {"a": [1.0], "b": [5]}, labels={"c": "x"})


@pytest.mark.parametrize(
    "sliders,mode,message",
    [({}, "live", "at least one"), ({"not a name": [1]}, "live", "not a valid name"), ({"a": []}, "live", "no values"),
     ({"a": [1]}, "sometimes", "mode must be")],
)
def test_bad_arguments(sliders, mode, message):
    with pytest.raises(ValueError, match=message):
        explore(render, sliders, mode=mode)
