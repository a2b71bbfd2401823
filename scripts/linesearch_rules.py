"""How the cheaper Gauss-Newton line-search rule compares with the release's, on real sweeps:

    python scripts/linesearch_rules.py RESULTS_ALL RESULTS_FIRST_WORSE

RESULTS_ALL holds a sweep with the release's rule (every candidate evaluated: each step's record keeps
every candidate's loss), RESULTS_FIRST_WORSE the same sweep with ``--set gn.ls_rule=first_worse`` (any GN
backend). Prints, from the first, how often ``first_worse`` would have picked the same scale on the same
losses, and the loss it would have given up when not; then, per cell, both sweeps' selected settings,
median steps to each target over seeds and line-search passes per step.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.report.frames import STEPS, run_frames, targets_in  # noqa: E402
from benchmark.report.missing import as_inf  # noqa: E402
from benchmark.report.tables import select_final  # noqa: E402
from benchmark.results.store import ResultsStore  # noqa: E402
from optimizers import get_backend, make_hyper  # noqa: E402
from optimizers.gauss_newton.linesearch import candidates, rule_choice  # noqa: E402


def agreement(records: list[dict]) -> None:
    same = total = 0
    lost = []
    for rec in records:
        run = rec["run"]
        hp = make_hyper(get_backend(run["optimizer"]),
                        {k: run["hparams"][k] for k in run["overrides"]})
        cands = candidates(hp.ls_range, hp.ls_reject)
        for step in rec["steps"]:
            losses = step.get("ls_losses")
            if not losses:
                continue
            total += 1
            full, cheap = rule_choice(cands, losses, "all"), rule_choice(cands, losses, "first_worse")
            same += full == cheap
            if full != cheap:
                lost.append(losses[cands.index(cheap)] - losses[cands.index(full)])
    print(f"first_worse picks the release's scale in {same} of {total} steps ({same / max(total, 1):.1%});"
          + (f" where not, its loss is higher by {statistics.median(lost):.2g} nats (median; max {max(lost):.2g})"
             if lost else ""))


def evaluated(records: list[dict]) -> str:
    counts = [sum(v == v for v in step["ls_losses"]) for rec in records for step in rec["steps"] if step.get("ls_losses")]
    return f"{statistics.mean(counts):.2f} of {max(len(step['ls_losses']) for rec in records for step in rec['steps'] if step.get('ls_losses'))}" if counts else "none"


def cells(folder: Path) -> dict:
    runs, _ = run_frames(ResultsStore(folder).records()[0])
    runs = select_final(runs)
    final = runs[runs["final"]]
    out = {}
    targets = targets_in(final.columns)[::-1]
    for (_, k), cell in final.groupby(["label", "k"]):  # a variant (gn[ls_rule=...]) against its backend's row
        ls = [c.get("forward", 0) for c in cell["costs"]]
        out[(cell["optimizer"].iloc[0], k)] = {
            "setting": cell["setting"].iloc[0],
            "steps": {t: statistics.median(as_inf(v) for v in cell[f"{STEPS}{t}"]) for t in targets},
            "forward_per_step": statistics.median(f / max(1, s) for f, s in zip(ls, cell["steps_run"])),
        }
    return out


def main(a: Path, b: Path) -> None:
    agreement(ResultsStore(a).records()[0])
    print(f"candidates evaluated per step: {evaluated(ResultsStore(a).records()[0])} vs "
          f"{evaluated(ResultsStore(b).records()[0])}")
    ca, cb = cells(a), cells(b)
    for key in sorted(ca.keys() & cb.keys()):
        x, y = ca[key], cb[key]
        print(f"{key[0]} K={key[1]}: lr {x['setting'].get('lr')} vs {y['setting'].get('lr')}; forward passes/step "
              f"{x['forward_per_step']:.1f} vs {y['forward_per_step']:.1f}; median steps "
              + ", ".join(f"{t}: {x['steps'][t]:g} vs {y['steps'][t]:g}" for t in x["steps"]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
