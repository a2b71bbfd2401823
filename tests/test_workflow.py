"""The GitHub workflow (.github/workflows/benchmark.yml): runs on GitHub as it is (the embedded corpus, no
../shared), least privilege per job, the leaderboard written only from the default branch, submissions
validated, the newest allowed versions tested weekly and on pull requests; and zizmor finds nothing in it
(actionlint runs in .ci/run). Also the lock that the workflow, the README's commands, .ci/run and tox
install: torch's CPU build, no CUDA package, inside every range of pyproject.toml."""

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "benchmark.yml"
LOCK = ROOT / "requirements-cpu.lock"
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


def locked() -> dict[str, str]:
    """The lock's pins, name -> version (its other lines are comments: the header and `# via`)."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and name == name.strip() and re.fullmatch(r"[\w.+!]+", version), line
            pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_the_cpu_build_of_torch_and_nothing_of_cuda():
    pins = locked()
    constraint = [line for line in (ROOT / "constraints-cpu.txt").read_text().splitlines() if line.startswith("torch")]
    assert constraint == [f"torch=={pins['torch']}"] and pins["torch"].endswith("+cpu")
    assert not [name for name in pins if name.startswith("nvidia-") or name in ("triton", "pytorch-triton")]


def test_the_lock_is_inside_every_range_of_pyproject():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = locked()
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(spec)
        assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier), f"{spec}: no upper bound"
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in the lock: run scripts/lock.sh"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {spec}"


def test_the_readme_commands_ci_and_the_workflow_install_the_lock(workflow):
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set-up: two commands"):readme.index("## What is measured")]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    install = ("python3 -m venv .venv && .venv/bin/pip install -q -r requirements-cpu.lock && "
               ".venv/bin/pip install -q --no-deps -e . && ")
    assert len(commands) == 2 and all(command.startswith(install) for command in commands)
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()  # the README's test command, exactly
    # torch's CPU build is on PyTorch's own index, not on PyPI
    assert workflow["env"] == {"PIP_EXTRA_INDEX_URL": "https://download.pytorch.org/whl/cpu"}
    for name, job in workflow["jobs"].items():
        installs = [line.strip() for step in job["steps"] for line in step.get("run", "").splitlines()
                    if "pip install" in line and "--upgrade pip" not in line]
        assert installs, name
        if name == "newest":
            assert installs == ["python -m pip install --upgrade --upgrade-strategy eager -c constraints-cpu.txt -e '.[dev]'"]
        else:
            assert all("requirements-cpu.lock" in line or line.endswith("--no-deps -e .") for line in installs), name
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert "requirements-cpu.lock" in tox["testenv"]["deps"] and "requirements-cpu.lock" in tox["testenv"]["setenv"]


def test_the_newest_allowed_versions_are_tested_weekly_and_on_pull_requests(workflow):
    triggers = workflow[True]  # PyYAML reads the key `on` as true
    assert triggers["schedule"] and "pull_request" in triggers
    job = workflow["jobs"]["newest"]
    assert "'schedule'" in job["if"] and "'pull_request'" in job["if"] and "needs" not in job
    assert job["permissions"] == {"contents": "read"}
    assert [step["run"] for step in job["steps"] if step.get("name") == "Fast tests"] == [
        'python -m pytest -q -m "not slow"']
    # the full suite and the smoke run do not repeat on the schedule
    assert workflow["jobs"]["smoke"]["if"] == "github.event_name != 'schedule'"
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    env = tox["testenv:newest"]
    assert env["recreate"] == "true" and "--upgrade --upgrade-strategy eager" in env["install_command"]
    assert "constraints-cpu.txt" in env["setenv"] and 'python -m pytest -q -m "not slow"' in env["commands"]
