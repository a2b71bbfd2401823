"""The README: at most 200 lines that link every reference page, a layout tree of folders that exist, one
trial's path through functions that exist; every path and link the README and the pages name resolves;
and its results section, which scripts/readme_results.py writes from a report between two markers only; the
results page states the leaderboard's version and columns as the report writes them."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import synthetic_record, write_records
from test_docs import END, GENERATED, PAGES, ROOT, START, TOP, blocks, code, path_of, spans, text

MAX_LINES = 200


def test_the_readme_is_short_and_links_every_page():
    readme = text("README")
    assert len(readme.splitlines()) <= MAX_LINES
    assert readme.count(START) == readme.count(END) == 1 and readme.index(START) < readme.index(END)
    assert {f"docs/{page}.md" for page in PAGES} <= set(re.findall(r"\]\((docs/\w+\.md)", readme))


def test_the_layout_tree_names_folders_and_files_that_exist():
    tree = next(b for b in blocks("README") if b.startswith("benchmark/"))
    parent = None
    for line in tree.splitlines():
        name = line.split()[0]
        if name.endswith(",") or name.startswith("."):
            continue  # `.ci/run, .github/`: checked as paths below
        path = (parent / name) if line.startswith("  ") else Path(name)
        parent = path if not line.startswith("  ") else parent
        assert (ROOT / path).exists(), f"README's layout names {path}, which is not there"


def test_one_trials_path_runs_through_functions_that_exist():
    named = re.findall(r"`(\w+)` \(`([\w/]+)\.py`", " ".join(text("README").split()))
    assert len(named) >= 5
    for function, path in named:
        module = importlib.import_module(path.replace("/", "."))
        assert hasattr(module, function), f"README: {path}.py has no {function}"


def _exists(token: str) -> bool:
    path = ROOT / token.rstrip("/")
    if path.exists() or token in GENERATED:
        return True
    stem, _, attr = token.rpartition(".")  # tests/perf/conftest.peak_bytes
    return Path(f"{ROOT / stem}.py").exists() and f"def {attr}(" in Path(f"{ROOT / stem}.py").read_text()


def _resolves(dotted: str) -> bool:
    """``dotted`` names a module, or an attribute of one (benchmark.results.store.ResultsStore)."""
    parts = dotted.split(".")
    for at in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:at]))
        except ImportError:
            continue
        for attr in parts[at:]:
            obj = getattr(obj, attr, None)
        return obj is not None
    return False


@pytest.mark.parametrize("page", ("README", *PAGES))
def test_every_path_module_and_link_a_page_names_is_there(page):
    words = [w.strip(",.;:()") for s in spans(page) + blocks(page) for w in s.split()]
    for token in (w for w in words if w.split("/")[0] in TOP and "/" in w and not re.search(r"[<*$]", w)):
        assert _exists(token), f"{page} names {token}, which is not there"
    for span in (s for s in spans(page) if re.match(r"(benchmark|optimizers|models)\.\w", s) and ".py" not in s):
        assert _resolves(span.split("(")[0]), f"{page} names {span}, which is not there"
    for target in re.findall(r"\]\(([^)]+)\)", text(page)):
        file, _, anchor = target.partition("#")
        linked = (path_of(page).parent / file).resolve()
        assert linked.exists() or linked.relative_to(ROOT).as_posix() in GENERATED, f"{page} links {target}"
        slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", linked.read_text() if linked.suffix == ".md" else "", re.M)}
        assert not anchor or anchor in slugs, f"{page} links {target}: no such heading"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report folder as `bench report` writes it, from synthetic records of two optimizers at two K."""
    root = tmp_path_factory.mktemp("report")
    records = [synthetic_record(optimizer, k, seed, rate=rate + 0.01 * seed)
               for optimizer, rate in (("adamw", 0.1), ("gn", 0.3)) for k in (2, 4) for seed in range(3)]
    code("render").render(write_records(root / "results", records), root / "report")
    return root / "report"


def _script():
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "scripts" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_writes_between_the_markers_only_and_copies_the_figure(report, tmp_path):
    readme, original = tmp_path / "README.md", text("README")
    readme.write_text(original)
    args = [str(report), "bench run --suite iteration-complexity", "--readme", str(readme)]
    assert _script().main(args) == 0
    written = readme.read_text()
    before, after = original.split(START)[0] + START, END + original.split(END)[1]
    assert written.startswith(before) and written.endswith(after)
    body = written[len(before):-len(after)]
    assert "regenerated" not in body and "**gn**" in body  # the headline replaced the placeholder
    assert len(re.findall(r"^\| (adamw|gn) \| [24] \| \d", body, re.M)) == 4  # every K at the tightest target
    assert "(n = 3)" in body and "![" in body and "(docs/results/speedup.png)" in body
    assert body.rstrip().endswith("Produced by `bench run --suite iteration-complexity` at commit `0.1.0+test`.")
    assert (tmp_path / "docs/results/speedup.png").read_bytes() == (report / "speedup.png").read_bytes()
    _script().main(args)
    assert readme.read_text() == written  # a second run changes nothing


def test_the_script_refuses_a_readme_without_markers_and_writes_nothing(report, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# a README with no results section\n")
    with pytest.raises(SystemExit, match="results:start"):
        _script().main([str(report), "bench run", "--readme", str(readme)])
    assert readme.read_text() == "# a README with no results section\n"
    assert not (tmp_path / "docs").exists()


def test_the_report_writes_every_file_the_results_page_names(report):
    named = re.findall(r"`(\w+\.(?:html|md|json|csv))`", text("results").split("## The report")[1].split("\n## ")[0])
    assert len(named) >= 5 and all((report / name).exists() for name in named), named


def test_the_results_page_states_the_leaderboards_version_and_its_columns(report):
    page = " ".join(text("results").split())
    board = json.loads((report / "leaderboard.json").read_text())
    assert f"`leaderboard.json` (schema `{board['schema']}`, version {board['version']})" in page
    identity = ["setup", "workload", "target", "k", "tokens_per_step", "label", "optimizer", "family", "setting"]
    assert all(f"`{c}`" in page.split("**Columns.**")[1] for c in identity)
    assert list(pd.read_csv(report / "summary.csv").columns[:len(identity)]) == identity
    assert list(pd.read_csv(report / "batch_fits.csv").columns[:5]) == ["setup", "workload", "target", "label", "optimizer"]
    assert {"setup", "workload", "label", "optimizer"} <= set(board["entries"][0])
