"""The sensitivity figure, the ablation of Marin's optimizer study (Wen et al. 2026): for each backend tuned by
coordinate descent (the ``coordinate`` protocol's records of a setup and K), the selected setting's steps to the
tightest target with one hyperparameter moved at a time. One panel per backend; one row per searched
hyperparameter (the setting's keys but those fixed on the command line and those the walk never moved at this K,
in the backend's declared order where it is installed here); in a row, a dot for each value the walk tried while every other key sat at the selected
setting's value (the axis' trials, seed 0), labelled with its value (the selected one in bold; dots that lie
together share one label, their values in the order of the dots); a run that never reached the target at the
budget, with its mark (censored, pruned, diverged); and a dashed line at the selected setting's own steps, which
passes through its dot in every row. Steps start from 0, so that a ratio of steps reads as a ratio of lengths."""

from __future__ import annotations

import pandas as pd
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath

from benchmark.report.frames import STEPS
from benchmark.report.missing import as_float
from benchmark.report.plotting import (
    REFERENCE,
    Thinned,
    colour,
    mark,
    panels,
    say,
    set_limits,
    title,
)
from benchmark.report.tables import optimizer_rank
from optimizers.registry import registry

PROTOCOL = "coordinate"
_BY_STATUS = {"diverged": "diverged", "pruned": "pruned"}  # any other run without steps: censored
FONT = 7.0  # of the value labels
LEVELS = ((6, "bottom"), (-6, "top"))  # a value label's offset from its dot, in points: above, below
NEAR = 6.0  # dots closer than this, in points, share a label


def value_text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _keys(optimizer: str, setting: dict, fixed) -> list[str]:
    """The searched keys of a setting: in the backend's declared order where it is installed, then by name."""
    backend = registry().get(optimizer)
    declared = list(getattr(backend, "search_space", {}) or {})
    searched = [k for k in setting if k not in set(fixed if isinstance(fixed, list) else [])]
    return sorted(searched, key=lambda k: (declared.index(k) if k in declared else len(declared), k))


def _same_but(a: dict, b: dict, key: str, keys: list[str]) -> bool:
    return key in a and all(a.get(k) == b.get(k) for k in keys if k != key)


def sensitivity_cells(runs: pd.DataFrame) -> list[dict]:
    """Per (setup, K, label) of the coordinate protocol's tuning runs: the selected setting, its searched keys,
    and per key its axis trials at seed 0 as (value, steps to the tightest target or None, status)."""
    if "protocol" not in runs or "final" not in runs:
        return []
    tune = runs[(runs["role"] == "tune") & (runs["protocol"] == PROTOCOL)]
    cells = []
    for (setup, k, label), cell in tune.groupby(["setup", "k", "label"], sort=True):
        seed0 = cell[cell["seed"] == cell["seed"].min()]
        chosen = seed0[seed0["final"]]
        targets = sorted({float(t) for ts in seed0["targets"] for t in ts})
        if chosen.empty or not targets:
            continue
        first = chosen.iloc[0]
        column = f"{STEPS}{targets[0]:g}"
        selected, keys = first["setting"], _keys(first["optimizer"], first["setting"], first.get("fixed"))
        # a key the walk never moved at this K (Phase II re-sweeps only some) was not searched here
        keys = [key for key in keys if len({repr(s.get(key)) for s in seed0["setting"]}) > 1] or keys
        budgets = [float(b) for b in seed0["budget"] if as_float(b) is not None]
        axes = {key: sorted(((r["setting"][key], as_float(r.get(column)), r["status"])
                             for r in seed0.to_dict("records") if _same_but(r["setting"], selected, key, keys)),
                            key=lambda t: (str(type(t[0])), t[0]))
                for key in keys}
        cells.append({"setup": setup, "k": int(k), "label": label, "target": targets[0], "selected": selected,
                      "selected_steps": as_float(first.get(column)), "keys": keys, "axes": axes,
                      "budget": max(budgets) if budgets else None})
    return sorted(cells, key=lambda c: (c["setup"], c["k"], optimizer_rank(c["label"])))


def _width(text: str, bold: bool) -> float:
    """A label's width in points."""
    font = FontProperties(size=FONT, weight="bold" if bold else "normal")
    return TextPath((0, 0), text, prop=font).get_extents().width


def _clusters(ax, dots: list[tuple[float, str, bool]]) -> list[list[tuple[float, str, bool]]]:
    """A row's dots (x, value, selected) from left to right, those within a marker of the one before together."""
    near = NEAR * ax.figure.dpi / 72
    out: list[list] = []
    for dot in sorted(dots, key=lambda d: d[0]):
        if out and ax.transData.transform((dot[0], 0))[0] - ax.transData.transform((out[-1][-1][0], 0))[0] <= near:
            out[-1].append(dot)
        else:
            out.append([dot])
    return out


def _row_labels(ax, row: int, dots: list[tuple[float, str, bool]], gid: str) -> None:
    """A row's values as labels: one per cluster of dots (their values in the order of the dots), above or below
    it, whichever overlaps no label placed before; where neither is free, the cluster joins the label it overlaps.
    The selected value's own label is bold."""
    scale = ax.figure.dpi / 72
    placed: list[tuple[int, list]] = []  # (level, its dots)

    def span(group) -> tuple[float, float]:
        centre = ax.transData.transform((sum(d[0] for d in group) / len(group), row))[0]
        half = (_width(", ".join(d[1] for d in group), True) * 1.15 + 3) * scale / 2
        return centre - half, centre + half

    for group in _clusters(ax, dots):
        lo, hi = span(group)
        free = [lv for lv in range(len(LEVELS)) if all(lv != at or span(g)[1] <= lo or hi <= span(g)[0] for at, g in placed)]
        if free:
            placed.append((free[0], group))
        else:
            at, before = placed.pop()
            placed.append((at, before + group))
    for at, group in placed:
        off, va = LEVELS[at]
        bold = len(group) == 1 and group[0][2]
        ax.annotate(", ".join(d[1] for d in group), xy=(sum(d[0] for d in group) / len(group), row), xytext=(0, off),
                    textcoords="offset points", ha="center", va=va, fontsize=FONT, color="0.2",
                    fontweight="bold" if bold else "normal", gid=f"value|{gid}",
                    bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.8})  # over the line


def _panel(ax, c: dict, setups: int, legend: bool) -> None:
    """One backend's panel (``legend``: the one whose line names the selected setting's steps in the legend)."""
    label, keys = c["label"], c["keys"]
    budget = c["budget"] or max([s for a in c["axes"].values() for _, s, _ in a if s is not None], default=1.0)
    panel = f"{c['setup']}|{c['k']}"
    drawn, dots = [0.0], {}  # steps from 0: a ratio of steps reads as a ratio of lengths
    for row, key in enumerate(keys):
        for value, steps, status in c["axes"][key]:
            gid = f"{label}|{panel}|{key}|{value_text(value)}"
            x = steps if steps is not None else budget
            if steps is None:
                mark(ax, _BY_STATUS.get(status, "censored"), budget, row, label, gid)
                drawn.append(budget)
            else:
                ax.plot([x], [row], ls="none", marker="o", ms=6, color=colour(label), label=label, gid=f"dot|{gid}",
                        zorder=3)
                drawn.append(x)
            dots.setdefault(row, []).append((x, value_text(value), value == c["selected"].get(key)))
    chosen = c["selected_steps"] if c["selected_steps"] is not None else budget
    ax.axvline(chosen, color=REFERENCE, ls="--", lw=1, label="the selected setting's steps (seed 0)" if legend else None,
               gid=f"selected|{label}|{panel}")
    drawn.append(chosen)
    ax.set_yticks(range(len(keys)), keys)
    ax.set_ylim(len(keys) - 0.4, -0.6)  # the first declared key on top, room for the labels of the last
    set_limits(ax, drawn, axis="x", floor=0.0)
    ax.xaxis.set_major_formatter(Thinned("{:g}".format))
    where = f"{c['setup']}, K = {c['k']}" if setups > 1 else f"K = {c['k']}"
    ax.set(title=f"{label}\n{where}", xlabel=f"steps to {c['target']:g} (seed 0)")
    for row, key in enumerate(keys):
        _row_labels(ax, row, dots.get(row, []), f"{label}|{panel}|{key}")


def fig_sensitivity(runs):
    cells = sensitivity_cells(runs)
    rows = max((len(c["keys"]) for c in cells), default=1)
    fig, axes = panels([(c["setup"], c["k"], c["label"]) for c in cells], size=(4.8, 1.4 + 0.6 * rows))
    setups = len({(c["setup"], c["k"]) for c in cells})
    for i, (c, ax) in enumerate(zip(cells, axes.values())):
        _panel(ax, c, setups, legend=i == len(cells) - 1)
    if not cells:
        say(next(iter(axes.values())), "no coordinate-tuned records here:\nno sensitivity to draw", empty=True)
    title(fig, "Sensitivity (Marin's ablation): the selected setting's steps to the tightest target with one "
               "hyperparameter moved at a time (dots: the values tried with every other at its selected value, "
               "seed 0; dashed: the selected setting; marks at the budget: runs that never reached it)")
    return fig
