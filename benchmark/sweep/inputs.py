"""What a sweep starts from, checked before anything runs: the optimizers named, the workload with the targets
calibrated on the corpus it will read, the prepared data, and the finished records of the results folder."""

from __future__ import annotations

from pathlib import Path

from benchmark import BenchError, make_console
from benchmark.data.corpus import HUB_CORPORA, Corpus, resolve_corpus
from benchmark.data.tokens import PreparedData, prepare
from benchmark.results.store import ResultsStore, failed, skipped_line
from benchmark.workload.presets import Workload, get_workload
from optimizers import registry
from optimizers.registry import UnknownBackend, get_backend

console = make_console(stderr=True)


def parse_optimizers(text: str | None) -> list[str]:
    """The optimizers named (comma-separated, each once), or every registered one when ``text`` is None."""
    if text is None:
        return sorted(registry())
    names = [n.strip() for n in text.split(",")]
    if not any(names):
        raise BenchError("--optimizers names no optimizer (leave it out to run every one)")
    if not all(names):
        raise BenchError(f"--optimizers {text!r} has an empty name")
    if len(set(names)) != len(names):
        raise BenchError(f"--optimizers {text!r} names an optimizer twice")
    for name in names:
        try:
            get_backend(name)
        except UnknownBackend as exc:
            raise BenchError(str(exc)) from None
    return names


def run_records(store: ResultsStore, warn: bool = False) -> dict[str, dict]:
    """run id -> run record of every finished trial in ``store``. Files that cannot be used are left alone
    (and said, with ``warn``); a trial whose own record is damaged, or says it failed, runs again."""
    records, skipped = store.records()
    if warn and skipped:
        console.print(f"warning: {skipped_line(skipped)}", markup=False, highlight=False)
    return {r["run"]["run_id"]: r["run"] for r in records if not failed(r["run"])}


def resolve_workload(preset: str, data: str | None, dry_run: bool = False,
                     local_targets: Path | None = None) -> tuple[Workload, Corpus]:
    """The preset with the targets calibrated on the corpus it will read (shipped, or in
    ``local_targets``), and that corpus."""
    workload = get_workload(preset)
    try:
        corpus = resolve_corpus(data, workload.hub_corpus, workload.allow_builtin_corpus)
    except BenchError:
        if not (dry_run and workload.hub_corpus and not data):
            raise
        # A plan needs no text: show it for the preset's hub corpus, which a real run must reach.
        corpus = Corpus(name=workload.hub_corpus, kind="hub", hub_id=HUB_CORPORA[workload.hub_corpus])
        print(f"note: {workload.hub_corpus} is unreachable from here; a real run needs the hub or --data PATH")
    return get_workload(preset, corpus.key(), local_targets), corpus


def prepare_workload(workload: Workload, corpus: Corpus) -> PreparedData:
    with console.status(f"preparing {corpus.name} (tokenizer, packed tokens; cached after the first run)"):
        return prepare(corpus, workload.vocab_size, workload.train_chars, workload.validation_chars,
                       workload.tokenizer_chars, workload.pretrained_tokenizer)
