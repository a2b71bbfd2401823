"""``bench list``: what a run can be asked for, as a run without ``--data`` would use it: the suites, the presets
(with the version and targets of their default corpus), the optimizers (plugins and broken plugins said as
such) and the corpora."""

from __future__ import annotations

import torch

from benchmark.data.corpus import BUILTIN_CORPORA, HUB_CORPORA, stdlib_corpus
from benchmark.sweep.plan import SUITES
from benchmark.workload.presets import PRESETS, get_workload
from models.transformer import Transformer
from optimizers import registry
from optimizers.registry import BROKEN, SOURCES


def print_catalog(out) -> None:
    """Everything ``bench list`` prints, on the rich console ``out``."""
    out.print("[bold]suites[/]")
    for s in SUITES.values():
        out.print(f"  {s.name:24} {s.description}")
    _presets(out)
    out.print("[bold]optimizers[/]")
    for name, cls in sorted(registry().items()):
        source = f" (plugin: {SOURCES[name]})" if name in SOURCES else ""
        out.print(f"  {name:16} {cls.description}{source}", markup=False, highlight=False)
    for name, why in sorted(BROKEN.items()):
        out.print(f"  {name:16} broken plugin, not loaded: {why}", markup=False, highlight=False, soft_wrap=True)
    out.print("[bold]corpora[/] (--data NAME or --data PATH)")
    for name, (hub, cfg) in HUB_CORPORA.items():
        out.print(f"  {name:16} hub dataset {hub} ({cfg}), streamed when reachable")
    for name, what in BUILTIN_CORPORA.items():
        out.print(f"  {name:16} {what}")
    out.print("  PATH             a folder of train*/validation* .jsonl(.gz)/.txt/.parquet files, or one file")
    out.print("  (no --data: the CPU presets read python-stdlib, the paper presets stream c4 from the hub)")


def _presets(out) -> None:
    out.print("[bold]presets[/] (as a run without --data uses them: the version and targets of its default corpus)")
    builtin = stdlib_corpus().key()
    for preset in PRESETS.values():
        # CPU presets read the embedded corpus, paper presets stream their hub corpus (never probed here)
        w = get_workload(preset.name, builtin) if preset.allow_builtin_corpus and not preset.hub_corpus else preset
        corpus = builtin if w is not preset else preset.hub_corpus or "--data"
        with torch.device("meta"):
            n = Transformer(w.model_config()).num_parameters()
        ks = ",".join(map(str, w.ks))
        source = w.targets_source if w.targets_source != "uncalibrated" else (
            f"uncalibrated: the first run on {corpus} calibrates them")
        out.print(f"  {w.name:8} v{w.version} {n / 1e6:7.2f}M params  K={ks:12} budget {w.max_steps} steps  "
                  f"corpus {corpus}  targets {', '.join(f'{t:g}' for t in w.targets)} ({source})  {w.description}",
                  markup=False, highlight=False)
