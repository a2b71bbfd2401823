"""The report (benchmark/report/render.py, tables.py, figures.py, page.py) from real and generated records: figures,
tables, the HTML page in a real headless browser; no interval from one seed, failures in their own section
and a cell whose tuning is incomplete said to be."""

import html
import json
import os
import random
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from helpers import synthetic_record, write_records

from benchmark.report.figures import FIGURES
from benchmark.report.render import render


@pytest.mark.slow
def test_report_writes_every_artifact_and_is_deterministic(smoke_results, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    render(smoke_results, a)
    render(smoke_results, b)
    for name in FIGURES:
        assert (a / f"{name}.png").stat().st_size > 5_000 and (a / f"{name}.svg").exists()
    for name in ("leaderboard.md", "summary.csv", "batch_fits.csv", "leaderboard.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    md = (a / "leaderboard.md").read_text()
    assert md.index("## What was found") < md.index("steps to validation loss")
    assert "speedup vs AdamW" in md and "Critical batch size" in md and "| muon |" in md
    board = json.loads((a / "leaderboard.json").read_text())
    assert board["schema"] == "optbench-leaderboard" and board["version"] == 2
    assert board["headline"][0]["findings"][0].startswith("**")
    finals = [e for e in board["entries"] if e["label"] == "adamw"]
    assert all(e["runs"] == 2 for e in finals)  # the selected setting over both seeds


def test_report_cli_on_one_censored_optimizer_and_damaged_files_says_what_it_skipped(tmp_path):
    """One optimizer, one seed, its tightest target never reached, beside files of every damaged kind."""
    results = write_records(tmp_path / "R", [synthetic_record("adamw", 4, 0, rate=0.03, budget=20)])
    runs = results / "runs"
    (runs / "noise.json").write_bytes(bytes(random.Random(0).randrange(256) for _ in range(500)))
    (runs / "truncated.json").write_text('{"schema_version": 2, "run": {"run_')
    (runs / "future.json").write_text(json.dumps({"schema_version": 99, "run": {"run_id": "x"}, "evals": []}))
    partial = synthetic_record("muon", 4, 0)
    del partial["run"]["k"]
    (runs / "partial.json").write_text(json.dumps(partial))
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "report", "--results", str(results),
                          "--out", str(tmp_path / "O")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert ("warning: skipped 4 record files that cannot be used: 1 missing fields, 1 not JSON, 1 not UTF-8, "
            "1 other schema") in out.stderr
    assert "Traceback" not in out.stderr
    for name in FIGURES:
        assert (tmp_path / "O" / f"{name}.png").stat().st_size > 5_000
    page = (tmp_path / "O" / "index.html").read_text()
    assert "Skipped 4 record files that cannot be used" in page and "≥ 20 (censored, n = 1)" in page


def test_a_one_seed_one_backend_folder_has_no_interval_no_mark_and_no_best(tmp_path):
    records = [synthetic_record("adamw", k, 0, lr, role="tune", rate=r) for k in (2, 4)
               for lr, r in ((0.003, 0.1), (0.01, 0.2))]
    render(write_records(tmp_path / "R", records), tmp_path / "O")
    md = (tmp_path / "O" / "leaderboard.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| 2 ") or line.startswith("| 4 ")]
    assert rows and all("(n = 1)" in row and "[" not in row and " *" not in row for row in rows)
    assert "- **adamw**: 8.1 (n = 1) steps (its tuning optimum is at an edge" in md
    assert "best first-order method here" not in md
    assert "at least half of its runs never reached the target" in md and "more than half" not in md
    summary = pd.read_csv(tmp_path / "O" / "summary.csv")
    assert (summary["seeds"] == 1).all() and summary["steps_ci_low"].isna().all()
    board = json.loads((tmp_path / "O" / "leaderboard.json").read_text())
    assert {e["seeds"] for e in board["entries"]} == {1}
    page = (tmp_path / "O" / "index.html").read_text()
    assert "8.1 (n = 1)" in page and "at least half of its runs" in page


def test_failures_are_listed_apart_and_incomplete_tuning_is_said(tmp_path):
    planned = [f"cpu-muon-k4-s0-{lr:g}" for lr in (0.01, 0.03)]
    records = [synthetic_record("adamw", 4, s, rate=0.2 + 0.01 * s) for s in range(3)]
    records += [synthetic_record("muon", 4, 0, 0.01, role="tune", rate=0.3, cell_trials=planned),
                synthetic_record("muon", 4, 0, 0.03, role="tune", rate=0.3, failed_at=3, cell_trials=planned),
                synthetic_record("adamw", 4, 3, rate=0.2, failed_at=7),
                synthetic_record("adamw", 4, 4, rate=0.2, diverge_at=5)]
    render(write_records(tmp_path / "R", records), tmp_path / "O")
    md = (tmp_path / "O" / "leaderboard.md").read_text()
    found = md.split("## What was found")[1].split("##")[0]
    assert "**muon**" not in found.split("Not covered here")[0]
    assert "Not covered here: **muon** (tuning incomplete: 1 of 2 trials)." in found
    assert "| muon | lr=0.01 (tuning incomplete: 1 of 2 trials) | 1 of 2 (" in md
    failed = md.split("## Failed trials")[1]
    assert "| cpu v7 · python-stdlib | adamw | 4 | lr=0.01 | 3 | seed | 7 | RuntimeError | adamw broke at step 7 | " \
           "logs/cpu-adamw-k4-s3-0.01/traceback.txt |" in failed
    assert "| muon | 4 | lr=0.03 | 0 | tune | 3 | RuntimeError |" in failed and "diverge" not in failed.split("|")[-1]
    assert "| 4 | 4096 | adamw | lr=0.01 | 0 | " in md and " | 3 / 0 / 1 | " in md  # 4 runs: the failed one is none
    board = json.loads((tmp_path / "O" / "leaderboard.json").read_text())
    assert [(f["label"], f["seed"], f["step"], f["type"]) for f in board["failures"]] == [
        ("adamw", 3, 7, "RuntimeError"), ("muon", 0, 3, "RuntimeError")]
    assert len(board["runs"]) == len(records)
    page = (tmp_path / "O" / "index.html").read_text()
    assert '<section id="failures"><h2>Failed trials</h2>' in page and "adamw broke at step 7" in page


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_html_report_loads_in_a_real_browser_without_console_errors(smoke_results, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Chromium (Debian package chromium) for the report test")
        pytest.skip("no Chromium on this machine")
    out = tmp_path / "O"
    render(smoke_results, out)
    page = (out / "index.html").resolve()
    assert "http://" not in page.read_text() and "https://" not in page.read_text()  # self-contained
    profile = tmp_path / "profile"
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert '<section id="headline">' in dom and "What was found" in dom and "vs AdamW" in dom
    assert '<table class="sortable">' in dom and dom.count("<tr>") > 3
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors
    # every figure decodes and is laid out with a non-zero size, and clicking a header sorts the table
    probe = out / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _dump(browser, probe, tmp_path / "profile2")
    sizes = json.loads(html.unescape(dom.split('data-sizes="')[1].split('"')[0]))
    assert sorted(sizes) == sorted(FIGURES)
    for name, (natural, width, height) in sizes.items():
        assert natural > 300 and width > 300 and height > 100, (name, natural, width, height)
    order = json.loads(html.unescape(dom.split('data-sorted="')[1].split('"')[0]))
    assert order == sorted(order, reverse=True) and len(order) > 3


PROBE = """<script>window.addEventListener('load', () => {
  const sizes = {};
  document.querySelectorAll('figure img').forEach(i => {
    const r = i.getBoundingClientRect(); sizes[i.alt] = [i.naturalWidth, r.width, r.height]; });
  document.body.dataset.sizes = JSON.stringify(sizes);
  const th = document.querySelector('table.sortable th:nth-child(2)'); th.click(); th.click();
  document.body.dataset.sorted = JSON.stringify([...th.closest('table').tBodies[0].rows].map(r =>
    parseFloat(r.cells[1].dataset.v)));
});</script>"""


def _dump(browser, page, profile) -> str:
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--window-size=1400,3000", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_cli_runs_on_an_empty_folder_with_one_line(tmp_path):
    (tmp_path / "runs").mkdir()
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "report", "--results", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


