import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never touch the real datasets or a GPU.
os.environ.pop("LATENTSPACE_DATA_DIR", None)


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def python_bin() -> str:
    return sys.executable


class DvcRepo:
    """A throwaway git + DVC repository holding a copy of this project's pipeline definition."""

    def __init__(self, path: Path, env: dict):
        self.path, self.env = path, env

    def run(self, *args: str, check: bool = True, env: dict | None = None):
        import subprocess
        res = subprocess.run(list(args), cwd=self.path, env={**self.env, **(env or {})},
                             capture_output=True, text=True)
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def dvc(self, *args: str, **kw):
        return self.run(str(Path(sys.executable).parent / "dvc"), *args, **kw)

    def set_params(self, **dotted) -> None:
        """set_params(**{"rectangles.train_size": 64}) edits params.yaml in place."""
        import yaml
        p = self.path / "params.yaml"
        data = yaml.safe_load(p.read_text())
        for key, value in dotted.items():
            node = data
            *parents, last = key.split(".")
            for k in parents:
                node = node[k]
            node[last] = value
        p.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))

    def commit(self, message: str = "update") -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)

    def ran_stages(self, output: str) -> set[str]:
        """Names of the stages that `dvc repro`/`dvc exp run` output says it ran."""
        import re
        return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture
def dvc_repo(tmp_path) -> DvcRepo:
    """Copy dvc.yaml, params.yaml and stages/ into a fresh git repo with DVC initialised."""
    import shutil
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}
    r = DvcRepo(repo, env)
    r.run("git", "init", "-q", "-b", "main")
    r.dvc("init", "-q")
    r.dvc("config", "core.analytics", "false")
    r.dvc("config", "core.autostage", "true")
    return r
