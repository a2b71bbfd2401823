"""What every figure of the report shares: one colour per label (an optimizer, or a variant of one; the
same in every figure and run), panels in a grid, log axes with readable ticks (labels that would overlap
left out), limits set from the finite data only, marks for what cannot be drawn as a value (censored
medians, bounds on a ratio, runs pruned or diverged, infinite interval bounds, missing data), one legend
that shows each mark as drawn, and saving.

Every artist that stands for data carries a ``gid`` (``"<kind>|<label>|<panel>"``) so that tests can
check that what should be drawn is drawn."""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
from matplotlib.transforms import offset_copy  # noqa: E402

from benchmark.report.tables import OPTIMIZER_ORDER  # noqa: E402

REFERENCE = "0.45"  # the grey of reference lines (targets, parity) and of the marks' legend entries
_PALETTE = sns.color_palette("colorblind", 10)
# built-in backends: blue, sky, green (first-order); vermillion, pink, tan (Gauss-Newton); others the rest
# but the palette's grey, which is the reference lines' colour
_BUILT_IN = dict(zip(OPTIMIZER_ORDER, (0, 9, 2, 3, 4, 5)))
_FREE = [i for i, c in enumerate(_PALETTE) if i not in _BUILT_IN.values() and max(c) - min(c) > 0.2]


def colour(label: str):
    """A label's colour: fixed for the built-in backends, a stable one for any other name (a variant's too)."""
    if label in _BUILT_IN:
        return _PALETTE[_BUILT_IN[label]]
    return _PALETTE[_FREE[zlib.crc32(label.encode()) % len(_FREE)]]


@dataclass(frozen=True)
class Mark:
    """A marker for what is not drawn as a value, and its legend entry."""

    marker: str
    hollow: bool
    label: str


MARKS = {
    "censored": Mark("^", True, "censored: ≥ budget"),
    "not_reached": Mark("^", True, "did not reach the target"),
    "at_least": Mark("^", True, "censored: the ratio is at least this"),
    "at_most": Mark("v", True, "censored: the ratio is at most this"),
    "no_ratio": Mark("$?$", False, "no ratio: neither reached the target"),
    "pruned": Mark("v", True, "pruned"),
    "diverged": Mark("x", False, "diverged"),
}


def mark(ax, kind: str, x: float, y: float | None, label: str, gid: str, shift=None) -> None:
    """A ``MARKS[kind]`` marker in the label's colour at (x, y), or at the top of the axes where ``y``
    is None (a value beyond the panel: a censored median, a run with nothing to plot). ``shift``: the
    ``(i, n)`` of ``dodge``, as for ``interval``."""
    m, c = MARKS[kind], colour(label)
    top = y is None
    transform = dodge(ax, *shift, top=top) if shift else (ax.get_xaxis_transform() if top else ax.transData)
    ax.plot([x], [0.95 if top else y], ls="none", marker=m.marker, ms=7, mec=c, mfc="white" if m.hollow else c,
            transform=transform, gid=f"{kind}|{gid}", clip_on=not top, zorder=3)


def dodge(ax, i: int, n: int, top: bool = False):
    """The transform that draws the ``i``-th of ``n`` optimizers a few points right or left of its x, so
    that markers at the same place stay visible (a shift on the page, not in the data)."""
    base = ax.get_xaxis_transform() if top else ax.transData
    return offset_copy(base, fig=ax.figure, x=4.0 * (i - (n - 1) / 2), y=0.0, units="points")


def panel_title(setup: str, k: int, setups: int) -> str:
    return f"{setup}\nK = {k}" if setups > 1 else f"K = {k}"


def title(fig, text: str) -> None:
    """The figure's title, wrapped to its width (a figure of one panel is narrow); the figure grows by the
    height the title takes, so that a long title over a narrow figure never squeezes the panels."""
    # its top a few points below the figure's, whatever the figure's height (tight_layout keeps the panels
    # clear of a title at the very top, not of one at matplotlib's default 98% of a tall figure)
    at_top = offset_copy(fig.transFigure, fig=fig, y=-4.0, units="points")
    t = fig.suptitle(text, wrap=True, fontsize=11, y=1.0, transform=at_top)
    grow(fig, t.get_window_extent(fig.canvas.get_renderer()).height / fig.dpi + 0.1)


def grow(fig, inches: float) -> None:
    """Make the figure taller by ``inches``, its width unchanged."""
    w, h = fig.get_size_inches()
    fig.set_size_inches(w, h + inches)


def panels(keys: list, ncols: int = 3, size: tuple[float, float] = (4.8, 3.7), **kw):
    """A figure with one axes per key (rows of at most ``ncols``; unused axes hidden): (fig, {key: ax})."""
    keys = keys or [None]
    ncols = min(ncols, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows + 0.6), squeeze=False, **kw)
    flat = list(axes.flat)
    for ax in flat[len(keys):]:
        ax.set_visible(False)
    return fig, dict(zip(keys, flat))


def finite(values) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def set_limits(ax, values, axis: str = "y", log: bool = False, default: tuple[float, float] = (1.0, 10.0),
               floor: float | None = None) -> None:
    """Limits from the finite values drawn (positive ones on a log axis), padded; ``default`` without any."""
    v = [x for x in finite(values) if x > 0 or not log]
    lo, hi = (min(v), max(v)) if v else default
    if log:
        lo, hi = (lo / 2, hi * 2) if lo == hi else (lo / 1.25, hi * 1.25)
    else:
        span = (hi - lo) or abs(hi) or 1.0
        lo, hi = lo - 0.08 * span, hi + 0.12 * span
    if floor is not None:
        lo = max(lo, floor)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


class Thinned(mticker.Formatter):
    """Labels ticks with ``label(value)`` and leaves out any whose rendered label would overlap one kept:
    the ticks that ``rank`` puts first are kept first (on a log axis, powers of ten, then 5, 2 and 3 ×),
    then from the low end."""

    def __init__(self, label, rank=lambda v: 0) -> None:
        self.label, self.rank = label, rank

    def __call__(self, x, pos=None) -> str:
        return self.label(x)

    def format_ticks(self, values) -> list[str]:
        labels = [self.label(v) for v in values]
        if self.axis is None or not len(values):
            return labels
        kept = self._kept(values, labels)
        return [text if i in kept else "" for i, text in enumerate(labels)]

    def _kept(self, values, labels) -> set[int]:
        horizontal = self.axis.axis_name == "x"
        ax = self.axis.axes
        lo, hi = sorted(self.axis.get_view_interval())
        to_px = ax.get_xaxis_transform() if horizontal else ax.get_yaxis_transform()
        font = FontProperties(size=plt.rcParams["xtick.labelsize" if horizontal else "ytick.labelsize"])
        points = font.get_size_in_points()
        scale = ax.figure.dpi / 72
        spans = {}
        for i, (v, text) in enumerate(zip(values, labels)):
            if lo <= v <= hi and text:
                at = to_px.transform((v, 0) if horizontal else (0, v))[0 if horizontal else 1]
                size = TextPath((0, 0), text, prop=font).get_extents().width if horizontal else 1.2 * points
                half = (size + 0.4 * points) * scale / 2  # with a gap of 0.4 em between neighbours
                spans[i] = (at - half, at + half)
        kept: list[int] = []
        for i in sorted(spans, key=lambda j: (self.rank(values[j]), values[j])):
            if all(spans[i][1] <= spans[j][0] or spans[j][1] <= spans[i][0] for j in kept):
                kept.append(i)
        return {i for i in range(len(values)) if i not in spans} | set(kept)


def _plain(v: float) -> str:
    return f"{v:,.0f}" if v >= 1 else f"{v:g}"


def _log_rank(v: float) -> int:
    """Which ticks of a log axis to label first: 1, 5, 2, 3 (× 10^n), then the rest."""
    mantissa = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
    return {1.0: 0, 5.0: 1, 2.0: 2, 3.0: 3}.get(mantissa, 4)


def readable_log(ax, axis: str = "y") -> None:
    """A log axis ticked at 1, 2, 3, 5 × 10^n and labelled with plain numbers, as many as fit."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    with warnings.catch_warnings():  # a panel with nothing positive drawn yet: its limits are set next
        warnings.filterwarnings("ignore", "Data has no positive values")
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    target.set_major_formatter(Thinned(_plain, _log_rank))
    target.set_minor_formatter(mticker.NullFormatter())


def ticks_at(ax, values, axis: str = "x", fmt: str = "{:,.0f}") -> None:
    """Ticks exactly at ``values`` (e.g. the batch sizes run), no minor ticks, labels that would overlap left out."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(mticker.FixedLocator(sorted(set(finite(values)))))
    target.set_major_formatter(Thinned(fmt.format))
    target.set_minor_locator(mticker.NullLocator())


def interval(ax, x: float, y: float, lo, hi, label: str, gid: str, shift=None, **kw) -> None:
    """A point with its interval; an infinite upper bound is an arrow to the top of the axes. ``shift``: the
    ``(i, n)`` of ``dodge``, which draws it a few points aside, so that equal values of several optimizers all
    show."""
    c = colour(label)
    at, top = (dodge(ax, *shift), dodge(ax, *shift, top=True)) if shift else (ax.transData, ax.get_xaxis_transform())
    if lo is None and hi is None:  # no interval (one seed): the point alone, no zero-length bar with its caps
        ax.plot([x], [y], color=c, gid=gid, transform=at, **kw)
        return
    lo = y if lo is None or not math.isfinite(float(lo)) else float(lo)
    top_open = hi is not None and math.isinf(float(hi))
    hi = y if hi is None or top_open else float(hi)
    ax.errorbar([x], [y], yerr=[[max(0.0, y - lo)], [max(0.0, hi - y)]], color=c, capsize=3, gid=gid,
                transform=at, **kw)
    if top_open:
        ax.annotate("", xy=(x, 0.985), xycoords=top, xytext=(x, y), textcoords=at,
                    arrowprops={"arrowstyle": "->", "color": c, "lw": 1}, gid=f"open|{gid}")


def say(ax, text: str, empty: bool = False) -> None:
    """Text in the middle of a panel, for what is not there to draw (``empty``: nothing else is, no ticks)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.35",
            gid="note")
    if empty:
        ax.set_xticks([])
        ax.set_yticks([])


def layout_legend(fig) -> float:
    """One legend for the whole figure, below its panels (the colours are the same in every panel), with
    an entry for each kind of mark drawn, in the shape drawn, the figure grown by the height it takes; that
    height, as a fraction of the figure."""
    seen: dict[str, object] = {}
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        for h, label in zip(handles, labels):
            seen.setdefault(label, h)
    drawn = {str(a.get_gid()).split("|")[0] for a in fig.findobj(Line2D)}
    for kind, m in MARKS.items():
        if kind in drawn:
            seen.setdefault(m.label, Line2D([], [], ls="none", marker=m.marker, ms=7, mec=REFERENCE,
                                            mfc="white" if m.hollow else REFERENCE))
    if not seen:
        return 0.0
    width = fig.get_size_inches()[0]
    ncol = max(1, min(len(seen), int(width / 2.2)))
    rows = math.ceil(len(seen) / ncol)
    inches = 0.1 + 0.25 * rows
    grow(fig, inches)
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return inches / fig.get_size_inches()[1]


DPI = 110  # of the PNGs


def finish(fig) -> None:
    """The legend below the panels, and the panels laid out above it."""
    fig.tight_layout(rect=(0, layout_legend(fig), 1, 1))


def save(fig, out: Path, name: str) -> list[Path]:
    finish(fig)
    paths = []
    for ext in ("png", "svg"):
        p = out / f"{name}.{ext}"
        fig.savefig(p, dpi=DPI, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    plt.close(fig)
    return paths
