"""A killed stage leaves nothing behind: SIGKILL runs no cleanup, so the temporary output of a killed write stays
on disk, and the next write of the same output removes it (latentspace/core/io.py), never another output's."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from latentspace.core.io import atomic_dir, atomic_path, write_json

# A child that starts an atomic write of `path`, puts some bytes in it, says so and waits to be killed.
WRITER = """
import sys, time
from pathlib import Path
from latentspace.core.io import atomic_dir, atomic_path
kind, path = sys.argv[1], sys.argv[2]
with (atomic_dir if kind == "dir" else atomic_path)(path) as tmp:
    if kind == "dir":
        (tmp / "images.npy").write_bytes(b"x" * 100_000)
    else:
        tmp.write_bytes(b"x" * 100_000)
    print("writing", flush=True)
    time.sleep(60)
"""


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def kill_mid_write(kind: str, path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_the_next_write_removes_what_a_killed_write_left(tmp_path, kind):
    folder = tmp_path / "data"
    target = folder / ("train" if kind == "dir" else "train.json")
    kill_mid_write(kind, target)
    left = temporaries(folder)
    assert len(left) == 1 and left[0].startswith(f".tmp-{target.name}."), left
    assert not target.exists()
    # Another output's temporaries in the same folder (another stage's, maybe still running) are not touched.
    kill_mid_write(kind, folder / "test")
    other = [n for n in temporaries(folder) if n.startswith(".tmp-test.")]
    assert len(other) == 1

    if kind == "dir":
        with atomic_dir(target) as tmp:
            (tmp / "meta.json").write_text("{}")
        assert sorted(p.name for p in target.iterdir()) == ["meta.json"]
    else:
        write_json(target, {"n": 1})
        assert target.read_text().strip().startswith("{")
    assert temporaries(folder) == other


def test_a_kill_between_the_two_renames_of_a_folder_is_cleaned_up(tmp_path):
    """atomic_dir moves the old folder aside (`.tmp-old-<name>`) before the new one takes its place."""
    folder = tmp_path / "data"
    (folder / ".tmp-old-train").mkdir(parents=True)
    (folder / ".tmp-old-train" / "images.npy").write_bytes(b"old")
    with atomic_dir(folder / "train") as tmp:
        (tmp / "meta.json").write_text("{}")
    assert temporaries(folder) == []


def test_an_output_named_like_the_start_of_another_leaves_its_temporaries_alone(tmp_path):
    """`x` and `x.json` side by side: starting to write `x` must not remove the live temporary of `x.json`."""
    folder = tmp_path / "metrics"
    with atomic_path(folder / "x.json") as tmp_json:
        tmp_json.write_text("{}")
        with atomic_dir(folder / "x") as tmp_dir:
            (tmp_dir / "a").write_text("a")
        assert tmp_json.exists(), "writing `x` removed the temporary file of `x.json`"
    assert (folder / "x.json").read_text() == "{}" and (folder / "x" / "a").exists()
    assert temporaries(folder) == []


@pytest.mark.e2e
def test_a_stage_killed_mid_run_leaves_nothing_after_its_next_run(dvc_repo):
    """The issue's case: what SIGKILL left inside a stage's output folder (here generate_rectangles@eda_free's)
    goes with that stage's next `dvc repro`. The sample is a parameter table now, written in well under a second,
    too fast to be caught mid-write: the leftover is made the way a killed atomic_dir leaves it
    (kill_mid_write above does that for real)."""
    samples = dvc_repo.path / "data" / "rectangles"
    kill_mid_write("dir", samples / "eda_free")
    # A stale temporary of another sample, as a killed run of generate_rectangles@train would leave.
    (samples / ".tmp-train.abc123xy").mkdir(parents=True)
    assert [n for n in temporaries(samples) if n.startswith(".tmp-eda_free.")], temporaries(samples)

    dvc_repo.dvc("repro", "generate_rectangles@eda_free")
    assert temporaries(samples) == [".tmp-train.abc123xy"]
    assert (samples / "eda_free").is_dir() and any((samples / "eda_free").iterdir())
    assert "up to date" in dvc_repo.dvc("status", "generate_rectangles@eda_free").stdout


# A stage whose two pool workers train (sleep) while it writes a folder atomically; it prints its workers' pids.
POOL_STAGE = """
import multiprocessing, os, time
from pathlib import Path
from latentspace.core.io import atomic_dir
from latentspace.core.stage import StageRun, stage
from latentspace.training.pool import WorkerPool


def train(i):
    Path(f"started-{os.getpid()}").write_text("")
    time.sleep(120)
    return i


@stage("A stage with a worker pool.", name="pool_demo")
def main(run: StageRun) -> str:
    with atomic_dir("models/demo") as tmp:
        (tmp / "partial.pt").write_bytes(b"x" * 100_000)
        with WorkerPool(2, "cpu", tasks=2) as pool:
            futures = [pool.submit(train, i) for i in range(2)]
            while len(list(Path(".").glob("started-*"))) < 2:
                time.sleep(0.05)
            print("workers", *(p.pid for p in multiprocessing.active_children()), flush=True)
            return str([f.result() for f in futures])


if __name__ == "__main__":
    main()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_mid_stage_cleans_up_at_once_and_ends_the_workers(tmp_path, project_root):
    """SIGTERM (kill, job schedulers) is handled like Ctrl-C: the temporary output goes at once, the pool's
    spawned workers die with the stage, and the stage says so in one line with status 143."""
    shutil.copy(project_root / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "pool_stage.py").write_text(POOL_STAGE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "pool_stage.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()
        assert line[:1] == ["workers"], (line, child.stderr.read() if child.poll() is not None else "")
        workers = [int(p) for p in line[1:]]
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        assert [p.name for p in (tmp_path / "models").iterdir()][0].startswith(".tmp-demo.")
        child.send_signal(signal.SIGTERM)          # to the stage process only, as `kill <pid>` does
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, err
    assert err.strip().splitlines() == ["error: terminated (SIGTERM); outputs of this stage were not replaced"]
    assert list((tmp_path / "models").iterdir()) == []
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "a worker outlived its stage"
    assert not (tmp_path / "metrics/timing/pool_demo.json").exists()
