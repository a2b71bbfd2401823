"""The report (benchmark/report.py, tables.py, figures.py, page.py) from real records: figures, tables, and
the HTML page in a real headless browser."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmark.figures import FIGURES
from benchmark.report import render


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
    assert "speedup vs AdamW" in md and "Critical batch size" in md and "| muon |" in md
    board = json.loads((a / "leaderboard.json").read_text())
    assert board["schema"] == "optbench-leaderboard" and board["version"] == 1
    finals = [e for e in board["entries"] if e["optimizer"] == "adamw"]
    assert all(e["runs"] == 2 for e in finals)  # the selected setting over both seeds


@pytest.mark.slow
def test_bad_records_are_counted_and_skipped(smoke_results, tmp_path):
    results = tmp_path / "R"
    shutil.copytree(smoke_results, results)
    runs = results / "runs"
    (runs / "truncated.json").write_text('{"schema_version": 1, "run": {"run_')
    (runs / "other.json").write_text(json.dumps({"schema_version": 99, "run": {"run_id": "x"}, "evals": []}))
    (runs / "partial.json").write_text(json.dumps({"schema_version": 1, "run": {}}))
    with pytest.warns(UserWarning, match="1 missing fields, 1 other schema, 1 unreadable"):
        render(results, tmp_path / "O")
    assert (tmp_path / "O" / "leaderboard.md").exists()


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
    assert '<table id="leaderboard">' in dom and dom.count("<tr>") > 3
    for name in FIGURES:
        assert f'alt="{name}"' in dom
    console_errors = [line for line in proc.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors
    # every embedded figure decodes: the browser reports each image's natural width
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}2",
                    "--window-size=1400,3000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000


def test_report_cli_runs_on_an_empty_folder_with_one_line(tmp_path):
    (tmp_path / "runs").mkdir()
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", "report", "--results", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


