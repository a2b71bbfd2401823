"""Dry runs: the trial list of a plan with what each trial costs at most (its whole step budget), from the
per-pass accounting the backends themselves record (``Backend.expected_costs``), the training tokens it
reads against those the corpus holds, and a rough peak memory per device from each backend's
``MemoryModel``. Needs neither a GPU nor a network."""

from __future__ import annotations

import functools

import torch

from benchmark.data.streams import training_tokens
from benchmark.data.tokens import PreparedData
from benchmark.results.store import ResultsStore
from benchmark.sweep.plan import EXTENSIONS_PER_SIDE, in_shard
from benchmark.trial.branches import cooldown_fraction
from benchmark.trial.identity import Trial
from benchmark.workload.presets import Workload
from models.layout import model_layout
from models.transformer import Transformer
from optimizers import get_backend
from optimizers.layout import ModelLayout

# The sustained rate of each backend family in this module's FLOP count (2 x parameters x tokens per
# forward-equivalent pass), measured on one H200 at 45m (fp32, TF32 matmuls, micro-batch 32x1024,
# scripts/gpu_check.sh at 798ce7b): AdamW 0.12 s a step at K=2 (6 forward-equivalents: 149 TFLOP/s), GN
# 0.50 s (15 as counted now: 89 TFLOP/s; its product has been made cheaper since, so this errs long). Smaller
# matrices than 45m's run at a lower rate; early stops at the last target and pruning shorten trials.
GPU_RATE = {"first-order": 149e12, "gauss-newton": 89e12}
GPU_BASIS = "at the rates one H200 sustained at 45m (AdamW 149, GN 89 TFLOP/s; benchmark/sweep/estimate.py)"
# What one of this project's 2-core CPU machines takes per FLOP a plan counts over full budgets, measured on the
# default suite at c1ca33a (97 trials of the cpu preset planned at 885,200 forward-equivalents, 2,455 s of
# trials): trials stop early at their last target or when pruned, so the rate includes that; at another shape,
# other overheads make it rougher.
CPU_SECONDS_PER_PLANNED_FLOP = 8.2e-12
# ... but the Gauss-Newton family reaches its targets after a smaller share of its budget than first-order methods,
# and the rate above is over a mix of both. On the six-backend robustness suite at 915e1d9 (cpu, K = 16, trial wall
# times), first-order trials took 1.31 times and the GN family's 0.43 times what the rate alone gives them: each
# family's factor. (The default suite's own estimate then reads about 21 minutes, below its measured 27-44: its
# K = 4 cells take many cheap steps, whose per-step overheads a count of FLOPs misses.)
CPU_FAMILY_FACTOR = {"first-order": 1.31, "gauss-newton": 0.43}
CPU_BASIS = "on one 2-core CPU machine, as the default suite ran at c1ca33a (benchmark/sweep/estimate.py)"
# A WSD trial (cooldown branches) runs its constant phase, then branches. Where it never crosses its tightest target
# the phase runs to (1 - cooldown) of the budget and its branches take about as many forward-equivalents again
# (0.98 on average over the robustness suite's 25 WSD tuning trials at cpu, K = 16): WSD_BRANCHES budgets, the
# count over full budgets. Where it crosses, the phase stops at the bound the crossing gives and the branches bisect
# below it, so on CPU time (whose rate holds constant-rate trials' early stops) a WSD trial costs WSD_CPU_FACTOR
# constant-rate trials: on the six-backend robustness suite at 915e1d9 (cpu, K = 16) a WSD trial's wall time was
# 1.76 (layerwise GN) to 2.24 (GN-prox-linear) times its optimizer's mean constant-rate trial, about 2 for the
# others; running the whole constant phase, they had taken 4.5.
WSD_BRANCHES = 1.6
WSD_CPU_FACTOR = 2.0


# The memory model's factors (fp32), fitted to the peak of real steps (scripts/step_memory.py, two steps, the
# profiler's allocations replayed) at 45m and 150m, 1024 tokens a sequence, m = 1 and 2: a block keeps about 21
# d_model-wide values per token for its backward (its input, q, k, v, the attention output, the MLP's input and
# its 4x hidden layer before and after the GELU, the norms; AdamW's slopes at the two shapes give 21.4 and 2.0
# logit rows); under Gauss-Newton's double backward the math attention kernel keeps about 3.9 (heads x T x T)
# tensors per layer (the scores, the probabilities, their gradient) for the sequences differentiated at once (not
# with ``product=forward_ad``, whose dual forward keeps nothing and whose primal forward may use any kernel), and
# a micro-batch taken in sub-batches holds one more gradient-sized sum.
FP32_BYTES = 4
BLOCK_ACTIVATIONS = 21.4
ATTENTION_SCORE_COPIES = 3.9


@functools.cache
def _shape(cfg, seq_len: int) -> tuple[int, ModelLayout]:
    """(parameters, layout) of the model ``cfg`` describes, built once on the meta device (no weights)."""
    with torch.device("meta"):
        model = Transformer(cfg)
    return model.num_parameters(), model_layout(model, seq_len)


def memory_bytes(cfg, cls, hp, micro_batch: int, seq_len: int) -> float:
    """The memory model: peak bytes of a step of backend ``cls`` (settings ``hp``) on one device holding
    ``micro_batch`` sequences of ``seq_len`` tokens of a micro-batch, for the model ``cfg``: its state per
    parameter and the activations of the sequences it differentiates at once (``Backend.sequences_at_once``)."""
    n_params, _ = _shape(cfg, seq_len)
    sequences, m = cls.sequences_at_once(hp, micro_batch), cls.memory_model(hp)
    act = sequences * seq_len * FP32_BYTES * (cfg.n_layers * cfg.d_model * BLOCK_ACTIVATIONS + m.logit_copies * cfg.vocab_size)
    if sequences < micro_batch:  # the running sum of the pieces' gradients
        act += FP32_BYTES * n_params
    act += m.chunk_copies * min(sequences * seq_len * cfg.vocab_size, m.chunk_elements) * FP32_BYTES
    if m.attention_scores:
        act += ATTENTION_SCORE_COPIES * sequences * cfg.n_heads * seq_len**2 * FP32_BYTES * cfg.n_layers
    return m.state_bytes_per_parameter * n_params + act


def estimate(trial: Trial, devices: int = 1) -> dict:
    """Upper bounds over the whole step budget (tokens read, forward-equivalent passes, FLOPs) and a rough
    peak memory per device (fp32, ``memory_bytes``: fitted to real steps measured on CPU at 45m and 150m)."""
    w = trial.workload
    cfg = w.model_config()
    n_params, layout = _shape(cfg, w.seq_len)
    cls, hp = get_backend(trial.optimizer), trial.hyper()
    wsd = cooldown_fraction(hp) is not None
    fe = cls.expected_costs(layout, hp, trial.k).forward_equivalents * w.max_steps * (WSD_BRANCHES if wsd else 1.0)
    micro_batches = (trial.k + cls.draws_per_step(hp, trial.k)) * w.max_steps
    memory = memory_bytes(cfg, cls, hp, max(1, w.micro_batch // devices), w.seq_len)
    return {"tokens": micro_batches * w.micro_batch * w.seq_len, "fwd_equiv": fe,
            "warm_start_tokens": w.warm_start_sequences() * w.seq_len,
            "flops": 2.0 * n_params * fe * w.micro_batch * w.seq_len, "memory_gib": memory / 2**30,
            "gpu_hours": 2.0 * n_params * fe * w.micro_batch * w.seq_len / GPU_RATE.get(cls.family, GPU_RATE["first-order"]) / devices / 3600,
            "cpu_seconds": 2.0 * n_params * fe * w.micro_batch * w.seq_len * CPU_SECONDS_PER_PLANNED_FLOP
            * CPU_FAMILY_FACTOR.get(cls.family, 1.0) * (WSD_CPU_FACTOR / WSD_BRANCHES if wsd else 1.0)}


def sweep_cost(plan, part: tuple[int, int], seeds: int, devices: int = 1, what: str = "gpu_hours") -> float:
    """``what`` (an ``estimate`` field: GPU hours, CPU seconds) of the shard's share of the sweep: each cell's
    tuning trials over full budgets, the rest of a walk's budget and the seed reruns each counted as the cell's
    average trial, and cells not started yet (a walk's later phase) as the same optimizer's average cell."""
    total, average = 0.0, {}
    for key, cell in plan.cells.items():
        each = [estimate(t, devices)[what] for t in cell]
        share = sum(in_shard(t, part) for t in cell) / len(cell)
        budget = plan.walks.get(key, plan.budget)
        more = 0 if budget is None or key in plan.best else max(0, budget - len(cell))
        average.setdefault(key[1].split(" (")[0], []).append(sum(each) / len(each))
        total += sum(h for t, h in zip(cell, each) if in_shard(t, part)) + (more + max(0, seeds - 1)) * share * (
            sum(each) / len(each))
    for key in (c for c in plan.waiting if c not in plan.cells):  # a later phase's cell, or (c)'s before (b) ends
        cells = average.get(key[1].split(" (")[0], [0.0])
        wsd = key[1].endswith("(wsd)")  # priced as the optimizer's constant-rate cells, as a WSD trial costs more
        factor = (WSD_CPU_FACTOR if what == "cpu_seconds" else WSD_BRANCHES) if wsd else 1.0
        total += (plan.walks.get(key, plan.budget or 0) + max(0, seeds - 1)) * factor * sum(cells) / len(cells) / part[1]
    return total


def tokens_available(workload: Workload, prepared: PreparedData | None) -> int | None:
    """Training tokens the corpus holds, in the workload's sequences (None when it is not prepared)."""
    return None if prepared is None else training_tokens(prepared, workload.seq_len)


def reads(trial: Trial) -> int:
    """Training tokens ``trial`` reads at most: its shared warm start's, then its own (line searches included)."""
    e = estimate(trial)
    return e["warm_start_tokens"] + e["tokens"]


def rereads(trials: list[Trial], available: int | None) -> list[str]:
    """One line per trial that would read a training token twice (more than the corpus holds)."""
    if available is None:
        return []
    return [f"{t.describe()} would read {reads(t):,} training tokens of the {available:,} the corpus holds: "
            "some twice" for t in trials if reads(t) > available]


def print_plan(plan, store: ResultsStore, part: tuple[int, int], seeds: int, devices: int = 1,
               available: int | None = None) -> None:
    """The plan as a table: each trial's state, identity, tokens read (and their share of the corpus'
    training tokens: above 1 some are read twice), passes, FLOPs and memory; then the totals."""
    total_fe = total_flops = 0.0
    rows = [(t, "tune") for t in plan.tuning] + [(t, "seed") for t in plan.seeds]
    rows = [(t, role) for t, role in rows if in_shard(t, part)]
    print(f"{'state':5} {'role':4} {'run id':44} {'trial':44} {'tokens':>14} {'of corpus':>9} {'fwd-equiv':>10} "
          f"{'PFLOP':>9} {'GiB/dev':>7}")
    for t, role in rows:
        e = estimate(t, devices)
        total_fe += e["fwd_equiv"]
        total_flops += e["flops"]
        state = "done" if store.has(t.run_id) else "todo"
        share = "?" if available is None else f"{(e['warm_start_tokens'] + e['tokens']) / available:.2f}"
        print(f"{state:5} {role:4} {t.run_id:44} {t.describe():44} {e['tokens']:>14,} {share:>9} "
              f"{e['fwd_equiv']:>10,.0f} {e['flops'] / 1e15:>9.3f} {e['memory_gib']:>7.1f}")
    print(f"{len(rows)} trials (shard {part[0]}/{part[1]}, {devices} device(s) each), at most {total_fe:,.0f} "
          f"forward-equivalent micro-batch passes, {total_flops / 1e15:.3f} PFLOP over full budgets "
          "(runs stop early at their last target)")
    if seeds > 1 and plan.waiting:
        print(f"+ {len(plan.waiting) * (seeds - 1)} seed reruns, fixed once their cells' tuning has finished")
    print(f"about {sweep_cost(plan, part, seeds, devices):.1f} h of GPU time for the whole sweep over full budgets (seed "
          f"reruns included, each as its cell's average tuning trial), {GPU_BASIS}; about "
          f"{sweep_cost(plan, part, seeds, devices, 'cpu_seconds') / 60:.0f} min {CPU_BASIS}")
    if plan.budget is not None:  # coordinate tuning: each cell walks on, one batch of trials at a time
        budgets = sorted(set(plan.walks.values()) | {plan.budget}, reverse=True)
        print(f"+ more tuning trials as each of {len(plan.walks) or len(plan.cells)} cells walks on, one hyperparameter "
              f"at a time, up to {' or '.join(map(str, budgets))} trials a cell (cells between the smallest and largest "
              "K wait for both, a wsd cell for its coordinate cell); tuning trials stop early once they can no longer "
              "be selected")
    else:
        print(f"+ up to {2 * EXTENSIONS_PER_SIDE} more tuning trials in each of {len(plan.cells)} cells where the best "
              "setting sits at an edge of its grid; tuning trials stop early once they can no longer be selected")
    lines = rereads([t for t, _ in rows], available)
    print(f"{'corpus not prepared: tokens available unknown' if available is None else f'{available:,} training tokens available'}"
          f"; {len(lines)} trials would read some twice (of corpus above 1.00; the warm start counted)")
