"""dvc.yaml declares what each stage really reads: its script and every library module the script imports,
directly or through other modules, so that editing a module reruns exactly the stages that use it. The modules
of the subpackages every stage (latentspace/core) or every training stage (latentspace/training) imports are
declared as their folder: one dep instead of four, the same stages rerun."""
import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
FOLDER_DEPS = ("latentspace/core", "latentspace/training")


def module_file(name: str) -> str | None:
    """latentspace.x.y -> the .py file it names, if it is one of the project's modules."""
    parts = name.split(".")
    if parts[0] != "latentspace":
        return None
    for n in range(len(parts), 1, -1):
        candidate = "/".join(parts[:n]) + ".py"
        if (ROOT / candidate).is_file():
            return candidate
    return None


def imported_modules(path: Path, seen: set[str] | None = None) -> set[str]:
    """latentspace module files a file imports, directly or through other latentspace modules (anywhere in the
    file: a function-level import counts too)."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for module in filter(None, map(module_file, names)):
            if module not in seen:
                seen.add(module)
                imported_modules(ROOT / module, seen)
    return seen


def expected_deps(script: str) -> set[str]:
    """The library deps a stage running `script` must declare: a folder for a module inside FOLDER_DEPS, the
    module's own file otherwise."""
    return {next((f for f in FOLDER_DEPS if module.startswith(f + "/")), module)
            for module in imported_modules(ROOT / script)}


def script_of(spec: dict) -> str:
    found = re.search(r"\bpython (stages/[\w/]+\.py)\b", spec["cmd"])
    assert found, f"stage command {spec['cmd']!r} does not run a stages/ script"
    return found.group(1)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_its_script_and_every_library_module_it_imports(stage):
    spec = STAGES[stage].get("do") or STAGES[stage]
    script = script_of(spec)
    deps = [d for d in spec["deps"] if isinstance(d, str)]
    assert script in deps
    declared = {d for d in deps if d.startswith("latentspace/")}
    assert declared == expected_deps(script)


def test_every_stage_script_is_a_stage():
    used = {script_of(spec.get("do") or spec) for spec in STAGES.values()}
    assert used == {p.relative_to(ROOT).as_posix() for p in (ROOT / "stages").rglob("*.py")}


def test_the_closure_follows_imports_through_modules_and_folders():
    # stages/study_a/generate_image_sets.py imports latentspace.study_a.image_sets, which imports rectangles, which imports core.io.
    closure = imported_modules(ROOT / "stages/study_a/generate_image_sets.py")
    assert {"latentspace/study_a/image_sets.py", "latentspace/study_a/rectangles.py", "latentspace/core/io.py"} <= closure
    assert "latentspace/study_a/latent.py" not in closure
    assert expected_deps("stages/study_a/generate_image_sets.py") == {
        "latentspace/constants.py", "latentspace/core", "latentspace/paths.py", "latentspace/study_a/image_sets.py",
        "latentspace/study_a/rectangles.py"}


def test_python_caches_never_count_as_a_change_of_a_folder_dep():
    # A folder dep hashes every file in it: bytecode written by a stage run must not count.
    assert "__pycache__/" in (ROOT / ".dvcignore").read_text().split()
