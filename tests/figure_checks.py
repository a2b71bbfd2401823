"""Checks of a figure as rendered, shared by the figure tests: marks where they belong, panels clear of the
title and legend, tick labels apart, legends that show what is drawn, colours apart from the reference grey."""

import itertools
import math
from collections import defaultdict

from matplotlib.colors import to_rgb, to_rgba
from matplotlib.lines import Line2D
from matplotlib.text import Text

from benchmark.report.plotting import DPI, MARKS, colour


def kind(artist) -> str:
    return str(artist.get_gid()).split("|")[0]


def hollow(line: Line2D) -> bool:
    face = line.get_markerfacecolor()
    return face == "none" or to_rgba(face) == (1.0, 1.0, 1.0, 1.0)


def no_censored_mark_on_the_speedup_side(fig) -> None:
    """In the speedup figure a censored optimizer's mark is at or below 1: it is at most AdamW's steps ÷ the
    budget, never a speedup (and ? at 1 where neither side reached the target)."""
    fig.canvas.draw()
    for ax in fig.axes:
        one = ax.transData.transform((0.0, 1.0))[1]
        for line in ax.get_lines():
            if kind(line) in ("censored", "at_most", "no_ratio"):
                y = line.get_transform().transform(line.get_xydata())[0][1]
                assert y <= one + 0.5, (line.get_gid(), y, one)


def panels_clear_of_the_title_and_legend(name, fig) -> None:
    """Every visible panel (its frame and its title) lies below the figure's title and above its legend."""
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer).y0 if fig._suptitle else math.inf
    bottom = max((leg.get_window_extent(renderer).y1 for leg in fig.legends), default=-math.inf)
    for ax in fig.axes:
        if ax.get_visible():
            frame = ax.get_window_extent(renderer)
            assert max(frame.y1, ax.title.get_window_extent(renderer).y1) <= top + 0.5, (name, ax.get_title())
            assert frame.y0 >= bottom - 0.5, (name, ax.get_title())


def tick_labels_do_not_overlap(name, fig) -> None:
    """No two tick labels of an axis overlap as rendered (labels set at an angle are left out: the box
    around a slanted label is wider than the label)."""
    fig.set_dpi(DPI)  # as saved
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            texts = [t.label1 for t in axis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_visible()
                     and t.label1.get_text() and t.label1.get_rotation() == 0]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
            for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
                assert not box_a.overlaps(box_b), (name, ax.get_title(), axis.axis_name, a, b)


_GLYPHS = {"▲": ("^", False), "△": ("^", True), "▼": ("v", False), "▽": ("v", True)}


def legend_shows_what_is_drawn(name, fig) -> None:
    """Every legend entry has the marker shape and fill of what it stands for as drawn (an optimizer's
    line, a kind of mark), and a triangle named in any text is one of the marks, as hollow as drawn."""
    drawn = defaultdict(set)
    for line in fig.findobj(Line2D):
        label = MARKS[kind(line)].label if kind(line) in MARKS else line.get_label()
        if line.get_marker() not in (None, "None", "") and line.get_xydata().size:
            drawn[label].add((line.get_marker(), hollow(line)))
    for legend in fig.legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if drawn.get(text.get_text()):
                assert drawn[text.get_text()] == {(handle.get_marker(), hollow(handle))}, (name, text.get_text())
    shapes = {shape for shapes in drawn.values() for shape in shapes}
    marks = {(m.marker, m.hollow) for m in MARKS.values()}
    for text in fig.findobj(Text):
        for glyph in set(text.get_text()) & set(_GLYPHS):
            assert _GLYPHS[glyph] in marks, (name, glyph, text.get_text())
            same = {hollow for marker, hollow in shapes if marker == _GLYPHS[glyph][0]}
            assert not same or _GLYPHS[glyph][1] in same, (name, glyph, text.get_text())


def distinct(a, b) -> bool:
    return sum((x - y) ** 2 for x, y in zip(to_rgb(a), to_rgb(b))) ** 0.5 > 0.2


def colours_apart_from_the_references(name, fig, optimizers) -> None:
    for line in fig.findobj(Line2D):
        if kind(line) == "reference":
            assert all(distinct(colour(o), line.get_color()) for o in optimizers), (name, line.get_gid())


def no_two_optimizers_on_one_spot(fig, field: int = 2) -> None:
    """Markers of different optimizers never share a spot on the page (the optimizer: the ``field``-th part of
    a marker's gid, 2 in the learning-rate figure, 1 in the figures of the summary table)."""
    fig.canvas.draw()
    spots = defaultdict(set)
    for ax in fig.axes:
        for line in ax.get_lines():
            parts = str(line.get_gid()).split("|")
            if len(parts) > field and line.get_marker() not in (None, "None", ""):
                for x, y in line.get_transform().transform(line.get_xydata()):
                    spots[(id(ax), round(x), round(y))].add(parts[field])
    assert all(len(opts) == 1 for opts in spots.values()), [o for o in spots.values() if len(o) > 1]
