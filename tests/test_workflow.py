"""The GitHub workflow (.github/workflows/benchmark.yml): runs on GitHub as it is (the embedded corpus, no
../shared), least privilege per job, the leaderboard written only from the default branch, submissions
validated; and zizmor finds nothing in it (actionlint runs in .ci/run)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "benchmark.yml"
# installed by .[dev] next to this interpreter, whether or not its environment is activated
ZIZMOR = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_it_reads_nothing_that_exists_only_on_our_machines():
    text = WORKFLOW.read_text()
    assert "../shared" not in text and "OPTBENCH_TEST_DATA" not in text


def test_each_job_gets_the_least_it_needs(workflow):
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    writers = {name for name, job in jobs.items() if "write" in (job.get("permissions") or {}).values()}
    assert writers == {"leaderboard"} and jobs["leaderboard"]["permissions"] == {"contents": "write"}
    assert all(job.get("timeout-minutes") for job in jobs.values())
    for name, job in jobs.items():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout") and name != "leaderboard":
                assert step["with"]["persist-credentials"] is False


def test_the_leaderboard_is_committed_only_from_pushes_to_the_default_branch(workflow):
    job = workflow["jobs"]["leaderboard"]
    assert job["needs"] == "smoke"
    assert "github.event_name == 'push'" in job["if"] and "default_branch" in job["if"]
    script = "\n".join(step.get("run", "") for step in job["steps"])
    assert "bench leaderboard merge" in script and "--strict" in script and "submissions" in script


def test_pull_requests_validate_their_submissions(workflow):
    job = workflow["jobs"]["submissions"]
    assert job["if"] == "github.event_name == 'pull_request'" and job["permissions"] == {"contents": "read"}
    assert any("bench leaderboard merge submissions" in step.get("run", "") and "--strict" in step.get("run", "")
               for step in job["steps"])


def test_submissions_are_validated_only_when_records_are_there(workflow, tmp_path):
    # submissions/ is committed with its README: a guard on any file would run the job on no records
    guards = {step.get("if") for step in workflow["jobs"]["submissions"]["steps"][1:]}
    assert guards == {"hashFiles('submissions/**/*.json') != ''"}
    pattern = "**/*.json"  # hashFiles' glob, relative to submissions/
    assert not list((WORKFLOW.parents[2] / "submissions").glob(pattern))
    (tmp_path / "mine" / "runs").mkdir(parents=True)
    (tmp_path / "mine" / "runs" / "abc.json").write_text("{}")
    (tmp_path / "top.json").write_text("{}")
    assert len(list(tmp_path.glob(pattern))) == 2
    script = next(step["run"] for step in workflow["jobs"]["leaderboard"]["steps"] if "merge" in step.get("run", ""))
    assert "find submissions -name '*.json'" in script


def test_no_template_expansion_inside_scripts(workflow):
    for job in workflow["jobs"].values():
        assert all("${{" not in step.get("run", "") for step in job["steps"])


@pytest.mark.skipif(ZIZMOR is None, reason="zizmor is not installed")
def test_zizmor_finds_nothing():
    out = subprocess.run([ZIZMOR, "--offline", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
