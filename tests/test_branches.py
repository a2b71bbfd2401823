"""Steps-to-target under WSD, by cooldown branches: the search's rule (benchmark/results/budgets.py) on a synthetic
monotone loss, and real WSD trials (benchmark/trial/branches.py) whose steps-to-target is the smallest budget that
reaches each target, checked against runs of that budget and one step less from scratch, whose constant phase
stops at the bound its crossing gives (and runs on where the bound's branch misses), and resumed to the same
record after an interruption in either phase."""

import dataclasses
import math

import pytest

from benchmark.data.streams import PackedSequences, validation_batches
from benchmark.results.budgets import bound_budget, branch_start, candidate_budgets, search, smallest_budgets
from benchmark.results.store import ResultsStore
from benchmark.results.validate import outcome_problem
from benchmark.trial.branches import Branches, run_branch
from benchmark.trial.hardware import Hardware
from benchmark.trial.identity import Trial
from benchmark.trial.run import build_module, run_trial
from benchmark.trial.warmstart import trial_start
from benchmark.workload.presets import get_workload

CPU = get_workload("cpu")


def counted(loss):
    calls = []

    def final_loss(n):
        calls.append(n)
        return loss(n)

    return final_loss, calls


def test_candidate_budgets_start_on_the_resolution_grid_one_step_apart_below_30_and_5_percent_above():
    budgets = candidate_budgets(CPU.resolution_grid(), CPU.max_steps, 0.2)
    assert budgets[:50] == list(range(1, 51)) and budgets[-1] == CPU.max_steps
    assert all(b - a <= max(1, 0.05 * b) for a, b in zip(budgets, budgets[1:]))
    assert {branch_start(n, 0.2) for n in budgets} <= {*CPU.resolution_grid()}
    every_other = candidate_budgets(range(0, 41, 2), 40, 0.2)  # a sparser grid: only branches starting on it
    assert all(branch_start(n, 0.2) % 2 == 0 for n in every_other[:-1]) and 3 in every_other and 4 not in every_other


def test_the_bisection_finds_the_smallest_reaching_budget_runs_each_branch_once_and_shares_them():
    budgets = candidate_budgets(CPU.resolution_grid(), CPU.max_steps, 0.2)
    loss = lambda n: 3.0 + 5.0 / n  # noqa: E731  (falls as the budget grows)
    targets = (5.5, 3.5, 3.1, 3.05)  # loosest first; the last needs a budget of 100: censored
    final_loss, calls = counted(loss)
    found = smallest_budgets(budgets, targets, final_loss)
    for t in targets[:3]:
        smallest = min(n for n in budgets if loss(n) <= t)
        below = max((n for n in budgets if n < smallest), default=0)
        assert found[t] == (smallest, smallest - below), t
    assert found[5.5] == (2, 1) and found[3.5] == (10, 1) and found[3.1] == (50, 1)  # dense up to 50: one step
    assert found[3.05] == (None, None)
    assert calls[0] == CPU.max_steps and len(calls) == len(set(calls))  # the budget's own branch first, each once
    assert len(calls) <= 1 + 3 * math.ceil(math.log2(len(budgets)))
    alone = [counted(loss) for _ in targets[:3]]
    for t, (f, _) in zip(targets, alone):
        smallest_budgets(budgets, [t], f)
    assert len(calls) < sum(len(c) for _, c in alone)  # a branch that bounds several targets runs once for all


def test_a_sparse_grid_resolves_to_the_gap_between_candidates_and_a_target_the_budget_misses_is_censored():
    budgets = candidate_budgets(range(0, 61, 6), 60, 0.2)  # branches start every 6 steps only
    found = smallest_budgets(budgets, (4.0,), lambda n: 3.0 + 20.0 / n)  # reached from a budget of 20 on
    n, bracket = found[4.0]
    assert n == min(b for b in budgets if b >= 20) and bracket == n - max(b for b in budgets if b < 20) > 1
    final_loss, calls = counted(lambda n: 3.0 + 20.0 / n)
    assert smallest_budgets(budgets, (3.2,), final_loss) == {3.2: (None, None)} and calls == [60]
    assert smallest_budgets(budgets, (3.2,), lambda n: None) == {3.2: (None, None)}  # diverged: never reached


def test_the_bound_is_the_first_budget_cooling_down_after_the_crossing_and_a_missed_bound_searches_everything():
    budgets = candidate_budgets(CPU.resolution_grid(), CPU.max_steps, 0.2)
    evals = [(0, 9.0), (4, 5.0), (8, 3.9), (12, 3.4), (16, 3.2)]
    assert bound_budget(budgets, 0.2, evals, 3.5) == 15  # crossed at 12: 15 - round(3.0) = 12
    assert bound_budget(budgets, 0.2, evals, 3.0) is None and bound_budget(budgets, 0.2, [], 3.5) is None
    loss = lambda n: 3.0 + 5.0 / n  # noqa: E731
    final_loss, calls = counted(loss)
    found, final = search(budgets, (3.6, 3.5), final_loss, 15, CPU.max_steps)
    assert found == {3.6: (9, 1), 3.5: (10, 1)} and final == loss(15)  # the same as searching every budget
    assert calls[0] == 15 and max(calls) == 15 and len(calls) <= 1 + 2 * math.ceil(math.log2(15))
    extended = []
    final_loss, calls = counted(lambda n: 9.0 if n == 15 else loss(n))  # the bound's branch misses
    found, final = search(budgets, (3.6, 3.5), final_loss, 15, CPU.max_steps, lambda: extended.append(1) or budgets)
    assert extended == [1] and calls[0] == 15 and CPU.max_steps in calls and final == loss(CPU.max_steps)
    assert found == smallest_budgets(budgets, (3.6, 3.5), lambda n: 9.0 if n == 15 else loss(n))


# ---------------------------------------------------------------------------------------- real WSD trials


@pytest.fixture(scope="module")
def wsd(smoke_data, tmp_path_factory):
    """A small workload resolved to every step, its targets read off a constant run of AdamW (two it reaches, one
    below its last loss), and the WSD trial of AdamW on it."""
    w, data = smoke_data
    w = dataclasses.replace(w, name="wsd-test", ks=(1,), max_steps=16, eval_every=2, eval_dense_until=16,
                            val_tokens=4096, targets=())
    constant = run_trial(Trial("wsd", w, "adamw", (), 1, 0, corpus=data.corpus.key()), data,
                         ResultsStore(tmp_path_factory.mktemp("constant")), Hardware("cpu"), None)
    curve = {e["step"]: e["val_loss"] for e in constant["evals"]}
    w = dataclasses.replace(w, targets=(curve[6], curve[10], curve[16] - 1.0))
    return w, data, Trial("wsd", w, "adamw", (("schedule", "wsd"),), 1, 0, corpus=data.corpus.key())


def from_scratch(trial, data, budget: int) -> float | None:
    """The final validation loss of the trial's whole run with its schedule laid out over ``budget`` steps."""
    w = trial.workload
    val = validation_batches(PackedSequences(data.validation_path, w.seq_len, data.vocab_size), w.val_tokens,
                             w.micro_batch)
    module = build_module(trial, data, None, w.max_steps)
    return run_branch(module, trial, Hardware("cpu"), trial.stream(data, "train"), None, budget, val)["final_val_loss"]


@pytest.mark.slow
def test_a_wsd_trial_records_the_smallest_budget_that_reaches_each_target(wsd, tmp_path):
    w, data, trial = wsd
    store = ResultsStore(tmp_path)
    record = run_trial(trial, data, store, Hardware("cpu"), None)
    run, branches = record["run"], record["run"]["branches"]
    assert run["schedule"] == "wsd" and run["status"] == "budget"  # its tightest target is out of reach
    assert run["steps_run"] == 13 and record["evals"][-1]["step"] == 13  # the constant phase: to 16 - round(3.2)
    assert branches[0] == {**branches[0], "budget": 16, "start": 13, "length": 3}
    assert run["final_val_loss"] == branches[0]["final_val_loss"] < record["evals"][-1]["val_loss"]
    by_budget = {b["budget"]: b for b in branches}
    for t in w.targets[:2]:
        n = run["steps_to_target"][f"{t:g}"]
        assert run["steps_to_target_bracket"][f"{t:g}"] == 1  # every step a candidate: the smallest budget exactly
        assert by_budget[n]["final_val_loss"] <= t and by_budget[n]["start"] == branch_start(n, 0.2)
        assert from_scratch(trial, data, n) == by_budget[n]["final_val_loss"]  # a branch is that run, bit for bit
        if n > 1:
            assert from_scratch(trial, data, n - 1) > t, f"a budget of {n - 1} reaches {t:g} too"
    t = f"{w.targets[2]:g}"
    assert run["steps_to_target"][t] is None and run["steps_to_target_bracket"][t] is None
    assert run["costs"]["forward"] == 13  # the constant phase's; the branches' apart
    assert run["branch_costs"]["forward_equivalents"] == sum(b["forward_equivalents"] for b in branches) > 0
    assert outcome_problem(record) is None
    n = run["steps_to_target"][f"{w.targets[0]:g}"]
    by_budget[n]["final_val_loss"] = w.targets[0] + 0.01  # its branch edited to miss the target
    assert "branch" in outcome_problem(record)
    assert not list(store.work_dir.glob("*.branches*")) and not list(store.work_dir.glob("*.ckpt"))


@pytest.mark.slow
def test_the_constant_phase_stops_at_its_bound_and_runs_on_where_the_bounds_branch_misses(wsd, tmp_path, monkeypatch):
    w, data, trial = wsd
    reachable = dataclasses.replace(w, targets=w.targets[:2])
    trial = dataclasses.replace(trial, workload=reachable)
    record = run_trial(trial, data, ResultsStore(tmp_path / "bounded"), Hardware("cpu"), None)
    run = record["run"]
    bound = bound_budget(candidate_budgets(w.resolution_grid(), w.max_steps, 0.2), 0.2,
                         [(e["step"], e["val_loss"]) for e in record["evals"]], reachable.targets[1])
    assert run["status"] == "reached" and run["steps_run"] == branch_start(bound, 0.2) < 13  # stopped at the bound
    assert run["branches"][0]["budget"] == bound and max(b["budget"] for b in run["branches"]) == bound
    assert run["final_val_loss"] == run["branches"][0]["final_val_loss"] and outcome_problem(record) is None
    for t in reachable.targets:
        n = run["steps_to_target"][f"{t:g}"]
        assert from_scratch(trial, data, n) <= t and (n == 1 or from_scratch(trial, data, n - 1) > t)
    # the bound's branch made to miss: the constant phase runs on, from where it stopped, to its end
    branch = Branches.branch

    def missing(self, budget, *args):
        b = branch(self, budget, *args)
        return {**b, "final_val_loss": 99.0} if budget == bound else b

    monkeypatch.setattr(Branches, "branch", missing)
    missed = run_trial(trial, data, ResultsStore(tmp_path / "missed"), Hardware("cpu"), None)
    assert missed["run"]["steps_run"] == 13 and outcome_problem(missed) is None
    assert missed["run"]["branches"][0]["budget"] == bound and missed["run"]["branches"][1]["budget"] == w.max_steps
    whole = run_trial(dataclasses.replace(trial, workload=w), data, ResultsStore(tmp_path / "whole"), Hardware("cpu"), None)
    assert [s["train_loss"] for s in missed["steps"]] == [s["train_loss"] for s in whole["steps"]]  # bit for bit


def _outcome(record: dict) -> dict:
    """What two runs of one trial must share (every number but the clock's)."""
    clock = {"seconds", "started_at", "finished_at", "train_seconds", "seconds_per_step", "peak_memory_mib"}
    run = record["run"]
    return {"run": {k: v for k, v in run.items() if k in {"status", "steps_run", "steps_to_target", "final_val_loss",
                                                          "steps_to_target_bracket", "best_val_loss", "costs"}},
            "branches": [{k: v for k, v in b.items() if k not in clock} for b in run["branches"]],
            "branch_costs": {k: v for k, v in run["branch_costs"].items() if k not in clock},
            "evals": [(e["step"], e["val_loss"]) for e in record["evals"]],
            "steps": [s["train_loss"] for s in record["steps"]]}


@pytest.mark.slow
@pytest.mark.parametrize("reachable", [False, True], ids=["whole-phase", "bounded"])
def test_an_interrupted_wsd_trial_resumes_both_phases_to_the_same_record(wsd, tmp_path, reachable):
    w, data, trial = wsd
    if reachable:  # every target reached: the constant phase stops at its bound
        trial = dataclasses.replace(trial, workload=dataclasses.replace(w, targets=w.targets[:2]))
    hw = Hardware("cpu")
    once = run_trial(trial, data, ResultsStore(tmp_path / "once"), hw, None)
    store, hosts = ResultsStore(tmp_path / "twice"), []

    def interrupt(host_number: int, step: int | None = None):
        """Ctrl-C at ``step`` of the constant phase, or at the first step of the ``host_number``-th host (2: the
        first branch)."""
        def on_step(module):
            if not any(m is module for m in hosts):
                hosts.append(module)
            if (step is not None and module.step_idx == step) or len(hosts) == host_number:
                raise KeyboardInterrupt
        return on_step

    with pytest.raises(KeyboardInterrupt):  # in the constant phase
        run_trial(trial, data, store, hw, trial_start(trial, data, store, hw), on_step=interrupt(0, step=5))
    assert trial_start(trial, data, store, hw).progress["host"]["step_idx"] == 4
    hosts.clear()
    with pytest.raises(KeyboardInterrupt):  # in its second branch, after the first was recorded
        run_trial(trial, data, store, hw, trial_start(trial, data, store, hw), on_step=interrupt(3))
    hosts.clear()
    resumed = run_trial(trial, data, store, hw, trial_start(trial, data, store, hw), on_step=interrupt(0))
    trained = [b for b in once["run"]["branches"] if b["length"] > 0]
    assert len(hosts) == len(trained) - 1  # no constant step again, and the branch recorded before kept
    assert _outcome(resumed) == _outcome(once)


def test_a_multi_process_wsd_trial_is_refused(tmp_path):
    from benchmark.trial.branches import Branches

    trial = Trial("wsd", get_workload("smoke"), "adamw", (("schedule", "wsd"),), 1, 0)
    with pytest.raises(ValueError, match="in one process"):
        Branches(trial, 0.2, ResultsStore(tmp_path), Hardware("cpu", devices=2), None, None)
