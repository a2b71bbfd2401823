"""The README and the reference pages (docs/) state facts the code can check; each is checked here against
the code (docs/backends.md's table of defaults in test_baselines.py). When a fact drifts, the test names the
page, what it says and what the code says; when a page stops stating a checked fact, the test says so."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import pytest
import torch
import typer.main

from models.transformer import Transformer
from optimizers import registry
from optimizers.interface import PASS_WEIGHTS, Backend, StepContext

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("method", "cli", "backends", "plugins", "scale", "results")
# Where the code keeps what the pages state (issue 24's layout): update a module's name here when it moves.
CODE = {"cli": "benchmark.cli", "workloads": "benchmark.workload.presets", "targets": "benchmark.workload.targets",
        "plan": "benchmark.sweep.plan", "store": "benchmark.results.store", "calibrate": "benchmark.sweep.calibrate",
        "record": "benchmark.results.record", "statistics": "benchmark.report.statistics",
        "batchfit": "benchmark.report.batchfit", "figures": "benchmark.report.figures",
        "render": "benchmark.report.render", "corpus": "benchmark.data.corpus", "testing": "benchmark.testing",
        "writer": "benchmark.trial.writer", "coordinate": "benchmark.sweep.coordinate"}
GENERATED = {"docs/results/speedup.png"}  # written by scripts/readme_results.py, not committed before it runs
TOP = ("benchmark", "optimizers", "models", "tests", "scripts", "examples", "docs", ".ci", ".github", "submissions")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def code(name: str):
    return importlib.import_module(CODE[name])


def path_of(page: str) -> Path:
    return ROOT / "README.md" if page == "README" else ROOT / "docs" / f"{page}.md"


def text(page: str) -> str:
    return path_of(page).read_text()


def flat(page: str) -> str:
    return " ".join(text(page).split())  # a fact may break across lines


def section(page: str, heading: str) -> str:
    body = text(page)[text(page).index(heading) + len(heading):]
    return body[: body.index("\n## ")] if "\n## " in body else body


def table(page: str, heading: str) -> list[list[str]]:
    part = section(page, heading)
    rows = part[part.index("\n|"):].strip().split("\n\n")[0].splitlines()[2:]
    return [[c.strip() for c in row.strip("|").split("|")] for row in rows]


def blocks(page: str) -> list[str]:
    return re.findall(r"```\w*\n(.*?)```", text(page), re.S)


def spans(page: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text(page), flags=re.S))


def commands() -> dict[str, dict]:
    """Every `bench` command ("" for the root) -> {option name: its click parameter}."""
    out: dict[str, dict] = {}

    def walk(cmd, name: str) -> None:
        if not name or not hasattr(cmd, "commands"):  # a group (`leaderboard`) has no options of its own
            out[name] = {o: p for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}
        for sub, c in getattr(cmd, "commands", {}).items():
            walk(c, f"{name} {sub}".strip())

    walk(typer.main.get_command(code("cli").app), "")
    return out


def default(command: str, option: str):
    return commands()[command][option].default


def presets():
    return code("workloads").PRESETS


def builtin() -> list[str]:
    return [n for n, c in registry().items() if c.__module__.startswith("optimizers.")]


def grid_trials(w, seeds: int) -> tuple:
    n, per_cell = len(builtin()), code("plan").DEFAULT_TUNE_BUDGET
    return n, len(w.ks), per_cell, n * len(w.ks) * per_cell, seeds - 1, n * len(w.ks) * (seeds - 1)


def fractions() -> list[float]:
    targets = code("calibrate").targets_from([1.0], 2.0)  # tightest 1, initial 2: each target is its fraction
    return sorted(round(100 * (t - 1.0)) for t in targets if t > 1.0)


def torch_pin() -> str:
    return next(line.split("==")[1] for line in (ROOT / "constraints-cpu.txt").read_text().splitlines()
                if line.startswith("torch=="))


# (page, a pattern whose groups are the stated numbers, what the code says)
FACTS = [
    ("method", r"the default: `--tune-budget`, default (\d+)", lambda: code("plan").DEFAULT_TUNE_BUDGET),
    ("method", r"trials per cell \(`--tune-budget`, default (\d+)", lambda: code("coordinate").DEFAULT_BUDGET),
    ("method", r"`--seeds`, default (\d+)", lambda: default("run", "--seeds")),
    ("method", r"at most (\d+) points a side", lambda: code("plan").EXTENSIONS_PER_SIDE),
    ("method", r"\((\d+) resamples", lambda: inspect.signature(code("statistics").bootstrap_ci).parameters["n_boot"].default),
    ("method", r"\((\d+) resamples", lambda: inspect.signature(code("statistics").paired_speedup_ci).parameters["n_boot"].default),
    ("method", r"percentile-bootstrap (\d+)% interval", lambda: 100 * inspect.signature(code("statistics").bootstrap_ci).parameters["level"].default),
    ("method", r"An interval needs (\d+) seeds or more", lambda: code("statistics").MIN_SEEDS),
    ("method", r"R² below ([\d.]+)", lambda: code("batchfit").MIN_R2),
    ("method", r"above ([\d.]+)× its initial loss", lambda: {w.divergence_factor for w in presets().values()}.pop()),
    ("scale", r"above ([\d.]+)× its initial loss", lambda: {w.divergence_factor for w in presets().values()}.pop()),
    ("method", r"forward (\d+), backward (\d+), JVP (\d+) give", lambda: tuple(PASS_WEIGHTS.values())),
    ("method", r"evaluates every (\d+) steps and keeps", lambda: presets()["cpu"].eval_every),
    ("method", r"every step up to (\d+), then steps at most (\d+)% apart", lambda: (presets()["cpu"].eval_dense_until, 100 * presets()["cpu"].eval_relative)),
    ("method", r"every `K` over (\d+) seeds", lambda: default("calibrate", "--seeds")),
    ("method", r"the looser ones (\d+)% and (\d+)% of the way back", fractions),
    ("method", r"calibrates first \((\d+) AdamW trials at the `cpu` preset", lambda: code("calibrate").calibration_trial_count(presets()["cpu"], default("calibrate", "--seeds"))),
    ("method", r"calibrates the targets \((\d+) AdamW trials\)", lambda: code("calibrate").calibration_trial_count(presets()["gpu"], default("calibrate", "--seeds"))),
    ("method", r"(\d+)% of the modules held out", lambda: 100 * code("corpus").HELD_OUT_FRACTION),
    ("method", r"shared AdamW warm start \((\d+) and (\d+) steps", lambda: (presets()["cpu"].warm_start_steps, presets()["45m"].warm_start_steps)),
    ("method", r"shared AdamW warm start \(\d+ and (\d+) steps", lambda: presets()["150m"].warm_start_steps),
    ("method", r"a (\d+)-step shared warm start", lambda: presets()["gpu"].warm_start_steps),
    ("method", r"default sweep \((\d+) tuning trials, (\d+) seed reruns\)", lambda: grid_trials(presets()["gpu"], default("run", "--seeds"))[3::2]),
    ("README", r"(\d+) backends × (\d+) batch sizes × a (\d+)-point learning-rate grid \((\d+) trials\)", lambda: grid_trials(presets()["cpu"], 3)[:4]),
    ("README", r"then (\d+) more seeds of each selected setting \((\d+) trials\)", lambda: grid_trials(presets()["cpu"], default("run", "--seeds"))[4:]),
    ("README", r"torch's CPU build `([^`]+)`", torch_pin),
    ("README", r"readme_results\.py (\w+) \"", lambda: str(default("report", "--out"))),
    ("scale", r"refreshes it every (\d+) s", lambda: code("store").HEARTBEAT_SECONDS),
    ("scale", r"refreshed for (\d+) s, (\d+) minutes", lambda: (code("store").STALE_AFTER_SECONDS, code("store").STALE_AFTER_SECONDS / 60)),
    ("scale", r"exits with status (\d+)", lambda: code("cli").INTERRUPTED),
    ("cli", r"\| (\d+) \| Ctrl-C", lambda: code("cli").INTERRUPTED),
    ("cli", r"(\d+) seeds, a tuning budget of (\d+)", lambda: (default("run", "--seeds"), code("plan").DEFAULT_TUNE_BUDGET)),
    ("cli", r"`--k` the micro-batches per step \(default (\d+)\)", lambda: default("perf", "--k")),
    ("cli", r"`--reps` the timed repetitions \(default (\d+)\)", lambda: default("perf", "--reps")),
    ("cli", r"tuned AdamW \((\d+) seeds by default\)", lambda: default("calibrate", "--seeds")),
    ("cli", r"`RESULTS/([^`]+/failure\.txt)`", lambda: str(code("store").ResultsStore(ROOT).failure_log("RUN_ID").relative_to(ROOT))),
    ("results", r"`RESULTS/([^`]+/failure\.txt)`", lambda: str(code("store").ResultsStore(ROOT).failure_log("RUN_ID").relative_to(ROOT))),
    ("results", r"Records are schema (\d+)", lambda: code("record").SCHEMA_VERSION),
    ("plugins", r"the training loss falls over (\d+) steps", lambda: inspect.signature(code("testing").check_backend).parameters["steps"].default),
]


def same(stated: str, value) -> bool:
    try:
        return float(stated) == float(value)
    except (TypeError, ValueError):
        return stated == str(value)


@pytest.mark.parametrize("page, pattern, value", FACTS, ids=[f"{p}:{pat[:40]}" for p, pat, _ in FACTS])
def test_each_number_the_pages_state_is_the_codes(page, pattern, value):
    found = re.findall(pattern, flat(page))
    assert found, f"{path_of(page).name} no longer states {pattern!r}"
    expected = value()
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    for groups in found:
        groups = groups if isinstance(groups, tuple) else (groups,)
        assert len(groups) == len(expected) and all(map(same, groups, expected)), (
            f"{path_of(page).name} says {groups} where the code says {tuple(expected)}")


def bench_calls(page: str) -> list[tuple[str, list[str]]]:
    """(command, its --flags) of every `bench` call a page writes, in code spans and code blocks."""
    lines = [*spans(page), *(line for block in blocks(page) for line in block.splitlines())]
    known, calls = commands(), []
    for segment in (s.split(" #")[0] for line in lines for s in re.split(r" && | \| ", line)):
        words = segment.split()
        at = next((i for i, w in enumerate(words) if w.rstrip(")") == "bench" or w.endswith("/bench")), None)
        if at is None:
            continue
        name = ""
        for word in words[at + 1:]:
            if not any(c == f"{name} {word}".strip() or c.startswith(f"{name} {word} ".lstrip()) for c in known):
                break
            name = f"{name} {word}".strip()
        calls.append((name, re.findall(r"(?<![\w-])--[a-z][\w-]*", " ".join(words[at + 1:]))))
    return calls


@pytest.mark.parametrize("page", ("README", *PAGES))
def test_every_bench_call_a_page_writes_runs(page):
    known = commands()
    for name, flags in bench_calls(page):
        assert name in known, f"{page}: `bench {name}` is no command"
        unknown = set(flags) - set(known[name]) - {"--help"}
        assert not unknown, f"{page}: bench {name} has no {sorted(unknown)}"
    everything = {o for options in known.values() for o in options}
    lone = [f for s in spans(page) if s.startswith("--") for f in re.findall(r"--[a-z][\w-]*", s)]
    assert set(lone) <= everything, f"{page}: no command has {sorted(set(lone) - everything)}"


def test_the_synopsis_names_every_option_of_every_command_and_no_other():
    documented: dict[str, set[str]] = {}
    for line in blocks("cli")[0].splitlines():
        line = line.split("#")[0]
        if line.startswith("bench"):
            name = " ".join(w for w in re.split(r"\s+", line)[1:] if re.fullmatch(r"[a-z]+", w) and w != "DIR")
            current = documented.setdefault(name, set())
        current |= set(re.findall(r"(?<![\w-])--[a-z][\w-]*", line))
    documented[""] = documented.pop("")  # `bench --version`
    for name, options in commands().items():
        assert documented.get(name) == set(options), f"cli.md's synopsis of `bench {name}`: {documented.get(name)} != {set(options)}"
    assert set(documented) == set(commands()), f"cli.md's synopsis names {set(documented) - set(commands())}"
    named = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text("cli"))) - {"--help"}
    assert named <= {o for s in documented.values() for o in s}


def test_the_presets_table_is_the_workloads():
    seen = set()
    for preset, model, params, t, m, ks, budget, evals, val in table("method", "## Presets"):
        for name in re.findall(r"`(\w+)`", preset):
            w, seen = presets()[name], seen | {name}
            cfg = w.model_config()
            for pattern, field in ((r"d (\d+)", "d_model"), (r"(\d+) layers", "n_layers"), (r"(\d+) heads", "n_heads"),
                                   (r"FFN (\d+)", "d_ff"), (r"vocab (\d+)", "vocab_size")):
                assert [int(v) for v in re.findall(pattern, model)] in ([], [getattr(cfg, field)]), (name, field)
            with torch.device("meta"):
                assert params == f"{Transformer(cfg).num_parameters() / 1e6:.2f}M", name
            assert (int(t), int(m), ks, int(budget)) == (w.seq_len, w.micro_batch, ", ".join(map(str, w.ks)), w.max_steps)
            dense = f"every {w.eval_every} steps" + (f"; crossings to 1 step ({w.eval_relative:.0%} beyond "
                                                     f"{w.eval_dense_until})" if w.eval_dense_until else "")
            assert evals == dense, name
            size = f"{w.val_tokens // 2**10}K" if w.val_tokens < 2**20 else f"{w.val_tokens // 2**20}M"
            assert val.split()[0] == size, name
            assert ("(default)" in preset) == (name == default("run", "--preset"))
    assert seen == set(presets())


def test_the_targets_table_is_the_shipped_file_and_the_presets():
    shipped, rows = code("targets").load_targets(), table("method", "## Targets")
    for preset, corpus, version, targets, command in rows:
        for name in re.findall(r"`(\w+)`", preset):
            fingerprint = re.findall(r"`(\w+)`", corpus)
            entry = shipped[name][re.split(r"[ ,]", corpus)[0]] if fingerprint else presets()[name].__dict__
            assert int(version) == entry["version"], (name, corpus)
            calibrated = ", ".join(f"{x:g}" for x in entry["targets"])
            assert targets == "—" if entry.get("targets_source") == "uncalibrated" else targets.startswith(calibrated), (
                f"method.md: {name} on {corpus} has targets {targets}, the code {calibrated}")
            if fingerprint:
                assert entry["corpus_key"].endswith(f":{fingerprint[0]}") and command == f"`{entry['command']}`"
    assert len([r for r in rows if "`" in r[1]]) == sum(map(len, shipped.values()))


def module(name: str, source: str) -> types.ModuleType:
    """``source`` run as the module ``name`` (a dataclass looks its module up in ``sys.modules``)."""
    mod = sys.modules[name] = types.ModuleType(name)
    exec(compile(source, name, "exec"), mod.__dict__)
    return mod


def test_the_plugin_page_is_the_interface_and_the_example():
    from optimizers.hyper import valid_values
    from optimizers.layout import ROLES
    from optimizers.registry import GROUP, check_declaration

    page = flat("plugins")
    ns = module("docs_plugin", blocks("plugins")[0]).__dict__
    check_declaration(ns["Lion"])
    example = module("lion_example", (ROOT / "examples/optbench-lion/optbench_lion/__init__.py").read_text())
    for attr in ("name", "search_space", "description"):
        assert getattr(ns["Lion"], attr) == getattr(example.Lion, attr), attr
    hypers = [{f.name: (f.default, valid_values(h, f.name)) for f in dataclasses.fields(h)} for h in (ns["LionHyper"], example.LionHyper)]
    assert hypers[0] == hypers[1]
    assert blocks("plugins")[1] in (ROOT / "examples/optbench-lion/pyproject.toml").read_text()
    assert re.findall(r'entry-points\."([\w.]+)"', page) == [GROUP]
    for method, owner in (("__init__", Backend), ("expected_costs", Backend), ("draws_per_step", Backend),
                          ("parameter_roles", Transformer), ("stage_modules", Transformer), ("stage_flops", Transformer)):
        stated = re.findall(rf"`{method}\(([^)]*)\)", page)
        actual = [p for p in inspect.signature(getattr(owner, method)).parameters if p != "self"]
        assert stated and all(s.replace("self, ", "").replace("cls, ", "").split(", ") in (actual, [""] * (not actual))
                              for s in stated), (method, stated, actual)
    assert re.findall(r"`(\w+)`", re.search(r"role, one of (.*?);", page)[1]) == list(ROLES)
    assert {f"ctx.{f.name}" for f in dataclasses.fields(StepContext)} >= set(re.findall(r"`(ctx\.\w+)", page))
    for name in ("family", "accumulates", "ddp", "supports_compile", "memory", "diagnostics", "eval_parameters"):
        assert f"`{name}" in page and hasattr(Backend, name), name


def test_the_results_page_names_the_statuses_and_the_figures():
    page = flat("results")
    statuses = re.findall(r"`(\w+)`", re.search(r"status \((.*?) for a trial that raised", page)[1])
    trial = "".join(p.read_text() for p in Path(code("writer").__file__).parent.glob("*.py"))
    assert statuses and all(f'"{s}"' in trial for s in statuses), statuses  # each a status the trial writes
    figures = re.search(r"one legend below the panels: (.*?)\. ", page)[1]
    assert re.findall(r"`([a-z_]+)`", figures) == list(code("figures").FIGURES)
