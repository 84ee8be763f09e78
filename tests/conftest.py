import os
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

ROOT = Path(__file__).resolve().parents[1]
# tests/ mirrors the packages (tests/study_a/, tests/verdicts/, ...); test modules import shared helpers
# (fake_metrics, browser) and each other's tiny settings (TINY_STUDY_B, ...) by module name from any folder.
for _folder in [Path(__file__).parent, *sorted(p for p in Path(__file__).parent.iterdir() if p.is_dir())]:
    if _folder.name != "__pycache__" and str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

# Tests never touch the real datasets or a GPU.
os.environ.pop("LATENTSPACE_DATA_DIR", None)
# Tiny tensors gain nothing from threads, and OpenMP threads that spin-wait on a busy 2-core machine make
# every op 10-20x slower; stage subprocesses inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    """Long tests first: the end-to-end tests, led by those on the shared tiny pipeline (so its one build starts at
    once), then the rest in their usual order. pytest-xdist hands the list out in this order, so no long test starts
    last while the other workers sit idle."""
    def rank(item) -> int:
        if {"tiny_pipeline", "tiny_pipeline_repo"} & set(getattr(item, "fixturenames", ())):
            return 0
        return 1 if item.get_closest_marker("e2e") else 2
    items.sort(key=rank)


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

    def run(self, *args: str, check: bool = True, env: dict | None = None, cwd: Path | None = None):
        import subprocess
        res = subprocess.run(list(args), cwd=cwd or self.path, env={**self.env, **(env or {})},
                             capture_output=True, text=True)
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    dvc_bin = str(Path(sys.executable).parent / "dvc")

    def dvc(self, *args: str, **kw):
        return self.run(self.dvc_bin, *args, **kw)

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

    def json(self, rel: str):
        """The parsed JSON file at `rel` inside the repository (a metrics file, say)."""
        import json
        return json.loads((self.path / rel).read_text())

    def commit(self, message: str = "update") -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)

    def ran_stages(self, output: str) -> set[str]:
        """Names of the stages that `dvc repro`/`dvc exp run` output says it ran."""
        import re
        return set(re.findall(r"Running stage '([^']+)'", output))


def _repo_env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}


def new_dvc_repo(repo: Path) -> DvcRepo:
    """Copy dvc.yaml, params.yaml, .dvcignore, stages/ and latentspace/ into a fresh git repo with DVC initialised."""
    import shutil
    repo.mkdir(parents=True)
    # references.yaml and paper_scale.yaml: deps of the verdicts stage; requirements.lock: of the report stage.
    for name in ("dvc.yaml", "params.yaml", "references.yaml", "paper_scale.yaml", "requirements.lock"):
        shutil.copy(ROOT / name, repo / name)
    # The library too: stages declare its modules as deps (stages import the installed package, which is ROOT's).
    for folder in ("stages", "latentspace"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    r = DvcRepo(repo, _repo_env())
    r.run("git", "init", "-q", "-b", "main")
    r.dvc("init", "-q")
    shutil.copy(ROOT / ".dvcignore", repo / ".dvcignore")
    # What `dvc config core.analytics false` and `dvc config core.autostage true` write (the project's settings),
    # without two more DVC start-ups per repository.
    (repo / ".dvc/config").write_text("[core]\n    analytics = false\n    autostage = true\n")
    return r


@pytest.fixture
def dvc_repo(tmp_path) -> DvcRepo:
    """A fresh git + DVC repository holding this project's pipeline definition (`new_dvc_repo`)."""
    return new_dvc_repo(tmp_path / "repo")


def _once_for_all_workers(tmp_path_factory, name: str, build) -> Path:
    """`build(folder)` run once per test session, whatever the number of pytest-xdist workers: the first worker to
    ask builds it in the session's shared temporary folder under a file lock, the others wait for it and reuse it."""
    import shutil

    from filelock import FileLock
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)     # a build that failed in another worker
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, tiny_datasets_dir) -> DvcRepo:
    """The whole pipeline at tiny sizes (tests/tiny_pipeline.py), run by one `dvc repro` and committed, built once
    per test session (across pytest-xdist workers) for the end-to-end tests that share it. Never change it: take a
    copy with `tiny_pipeline_repo`. Its `ran` attribute holds the stages that repro ran, `output` what it printed."""
    import json

    def build(folder: Path) -> None:
        import tiny_pipeline as tiny
        repo = new_dvc_repo(folder / "repo")
        repo.set_params(**TINY_DATASETS_PARAMS, **tiny.SETTINGS)
        repo.commit("tiny pipeline")   # dvclive needs a commit
        output = repo.dvc("repro", env={"LATENTSPACE_DATA_DIR": str(tiny_datasets_dir)}).stdout
        repo.commit("outputs")
        (folder / "repro.log").write_text(output)
        (folder / "ran.json").write_text(json.dumps(sorted(repo.ran_stages(output))))

    folder = _once_for_all_workers(tmp_path_factory, "tiny_pipeline", build)
    repo = DvcRepo(folder / "repo", _repo_env())
    repo.ran = set(json.loads((folder / "ran.json").read_text()))
    repo.output = (folder / "repro.log").read_text()
    return repo


@pytest.fixture
def tiny_pipeline_repo(tiny_pipeline, tmp_path) -> DvcRepo:
    """A copy of the shared tiny pipeline (repository, outputs and DVC cache) for one test to change at will."""
    import shutil
    copy = tmp_path / "repo"
    shutil.copytree(tiny_pipeline.path, copy, symlinks=True)
    repo = DvcRepo(copy, _repo_env())
    repo.ran, repo.output = set(tiny_pipeline.ran), tiny_pipeline.output
    return repo


# --- tiny stand-ins for MNIST and CIFAR-10 (offline layout, for LATENTSPACE_DATA_DIR) ----------------

# Seven-segment strokes per digit (top, upper right, lower right, bottom, lower left, upper left, middle):
# shapes a small net can learn in a few epochs, so tests can check that training does something.
_SEGMENTS = ("abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg")


def _tiny_digits(n: int, rng) -> tuple:
    import numpy as np
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = np.zeros((n, 28, 28), np.float32)
    for i, digit in enumerate(y):
        top, left = 5 + rng.integers(-2, 3), 9 + rng.integers(-2, 3)
        height, width, t = 18, 10, rng.integers(2, 4)
        mid, bottom, right = top + height // 2, top + height, left + width
        boxes = {"a": (top, top + t, left, right), "g": (mid - t // 2, mid - t // 2 + t, left, right),
                 "d": (bottom - t, bottom, left, right), "f": (top, mid, left, left + t),
                 "e": (mid, bottom, left, left + t), "b": (top, mid, right - t, right),
                 "c": (mid, bottom, right - t, right)}
        for s in _SEGMENTS[digit]:
            r0, r1, c0, c1 = boxes[s]
            x[i, r0:r1, c0:c1] = rng.uniform(160, 255)
    x += rng.normal(0, 20, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)


def _tiny_cifar(n: int, rng) -> tuple:
    import numpy as np
    # Sorted by class, as the offline CIFAR-10 copy is: the preparation stage must shuffle.
    y = np.sort(np.arange(n) % 10)
    rows = np.arange(32)[:, None]
    x = np.empty((n, 32, 32, 3), np.float32)
    for i, c in enumerate(y):
        colour = np.array([(c * 25) % 256, (255 - c * 25) % 256, (c * 70) % 256], np.float32)
        stripes = ((rows + np.arange(32)[None, :] * (c % 3)) // (2 + c % 4)) % 2
        x[i] = colour * (0.5 + 0.5 * stripes[..., None])
    x += rng.normal(0, 25, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)


def write_tiny_datasets(folder: Path, *, mnist=(600, 200), cifar10=(500, 100), seed: int = 0) -> Path:
    """Write tiny fake mnist.npz (x NHW) and cifar10.npz (x NHWC) in the offline layout into `folder`."""
    import numpy as np
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (n_train, n_test), make in (("mnist", mnist, _tiny_digits), ("cifar10", cifar10, _tiny_cifar)):
        x_train, y_train = make(n_train, rng)
        x_test, y_test = make(n_test, rng)
        np.savez(folder / f"{name}.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return folder


@pytest.fixture(scope="session")
def tiny_datasets_dir(tmp_path_factory) -> Path:
    """A folder holding tiny fake mnist.npz (600 train / 200 test, 28x28) and cifar10.npz (500 / 100,
    32x32x3, sorted by class) in the offline layout; point LATENTSPACE_DATA_DIR at it. Shared by the
    session: read it, never write into it. Use `tiny_datasets_params` too: the default validation
    sizes (10,000 and 5,000) do not fit such small training sets."""
    # One copy for all workers: the .npz files carry their write time, and the shared tiny pipeline records their
    # checksums.
    return _once_for_all_workers(tmp_path_factory, "tiny_datasets", write_tiny_datasets)


# params.yaml overrides that fit the tiny datasets.
TINY_DATASETS_PARAMS = {"datasets.mnist.val_size": 100, "datasets.cifar10.val_size": 50}


@pytest.fixture
def tiny_datasets_params() -> dict:
    """params.yaml overrides that fit the tiny datasets: `dvc_repo.set_params(**tiny_datasets_params)`."""
    return dict(TINY_DATASETS_PARAMS)
