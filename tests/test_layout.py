"""The layout's rules, checked on the source itself: no import cycle between modules (imports inside
functions included) or between packages, nothing in models/ imports the harness, no backend opens the model
(attributes and methods of the hosted model's own, beyond ``nn.Module``'s), no file over 300 lines and no
function over 50."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("benchmark", "optimizers", "models", "scripts")
CHECKED_FOR_SIZE = (*PACKAGES, "tests")
MAX_FILE_LINES, MAX_FUNCTION_LINES = 300, 50


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Project modules that ``path`` imports anywhere in its body (a name imported from a package counts as
    its submodule when one of that name exists)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES}


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [*path, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_checker_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    # a package's __init__ importing its own submodules is how a package registers them: not a cycle
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in GRAPH.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


# benchmark/ by folder: what each may never import. The harness stacks the workload and its data under the
# results, the trial on them, the sweep on the trial; the report reads records only, never the code that wrote them.
NEVER = {
    "workload": {"data", "trial", "sweep", "results", "report"},
    "data": {"trial", "sweep", "results", "report"},
    "results": {"data", "trial", "sweep", "report"},
    "trial": {"sweep", "report"},
    "sweep": {"report"},
    "report": {"data", "trial", "sweep"},
}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "benchmark" and len(parts) > 2 else None


def test_each_folder_of_the_harness_keeps_to_its_layer():
    assert set(NEVER) == {_folder(m) for m in MODULES} - {None}, "a folder of benchmark/ has no rule"
    broken = sorted(f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps
                    if _folder(m) in NEVER and _folder(d) in NEVER[_folder(m)])
    assert not broken, "; ".join(broken)


def test_no_import_cycle_between_packages_and_models_never_imports_the_harness():
    packages = {p: set() for p in PACKAGES}
    for module, deps in GRAPH.items():
        packages[module.split(".")[0]] |= {d.split(".")[0] for d in deps} - {module.split(".")[0]}
    assert _cycle(packages) is None, " -> ".join(_cycle(packages))
    assert "benchmark" not in packages["models"]
    assert packages["optimizers"] == set(), "a backend needs torch only, never the harness or the model code"


def _model_only_names() -> set[str]:
    """Attributes and methods that the hosted model has and any ``nn.Module`` has not (``embed``, ``cfg``, its
    declared interface...): what a backend must get from its layout instead."""
    from torch import nn

    from tests.helpers import tiny_model

    return set(dir(tiny_model())) - set(dir(nn.Module()))


def test_no_backend_opens_the_model():
    names = _model_only_names()
    assert {"embed", "head", "blocks", "cfg", "parameter_roles", "stage_modules"} <= names
    found = [f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}"
             for path in sorted((ROOT / "optimizers").rglob("*.py"))
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and node.attr in names]
    assert not found, "backends read the model's own attributes (take them from the layout): " + ", ".join(found)


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT) for d in CHECKED_FOR_SIZE for p in (ROOT / d).rglob("*.py")),
                         ids=str)
def test_files_and_functions_are_small(path):
    path = ROOT / path
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_FILE_LINES, f"{path.relative_to(ROOT)} is over {MAX_FILE_LINES} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_FUNCTION_LINES, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines"
