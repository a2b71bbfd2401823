"""What every figure of the report shares: one colour per optimizer (the same in every figure and run),
panels in a grid, log axes with readable ticks, limits set from the finite data only, marks for what
cannot be drawn (censored medians, infinite interval bounds, missing data) and saving.

Every artist that stands for data carries a ``gid`` (``"<kind>|<optimizer>|<panel>"``) so that tests can
check that what should be drawn is drawn."""

from __future__ import annotations

import math
import warnings
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.tables import OPTIMIZER_ORDER  # noqa: E402

_PALETTE = sns.color_palette("colorblind", 10)
# built-in backends: blue, sky, green (first-order); vermillion, pink, tan (Gauss-Newton); others the rest
_BUILT_IN = dict(zip(OPTIMIZER_ORDER, (0, 9, 2, 3, 4, 5)))
_FREE = [i for i in range(len(_PALETTE)) if i not in _BUILT_IN.values()]
CENSORED = "censored: ≥ budget"


def colour(optimizer: str):
    """The optimizer's colour: fixed for the built-in backends, a stable one for any other name."""
    if optimizer in _BUILT_IN:
        return _PALETTE[_BUILT_IN[optimizer]]
    return _PALETTE[_FREE[zlib.crc32(optimizer.encode()) % len(_FREE)]]


def panel_title(workload: str, k: int, workloads: int) -> str:
    return f"{workload}\nK = {k}" if workloads > 1 else f"K = {k}"


def title(fig, text: str) -> None:
    """The figure's title, wrapped to its width (a figure of one panel is narrow)."""
    fig.suptitle(text, wrap=True, fontsize=11)


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


def readable_log(ax, axis: str = "y") -> None:
    """A log axis ticked at 1, 2, 3, 5 × 10^n and labelled with plain numbers."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    with warnings.catch_warnings():  # a panel with nothing positive drawn yet: its limits are set next
        warnings.filterwarnings("ignore", "Data has no positive values")
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    target.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    target.set_minor_formatter(mticker.NullFormatter())


def ticks_at(ax, values, axis: str = "x", fmt: str = "{:,.0f}") -> None:
    """Ticks exactly at ``values`` (e.g. the batch sizes run), no minor labels, so labels never overlap."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    values = sorted(set(finite(values)))
    target.set_major_locator(mticker.FixedLocator(values))
    target.set_major_formatter(mticker.FixedFormatter([fmt.format(v) for v in values]))
    target.set_minor_locator(mticker.NullLocator())


def interval(ax, x: float, y: float, lo, hi, optimizer: str, gid: str, **kw) -> None:
    """A point with its interval; an infinite upper bound is an arrow to the top of the axes."""
    c = colour(optimizer)
    lo = y if lo is None or not math.isfinite(float(lo)) else float(lo)
    top_open = hi is not None and math.isinf(float(hi))
    hi = y if hi is None or top_open else float(hi)
    ax.errorbar([x], [y], yerr=[[max(0.0, y - lo)], [max(0.0, hi - y)]], color=c, capsize=3, gid=gid, **kw)
    if top_open:
        ax.annotate("", xy=(x, 0.985), xycoords=("data", "axes fraction"), xytext=(x, y), textcoords="data",
                    arrowprops={"arrowstyle": "->", "color": c, "lw": 1}, gid=f"open|{gid}")


def mark_censored(ax, x: float, optimizer: str, gid: str) -> None:
    """A hollow triangle at the top of the axes: the median never reached the target within the budget."""
    ax.plot([x], [0.95], marker="^", ms=8, ls="none", mfc="white", mec=colour(optimizer),
            transform=ax.get_xaxis_transform(), gid=f"censored|{gid}", clip_on=False)


def say(ax, text: str, empty: bool = False) -> None:
    """Text in the middle of a panel, for what is not there to draw (``empty``: nothing else is, no ticks)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.35",
            gid="note")
    if empty:
        ax.set_xticks([])
        ax.set_yticks([])


def layout_legend(fig) -> float:
    """One legend for the whole figure, below its panels (the colours are the same in every panel), with
    the censored marker where one is drawn; the height it takes, as a fraction of the figure."""
    seen: dict[str, object] = {}
    censored = False
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        for h, label in zip(handles, labels):
            seen.setdefault(label, h)
        censored |= any(str(a.get_gid()).startswith("censored|") for a in ax.get_children())
    if censored:
        seen[CENSORED] = matplotlib.lines.Line2D([], [], marker="^", ls="none", mfc="white", mec="0.3")
    if not seen:
        return 0.0
    width = fig.get_size_inches()[0]
    ncol = max(1, min(len(seen), int(width / 1.6)))
    rows = math.ceil(len(seen) / ncol)
    height = (0.1 + 0.25 * rows) / fig.get_size_inches()[1]
    fig.legend(list(seen.values()), list(seen), loc="lower center", ncol=ncol, fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return height


def save(fig, out: Path, name: str) -> list[Path]:
    fig.tight_layout(rect=(0, layout_legend(fig), 1, 1))
    paths = []
    for ext in ("png", "svg"):
        p = out / f"{name}.{ext}"
        fig.savefig(p, dpi=110, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    plt.close(fig)
    return paths
