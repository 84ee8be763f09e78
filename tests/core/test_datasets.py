"""The MNIST / CIFAR-10 data stages: where the data come from, what is recorded, the splits, the errors."""
import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from latentspace import datasets as ds
from latentspace.core.errors import UserError


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_download(monkeypatch):
    def fail(name, root):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
    monkeypatch.setattr(ds, "_download", fail)


def test_offline_copy_is_used_and_fingerprinted(tiny_datasets_dir, monkeypatch):
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tiny_datasets_dir))
    _no_download(monkeypatch)
    src = ds.locate_source("mnist")
    assert src.kind == "offline copy"
    assert src.location == str((tiny_datasets_dir / "mnist.npz").resolve())
    assert src.sha256 == {"mnist.npz": _sha(tiny_datasets_dir / "mnist.npz")}


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_neither_source_gives_one_line_naming_both_ways(tmp_path, monkeypatch, name):
    _no_download(monkeypatch)
    empty = tmp_path / "empty"
    empty.mkdir()
    for data_dir, says in ((None, "is not set"), (empty, f"holds no {name}.npz"), (tmp_path / "missing", "holds no")):
        if data_dir is None:
            monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
        else:
            monkeypatch.setenv(ds.DATA_DIR_ENV, str(data_dir))
        with pytest.raises(UserError) as e:
            ds.locate_source(name, download_dir=tmp_path / "cache")
        msg = str(e.value)
        assert "\n" not in msg
        assert says in msg and "download" in msg and ds.DATA_DIR_ENV in msg and f"{name}.npz" in msg
        assert "name resolution" in msg      # the download's own reason, shortened to one line


def test_prepare_stage_without_any_source_fails_with_one_line(tmp_path, project_root):
    # A file where the download folder should be: torchvision fails at once, with or without a network.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    shutil.copy(project_root / "params.yaml", tmp_path / "params.yaml")
    env = {"PATH": "/usr/bin:/bin", ds.DATA_DIR_ENV: str(tmp_path / "nowhere"),
           ds.DOWNLOAD_DIR_ENV: str(blocker), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(project_root / "stages/prepare_dataset.py"), "--name", "mnist"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot get MNIST")
    assert ds.DATA_DIR_ENV in lines[0] and "download" in lines[0]
    assert not (tmp_path / "data/mnist").exists() and not (tmp_path / "metrics/datasets/mnist.json").exists()


def test_prepare_records_source_checksum_and_split(tiny_datasets_dir, tmp_path):
    src = ds.locate_source("mnist", data_dir=tiny_datasets_dir)
    record = ds.prepare(src, tmp_path / "mnist", val_size=100, seed=0)
    assert record["source"] == "offline copy" and record["sha256"] == src.sha256
    # How the data came, never where they lay: a rerun on another machine records the same metrics.
    assert record["obtained_by"] == f"offline copy via {ds.DATA_DIR_ENV}" and "location" not in record
    assert str(tiny_datasets_dir) not in json.dumps(record) and "/" not in "".join(record["sha256"])
    assert (record["train"], record["val"], record["test"]) == (500, 100, 200)
    arrays = ds.load_prepared("mnist", tmp_path)
    with np.load(tiny_datasets_dir / "mnist.npz") as z:
        x_train, y_train, y_test = z["x_train"], z["y_train"], z["y_test"]
    train_idx = np.load(tmp_path / "mnist/train_indices.npy")
    val_idx = np.load(tmp_path / "mnist/val_indices.npy")
    assert len(np.intersect1d(train_idx, val_idx)) == 0
    assert np.array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(600))
    assert np.array_equal(arrays["x_train"][:, 0], x_train[train_idx])
    assert np.array_equal(arrays["y_val"], y_train[val_idx])
    assert arrays["x_val"].shape == (100, 1, 28, 28) and arrays["x_val"].dtype == np.uint8
    assert arrays["y_train"].dtype == np.int64
    assert sorted(arrays["y_test"].tolist()) == sorted(y_test.tolist())
    # The same seed gives the same split; another seed another one.
    again = ds.prepare(src, tmp_path / "again", val_size=100, seed=0)
    assert again["class_counts"] == record["class_counts"]
    assert np.array_equal(np.load(tmp_path / "again/val_indices.npy"), val_idx)
    ds.prepare(src, tmp_path / "other", val_size=100, seed=1)
    assert not np.array_equal(np.load(tmp_path / "other/val_indices.npy"), val_idx)


def test_cifar_is_transposed_to_nchw_and_shuffled(tiny_datasets_dir, tmp_path):
    src = ds.locate_source("cifar10", data_dir=tiny_datasets_dir)
    ds.prepare(src, tmp_path / "cifar10", val_size=50, seed=0)
    arrays = ds.load_prepared("cifar10", tmp_path)
    with np.load(tiny_datasets_dir / "cifar10.npz") as z:
        x_test = z["x_test"]
    order = np.load(tmp_path / "cifar10/test_indices.npy")
    assert arrays["x_test"].shape[1:] == (3, 32, 32)
    assert np.array_equal(arrays["x_test"], x_test[order].transpose(0, 3, 1, 2))
    # The offline copy is sorted by class; the prepared test set must not be.
    assert len(set(arrays["y_test"][:20].tolist())) > 3


def test_changed_bytes_and_bad_files_are_refused(tiny_datasets_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "mnist.npz").write_bytes((tiny_datasets_dir / "mnist.npz").read_bytes())
    src = ds.locate_source("mnist", data_dir=copy)
    with np.load(copy / "mnist.npz") as z:
        arrays = dict(z)
    arrays["y_train"] = arrays["y_train"][::-1].copy()
    np.savez(copy / "mnist.npz", **arrays)
    with pytest.raises(UserError, match="changed since they were located"):
        ds.prepare(src, tmp_path / "out", val_size=10, seed=0)
    assert not (tmp_path / "out").exists()

    del arrays["x_test"]
    np.savez(copy / "mnist.npz", **arrays)
    with pytest.raises(UserError, match="missing array"):
        ds.read_source(ds.locate_source("mnist", data_dir=copy))
    arrays["x_test"] = np.zeros((5, 28, 28), np.float32)
    np.savez(copy / "mnist.npz", **arrays)
    with pytest.raises(UserError, match="dtype float32"):
        ds.read_source(ds.locate_source("mnist", data_dir=copy))
    with pytest.raises(UserError, match="val_size"):
        ds.prepare(ds.locate_source("mnist", data_dir=tiny_datasets_dir), tmp_path / "x", val_size=600, seed=0)


def test_a_torchvision_download_is_recorded_without_its_folder(tmp_path, monkeypatch):
    """The download's files are named relative to the cache folder, which is not recorded."""
    def fake_download(name, root):
        for f in ds._torchvision_files(name, root):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(f.name.encode())
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(ds, "_download", fake_download)
    src = ds.locate_source("cifar10", download_dir=tmp_path / "cache")
    assert src.kind == "torchvision" and src.obtained_by == "torchvision download"
    assert src.sha256 and all(not k.startswith("/") and str(tmp_path) not in k for k in src.sha256)


def test_load_prepared_names_the_stage_to_run(tmp_path):
    with pytest.raises(UserError, match=r"dvc repro prepare_dataset@mnist"):
        ds.load_prepared("mnist", tmp_path)


