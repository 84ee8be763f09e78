"""A killed stage leaves nothing behind: SIGKILL runs no cleanup, so the temporary output of a killed write stays
on disk, and the next write of the same output removes it (latentspace/core/io.py), never another output's."""
import os
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
    """The issue's case: SIGKILL during generate_rectangles@eda_free, then `dvc repro` of that stage."""
    dvc_repo.set_params(**{"rectangles.image_size": 64, "rectangles.samples.eda_free.images": 4000})
    dvc_repo.commit("params")
    samples = dvc_repo.path / "data" / "rectangles"
    # A stale temporary of another sample, as a killed run of generate_rectangles@train would leave.
    (samples / ".tmp-train.abc123xy").mkdir(parents=True)
    run = subprocess.Popen([dvc_repo.dvc_bin, "repro", "generate_rectangles@eda_free"], cwd=dvc_repo.path,
                           env=dvc_repo.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".tmp-eda_free.") and any(p.iterdir())
                                              for p in samples.iterdir()):
        assert run.poll() is None, "the stage finished before it could be killed; make the sample larger"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)   # dvc and the stage's python: everything, as an OOM kill or power cut
    run.wait(timeout=10)
    assert [n for n in temporaries(samples) if n.startswith(".tmp-eda_free.")], temporaries(samples)

    dvc_repo.dvc("repro", "generate_rectangles@eda_free")
    assert temporaries(samples) == [".tmp-train.abc123xy"]
    assert (samples / "eda_free" / "images.npy").exists()
    assert "up to date" in dvc_repo.dvc("status", "generate_rectangles@eda_free").stdout
