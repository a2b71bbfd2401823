"""The backend contract, for anyone's backend: ``check_backend(MyBackend)`` runs on a tiny model and real
text (the embedded corpus unless ``data`` is given) what every built-in backend is held to, and raises an
``AssertionError`` naming the clause that failed:

- it is declared like a built-in one (name, ``Hyper`` dataclass, a search space over its fields, every
  setting with the values it may take, ``optimizers.hyper``);
- the training loss falls over 30 steps at its default settings;
- its state round-trips: a backend rebuilt from ``state_dict`` takes a bit-identical next step;
- the same seed gives the same run;
- one step counts the passes its ``expected_costs`` declares, and draws what ``draws_per_step`` says;
- where it claims ``accumulates``: K micro-batches in one step equal one batch of all of them;
- where it claims ``ddp`` (and ``ddp=True`` is asked: it spawns two gloo processes): two processes give
  the single-process training curve.

A plugin tests itself with one line: ``def test_contract(): check_backend(MyBackend)``.
"""

from __future__ import annotations

import copy
import dataclasses
import io

import numpy as np
import torch

from benchmark.data.streams import MicroBatchStream, PackedSequences
from models.layout import build_backend, model_layout
from models.transformer import Transformer, lm_loss, model_config
from optimizers.hyper import Range, valid_values, validate
from optimizers.interface import Costs, StepContext
from optimizers.registry import check_declaration, make_hyper

T, M, K, V = 16, 4, 2, 128  # sequence length, rows per micro-batch, micro-batches per step, vocabulary


def real_batches(data, n: int, m: int, seq_len: int, vocab: int, seed: int = 0):
    """n micro-batches of m real-text sequences, token ids folded into ``vocab``."""
    seqs = PackedSequences(data.train_path, seq_len, data.vocab_size)
    s = MicroBatchStream(seqs, m, seed)
    return [s.microbatch(g) % vocab for g in range(n)]


class Drawer:
    """A deterministic source of fresh micro-batches with a cursor (like the harness's)."""

    def __init__(self, data, m, seq_len, vocab, seed=0):
        seqs = PackedSequences(data.train_path, seq_len, data.vocab_size)
        self.stream, self.vocab, self.cursor = MicroBatchStream(seqs, m, seed, backward=True), vocab, 0

    def __call__(self, n):
        out = [self.stream.microbatch(self.cursor + j) % self.vocab for j in range(n)]
        self.cursor += n
        return out


def tiny_model(seed=0, dtype=torch.float32, **overrides):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_seq_len=T)
    cfg.update(overrides)
    return Transformer(model_config("tiny", **cfg)).to(dtype)


def backend_for(cls, model, hp=None, total: int = 60, seq_len: int | None = None):
    """A backend of class ``cls`` for ``model`` with ``hp`` (settings by name, or its ``Hyper``), built as the
    host builds it: with the model's layout (for sequences of ``seq_len`` tokens, by default its context)."""
    hp = hp if dataclasses.is_dataclass(hp) else make_hyper(cls, hp)
    return build_backend(cls, model, hp, total, seq_len or model.cfg.max_seq_len)


def context(model, batches, drawer):
    return StepContext(model=model, microbatches=batches, draw=drawer, costs=Costs(), loss_fn=lm_loss)


def flat_params(model) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy()


def embedded_data():
    """The smoke workload's tokens of the embedded corpus (Python's standard library), prepared once."""
    from benchmark.data.corpus import resolve_corpus
    from benchmark.data.tokens import prepare
    from benchmark.workload.presets import get_workload

    w = get_workload("smoke")
    return prepare(resolve_corpus("python-stdlib", None, True), w.vocab_size, w.train_chars, w.validation_chars,
                   w.tokenizer_chars)


class _Run:
    """Steps of one backend class on the tiny model, from a seed."""

    def __init__(self, cls, data, hp: dict, seed: int = 0, total: int = 60):
        self.cls, self.data, self.hp, self.total = cls, data, hp, total
        self.model = tiny_model(seed)
        self.backend = backend_for(cls, self.model, hp, total)
        self.drawer = Drawer(data, M, T, V, 0)
        self.batches = real_batches(data, 64 * K, M, T, V, 0)

    def steps(self, start: int, n: int) -> list[float]:
        return [self.backend.step(context(self.model, self.batches[s * K:(s + 1) * K], self.drawer))
                for s in range(start, start + n)]


def check_backend(cls, data=None, *, hp: dict | None = None, steps: int = 30, ddp: bool = False) -> None:
    """Run the contract on ``cls`` (see the module's text); ``hp`` overrides its defaults throughout."""
    check_declaration(cls)
    _check_valid_values(cls)
    data = data if data is not None else embedded_data()
    hp = dict(hp or {})
    losses = _Run(cls, data, hp).steps(0, steps)
    assert all(np.isfinite(losses)), f"{cls.name}: non-finite training loss {losses}"
    assert np.mean(losses[-5:]) < np.mean(losses[:3]) - 0.3, f"{cls.name}: the training loss did not fall: {losses}"
    _check_round_trip(cls, data, hp)
    a, b = _Run(cls, data, hp), _Run(cls, data, hp)
    a.steps(0, 3), b.steps(0, 3)
    assert np.array_equal(flat_params(a.model), flat_params(b.model)), f"{cls.name}: the same seed gave another run"
    _check_costs(cls, data, hp)
    if cls.accumulates:
        _check_accumulation(cls, data, hp)
    if ddp and cls.ddp:
        _check_ddp(cls, data, hp)


def _check_valid_values(cls) -> None:
    """Every setting declares what it may take (a range for a number, choices for a string: ``optimizers.hyper``),
    so that tuning and the command line stay inside it; the defaults are valid."""
    for f in dataclasses.fields(cls.Hyper):
        default = getattr(cls.Hyper(), f.name)
        if isinstance(default, bool):
            continue
        kind = Range if isinstance(default, (int, float)) else tuple
        assert isinstance(valid_values(cls.Hyper, f.name), kind), (
            f"{cls.name}.{f.name} declares no valid {'range' if kind is Range else 'choices'}: "
            f"declare it as hyper({default!r}, ...)")
    validate(cls.Hyper())


def _check_round_trip(cls, data, hp) -> None:
    run = _Run(cls, data, hp)
    run.steps(0, 4)
    buf = io.BytesIO()
    torch.save({"model": run.model.state_dict(), "backend": run.backend.state_dict(), "cursor": run.drawer.cursor}, buf)
    run.steps(4, 1)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    other = _Run(cls, data, hp, seed=123)  # another init: everything must come from the state
    other.model.load_state_dict(saved["model"])
    other.backend.load_state_dict(saved["backend"])
    other.drawer.cursor = saved["cursor"]
    other.steps(4, 1)
    assert np.array_equal(flat_params(other.model), flat_params(run.model)), \
        f"{cls.name}: a backend restored from its state_dict took another step"


def _check_costs(cls, data, hp) -> None:
    for k in (1, 3):
        run = _Run(cls, data, hp)
        ctx = context(run.model, run.batches[:k], run.drawer)
        run.backend.step(ctx)
        expected = cls.expected_costs(model_layout(run.model, T), run.backend.hp, k)
        for field in ("forward", "backward", "jvp"):
            got, want = getattr(ctx.costs, field), getattr(expected, field)
            assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), \
                f"{cls.name}: a step at K={k} counted {field}={got}, expected_costs says {want}"
        with torch.device("meta"):  # the dry run asks a model that holds no weights
            meta = model_layout(tiny_model(), T)
        assert cls.expected_costs(meta, run.backend.hp, k) == expected, \
            f"{cls.name}: expected_costs differs on a model on the meta device (the dry run's)"
        assert run.drawer.cursor == cls.draws_per_step(run.backend.hp, k), \
            f"{cls.name}: a step at K={k} drew {run.drawer.cursor} micro-batches, draws_per_step says " \
            f"{cls.draws_per_step(run.backend.hp, k)}"


def _check_accumulation(cls, data, hp) -> None:
    batches = real_batches(data, 4, M, T, V)
    m1 = tiny_model(0)
    b1 = backend_for(cls, m1, hp)
    m2 = copy.deepcopy(m1)
    b2 = backend_for(cls, m2, hp)
    b1.step(context(m1, batches, None))
    b2.step(context(m2, [torch.cat(batches)], None))
    assert np.allclose(flat_params(m1), flat_params(m2), rtol=1e-5, atol=1e-6), \
        f"{cls.name} claims accumulates, but 4 micro-batches differ from one batch of them"


def _check_ddp(cls, data, hp) -> None:
    """Two spawned gloo processes against one, through the harness: each process finds the backend by its
    name, so it must be installed (a registered entry point)."""
    import os
    import tempfile
    from pathlib import Path

    from benchmark.results.store import ResultsStore
    from benchmark.trial.hardware import Hardware
    from benchmark.trial.identity import Trial
    from benchmark.trial.run import run_trial
    from benchmark.workload.presets import get_workload
    from optimizers import registry

    assert registry().get(cls.name) is cls, f"{cls.name}: the ddp check needs it installed (its entry point)"
    w = dataclasses.replace(get_workload("smoke"), name="contract", ks=(2,), max_steps=4, eval_every=2,
                            val_tokens=2048, targets=(), warm_start_steps=0)
    trial = Trial("contract", w, cls.name, tuple(sorted(hp.items())), 2, 0, corpus=data.corpus.key())
    previous = os.environ.get("OPTBENCH_DDP_START")
    os.environ["OPTBENCH_DDP_START"] = "spawn"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            curves = [run_trial(trial, data, ResultsStore(Path(tmp) / str(n)), Hardware("cpu", n), None)["steps"]
                      for n in (1, 2)]
    finally:
        if previous is None:
            os.environ.pop("OPTBENCH_DDP_START")
        else:
            os.environ["OPTBENCH_DDP_START"] = previous
    one, two = ([s["train_loss"] for s in c] for c in curves)
    assert len(one) == len(two) and np.allclose(one, two, rtol=2e-3), \
        f"{cls.name} claims ddp, but two processes trained {two} where one trained {one}"
