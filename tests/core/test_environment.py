"""The front door's promises about the environment: every dependency locked (requirements.lock, installed by
`make setup`), the citation file, and the trained models listed as DVC artifacts."""
from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from latentspace.report.appendix import KEY_PACKAGES

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name), f"not an exact pin: {line!r}"
        assert "+" not in version, f"{line!r}: the lock serves CPU and CUDA builds alike, no local label"
        pins[_norm(name)] = version
    return pins


def project_dependencies() -> list[str]:
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + project["optional-dependencies"]["dev"]


def test_every_dependency_is_pinned_exactly_and_torch_as_in_pyproject():
    pins = lock_pins()
    assert "latentspace" not in pins
    for req in project_dependencies():
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0)
        assert _norm(name) in pins, f"{name} (pyproject.toml) is not in requirements.lock"
        exact = re.search(r"==([^,;\s]+)", req)
        if exact:
            assert pins[_norm(name)] == exact.group(1), f"{name}: pyproject.toml and requirements.lock disagree"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_this_environment_is_the_locked_one():
    """What the tests (and the committed run) use is what the lock says; `make lock` after an upgrade."""
    pins = lock_pins()
    differ = {}
    for dist in metadata.distributions():
        name = _norm(dist.metadata["Name"])
        if name in pins and dist.version.split("+")[0] != pins[name]:
            differ[name] = (dist.version, pins[name])
    assert not differ, f"installed vs requirements.lock: {differ}; run `make lock` (or `make clean-venv setup`)"
    assert {_norm(p) for p in KEY_PACKAGES} <= set(pins)


def test_make_setup_installs_with_the_lock_and_make_lock_writes_it():
    plan = subprocess.run(["make", "-n", "-B", "setup", "lock"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout
    assert re.search(r"pip install .*-c requirements\.lock -e '\.\[dev\]'", plan), plan
    assert re.search(r"pip freeze --all --exclude-editable --exclude latentspace .*> requirements\.lock\.tmp", plan,
                     re.S), plan


def test_no_package_mirror_of_the_development_machine_is_named():
    tracked = subprocess.run(["git", "ls-files", "README.md", "docs", "Makefile", "pyproject.toml"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked + ["requirements.lock"]:
        text = (ROOT / rel).read_text(errors="replace")
        for word in ("/opt/pypi", "/opt/wheels", "file:///", "--find-links", "--extra-index-url"):
            assert word not in text, f"{rel} names a local package source ({word})"


def test_citation_file_credits_this_project_and_the_original_studies():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    version = __import__("tomllib").loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cff["version"] == version
    notice = (ROOT / "NOTICE").read_text()
    urls = re.findall(r"https://\S+", notice)
    assert urls and all(any(r.get("url") == u for r in cff["references"]) for u in urls)
    titles = " ".join(r["title"] for r in cff["references"])
    for word in ("CIFAR-10 autoencoder", "MNIST pretraining", "MNIST database", "Tiny Images"):
        assert word in titles
    for ref in cff["references"]:
        assert ref.get("authors") and ref.get("type"), ref


def _declared_outs() -> list[str]:
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outs = []
    for stage in pipeline["stages"].values():
        for out in stage.get("outs") or []:
            outs.append(next(iter(out)) if isinstance(out, dict) else out)
    return outs


def test_the_trained_models_are_dvc_artifacts_of_the_default_matrix():
    from dvc.repo import Repo
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    seg, b = params["segmentation"], params["study_b"]
    expected = {f"segmentation-{n}-{l}": f"models/segmentation/{n}-{l}" for n in seg["nets"] for l in seg["losses"]}
    expected |= {f"study-b-ae-{h}": f"models/study_b/ae-{h}.pt" for h in b["hidden_sizes"]}
    artifacts = pipeline["artifacts"]
    assert {k: v["path"] for k, v in artifacts.items()} == expected
    outs = _declared_outs()
    for name, a in artifacts.items():
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name), name   # gto's name rule, lower case
        assert a["type"] == "model" and len(a["desc"]) > 40 and a["labels"], name
        assert any(a["path"] == o or a["path"].startswith(o.rstrip("/") + "/") for o in outs), \
            f"{name}: {a['path']} is no output of a stage"
    # DVC reads them (what `dvc artifacts get` and dvc.api.artifacts_show resolve names with).
    with Repo(str(ROOT)) as repo:
        read = repo.artifacts.read()["dvc.yaml"]
    assert set(read) == set(expected) and read["segmentation-nn1-wce"].type == "model"


@pytest.mark.e2e
def test_a_registered_artifact_is_fetched_by_name(tmp_path):
    """The DVC way, end to end on a tiny repository: a model output, its artifact entry, a registered version
    (a git tag as `gto register` makes), then `dvc artifacts get` by name."""
    import shutil
    import sys
    dvc = str(Path(sys.executable).with_name("dvc"))
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "HOME": str(tmp_path), "DVC_NO_ANALYTICS": "1"}

    def sh(*cmd):
        return subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, text=True)
    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({
        "stages": {"train": {"cmd": "mkdir -p models/study_b && echo weights > models/study_b/ae-16.pt",
                             "outs": ["models/study_b"]}},
        "artifacts": {"study-b-ae-16": {"path": "models/study_b/ae-16.pt", "type": "model", "desc": "test"}}}))
    sh(dvc, "repro", "-q")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "model")
    sh("git", "tag", "-a", "study-b-ae-16@v0.1.0", "-m", "Registering artifact study-b-ae-16 version v0.1.0")
    sh(dvc, "artifacts", "get", ".", "study-b-ae-16", "-o", str(tmp_path / "got.pt"))
    assert (tmp_path / "got.pt").read_text() == "weights\n"
    shutil.rmtree(repo)
