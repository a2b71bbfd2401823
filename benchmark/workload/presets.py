"""Workloads: everything a measurement holds fixed. Targets and budgets belong here, not to optimizers
or the command line. A workload's ``version`` changes whenever anything that moves its numbers does."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from benchmark import BenchError
from benchmark.hashing import content_hash
from benchmark.workload.targets import calibrated_entry
from models.transformer import ModelConfig, model_config


@dataclass(frozen=True)
class Workload:
    name: str
    version: int
    description: str
    model: str  # model preset name
    vocab_size: int
    seq_len: int
    micro_batch: int  # sequences per micro-batch
    ks: tuple[int, ...]  # accumulation counts swept: tokens per step = k * micro_batch * seq_len
    max_steps: int
    eval_every: int
    val_tokens: int
    targets: tuple[float, ...]  # validation losses in nats, loosest first
    targets_source: str = "uncalibrated"
    warm_start_steps: int = 0  # shared AdamW warm start, trained once per seed and cached
    warm_start_k: int = 1
    warm_start_lr: float = 3e-3
    hub_corpus: str | None = None
    allow_builtin_corpus: bool = False  # CPU presets default to python-stdlib (no --data, no hub corpus)
    train_chars: int | None = None  # cap on training text (None: the whole split)
    validation_chars: int | None = 4_000_000
    tokenizer_chars: int = 8_000_000
    pretrained_tokenizer: str | None = None  # hub tokenizer used when reachable (else a BPE is trained)
    divergence_factor: float = 1.5  # training loss above this times the initial loss ends a run
    eval_dense_until: int = 0  # crossings resolved to one step up to this one (see resolution_grid)
    eval_relative: float = 0.0  # beyond it, to at most this fraction of the step

    def model_config(self) -> ModelConfig:
        return model_config(self.model, vocab_size=self.vocab_size, max_seq_len=self.seq_len)

    def eval_grid(self) -> list[int]:
        """The steps after which every trial evaluates: every ``eval_every`` steps, and the last one."""
        return sorted({*range(0, self.max_steps + 1, self.eval_every), self.max_steps})

    def resolution_grid(self) -> list[int]:
        """The steps a crossing is resolved to: the evaluation grid, every step up to ``eval_dense_until``
        and beyond it steps at most ``eval_relative`` of the step apart. Those not on the evaluation grid
        are evaluated afterwards, from saved weights, only between two evaluations that a target crossed."""
        grid = {*self.eval_grid(), *range(min(self.eval_dense_until, self.max_steps) + 1)}
        if self.eval_relative > 0:
            step = self.eval_dense_until
            while step < self.max_steps:
                grid.add(step)
                step += max(1, int(self.eval_relative * step))
        return sorted(grid)

    def tokens_per_step(self, k: int) -> int:
        return k * self.micro_batch * self.seq_len

    def warm_start_sequences(self) -> int:
        """Training sequences the shared warm start reads (from the start of each seed's order)."""
        return max(0, self.warm_start_steps) * self.warm_start_k * self.micro_batch

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ks"], d["targets"] = list(self.ks), list(self.targets)
        return d

    def key(self) -> str:
        """Short hash of every field: trials of different workload definitions never collide. A field added
        after workloads were first defined counts only where it is set, so older definitions keep their key."""
        d = {k: v for k, v in self.to_dict().items() if not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])}
        return content_hash({**_RETIRED_FIELDS, **d}, length=10)


_LATER_FIELDS = {"eval_dense_until": 0, "eval_relative": 0.0}  # field -> its default
# Fields no workload ever set, since removed, at the one value each ever held: still hashed, so keys stay.
_RETIRED_FIELDS = {"dtype": "float32", "extra": {}}


# The paper's 45M setting (DESIGN §2); the 150M preset differs only in the model.
_PAPER_45M = Workload(
    name="45m",
    version=2,  # 2: separate q/k/v projections, tanh GELU, the release's baselines, single-epoch streams
    description="Paper scale (GPU): 45M parameters, micro-batch 32x1024, K up to 122 (~4M tokens/step)",
    model="45m",
    vocab_size=32000,  # as the paper: T5's 32000 ids (its 100 sentinel ids never occur in plain text)
    seq_len=1024,
    micro_batch=32,
    ks=(1, 8, 32, 122),
    max_steps=300,
    eval_every=10,
    val_tokens=4_194_304,
    targets=(3.25,),
    targets_source="the paper's target (Abreu et al. 2026)",
    warm_start_steps=1000,
    warm_start_k=1,
    warm_start_lr=3e-3,
    hub_corpus="c4",
    pretrained_tokenizer="google-t5/t5-base",  # the paper's tokenizer, when the hub is reachable
    train_chars=None,
    validation_chars=40_000_000,
    tokenizer_chars=200_000_000,
)

PRESETS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="smoke",
            version=3,  # 3: as 45m's version 2 (2 was the calibrated version 1)
            description="CI smoke test: a 0.16M-parameter model, seconds per trial",
            model="smoke",
            vocab_size=512,
            seq_len=64,
            micro_batch=8,
            ks=(1, 4),
            max_steps=40,
            eval_every=2,
            val_tokens=16_384,
            targets=(5.5, 5.0),
            targets_source="uncalibrated",
            allow_builtin_corpus=True,
            train_chars=2_000_000,
            validation_chars=400_000,
            tokenizer_chars=1_000_000,
        ),
        Workload(
            name="cpu",
            # 6: crossings resolved to one step up to step 30, then to 5% of the step; K 4, 16, 32 (5 was the
            # calibrated 4); 4: as 45m's version 2, and a 64K-token validation set
            version=6,
            description="CPU benchmark: a 0.16M-parameter model on short sequences, K up to 16",
            model="cpu",
            vocab_size=512,
            seq_len=64,
            micro_batch=16,
            ks=(4, 16, 32),
            max_steps=60,
            eval_every=3,
            eval_dense_until=30,
            eval_relative=0.05,
            val_tokens=65_536,
            targets=(5.5, 5.0, 4.6),
            targets_source="uncalibrated",
            warm_start_steps=100,
            warm_start_k=1,
            warm_start_lr=3e-3,
            allow_builtin_corpus=True,
            train_chars=20_000_000,
            validation_chars=1_000_000,
            tokenizer_chars=4_000_000,
        ),
        Workload(
            name="gpu",
            version=1,
            description="One GPU: a 17M-parameter model on 256-token sequences, K up to 32; the six-backend "
                        "default sweep is about an hour on one H100/H200 (see --dry-run)",
            model="17m",
            vocab_size=8192,  # a BPE trained on the corpus: at 32000 the head would be half the model
            seq_len=256,
            micro_batch=32,
            ks=(4, 16, 32),
            max_steps=80,
            eval_every=4,
            eval_dense_until=30,
            eval_relative=0.05,
            val_tokens=1_048_576,
            targets=(4.6, 4.2, 3.9),
            targets_source="uncalibrated",  # a first run calibrates them on its corpus (tuned AdamW)
            warm_start_steps=200,
            warm_start_k=1,
            warm_start_lr=3e-3,
            hub_corpus="c4",
            train_chars=None,
            validation_chars=10_000_000,
            tokenizer_chars=50_000_000,
        ),
        _PAPER_45M,
        replace(
            _PAPER_45M,
            name="150m",
            description="Paper scale (GPU): 150M-shape model (134M at vocab 32000), micro-batch 32x1024",
            model="150m",
        ),
    )
}


def calibrated(preset: Workload, corpus_key: str | None, local_targets: Path | None = None) -> Workload:
    """The preset with the targets calibrated for exactly this corpus (name and content fingerprint, as
    ``Corpus.key()``), if any: shipped ones first, then those of ``local_targets`` (a results folder's own
    calibrations). Targets depend on the text: a loss in nats on Wikipedia is not one on Python source,
    and another Python's standard library is another corpus."""
    for path in (None, local_targets):
        entry = calibrated_entry(preset.name, corpus_key, path)
        if entry and entry.get("version", 0) > preset.version:
            return replace(preset, version=entry["version"], targets=tuple(entry["targets"]),
                           targets_source=f"calibrated {entry['calibrated_at']} on {corpus_key}: {entry['command']}")
    return preset


# What ``--workload KEY=VALUE`` may not change: what names a definition, rather than defines it.
FIXED_FIELDS = ("name", "version", "description", "targets_source")


def overridden(workload: Workload, items: list[str]) -> Workload:
    """``workload`` with the fields ``items`` ("key=value", a comma list for a tuple, "none" for an absent
    limit) set, each typed by the field's current value; its name says what changed (``smoke[max_steps=8]``), so
    that its run ids, its report rows and its records never pass for the preset's (nor enter a leaderboard,
    whose merge knows presets only). A bad key or value is a one-line error."""
    changes: dict = {}
    for item in items:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not (sep and key and text):
            raise BenchError(f"--workload expects key=value, got {item!r}")
        if key not in {f.name for f in fields(Workload)} or key in FIXED_FIELDS:
            valid = [f.name for f in fields(Workload) if f.name not in FIXED_FIELDS]
            raise BenchError(f"--workload: {key!r} is not a workload setting; valid: {', '.join(valid)}")
        changes[key] = _typed(key, getattr(workload, key), text)
    if not changes:
        return workload
    # a tuple's values joined by "+": the name goes into run ids, which name files
    label = ",".join(f"{k}={v}" if not isinstance(v, tuple) else f"{k}={'+'.join(map(str, v))}"
                     for k, v in sorted(changes.items()))
    source = workload.targets_source + ("; targets set by --workload" if "targets" in changes else "")
    return replace(workload, **changes, name=f"{workload.name}[{label}]", targets_source=source)


def _typed(key: str, current, text: str):
    """``text`` as the type of ``current`` (a tuple of them for a comma list), or a one-line error."""
    try:
        if isinstance(current, tuple):
            kind = type(current[0]) if current else float
            return tuple(kind(v) for v in text.split(","))
        if text.lower() == "none" and (current is None or key.endswith("_chars")):
            return None
        if isinstance(current, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        return type(current)(text) if current is not None else int(text)
    except ValueError:
        like = ",".join(map(str, current)) if isinstance(current, tuple) else current
        raise BenchError(f"--workload {key}={text}: expected a value like {like}") from None


def get_workload(name: str, corpus_key: str | None = None, local_targets: Path | None = None) -> Workload:
    if name not in PRESETS:
        raise BenchError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return calibrated(PRESETS[name], corpus_key, local_targets)
