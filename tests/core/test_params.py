import os
import shutil
import subprocess
import sys

import pytest
import yaml

from latentspace.core.params import ParamError, load_params, lookup


@pytest.fixture
def params_file(tmp_path, project_root):
    p = tmp_path / "params.yaml"
    shutil.copy(project_root / "params.yaml", p)
    return p


def _set(path, key, value):
    data = yaml.safe_load(path.read_text())
    node = data
    *parents, last = key.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    path.write_text(yaml.safe_dump(data))


def test_committed_params_are_valid(project_root):
    params = load_params(project_root / "params.yaml")
    assert params["delta"] == 15


@pytest.mark.parametrize("value", [-1, 1.5, 200, "15", True])
def test_bad_delta_names_parameter_value_and_range(params_file, value):
    _set(params_file, "delta", value)
    with pytest.raises(ParamError) as e:
        load_params(params_file)
    msg = str(e.value)
    assert "'delta'" in msg and "from 0 to 127" in msg and "\n" not in msg


def test_unknown_top_level_key_suggests_the_right_one(params_file):
    data = yaml.safe_load(params_file.read_text())
    data["detla"] = data.pop("delta")
    params_file.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamError, match=r"unknown parameter 'detla' \(did you mean 'delta'\?\)"):
        load_params(params_file)


def test_bad_device(params_file):
    _set(params_file, "device", "gpu")
    with pytest.raises(ParamError, match="'device' = 'gpu'.*one of auto, cpu, cuda"):
        load_params(params_file)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ParamError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize("key, value", [("segmentation.nets", ["nn4"]), ("segmentation.losses", []),
                                        ("study_b.hidden_sizes", [0]), ("latent.probe_sets", ["colour"])])
def test_a_bad_list_that_shapes_the_pipeline_stops_every_stage(params_file, key, value):
    # The data stages read none of these sections, yet they must stop a run whose matrix is wrong before working.
    _set(params_file, key, value)
    with pytest.raises(ParamError) as e:
        load_params(params_file)
    assert f"'{key}'" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("key, value", [("study_c.seeds", 0), ("segmentation.launches", 0)])
def test_a_bad_value_of_another_study_stops_the_data_stage_in_one_line(tmp_path, project_root, key, value):
    """Whichever stage runs first stops a run with a bad value anywhere in params.yaml: here the MNIST data stage,
    which reads none of Study C's or Study A's parameters, before it looks for any data."""
    shutil.copy(project_root / "params.yaml", tmp_path / "params.yaml")
    _set(tmp_path / "params.yaml", key, value)
    env = {**os.environ, "LATENTSPACE_DATA_DIR": str(tmp_path / "nowhere"),
           "LATENTSPACE_DOWNLOAD_DIR": str(tmp_path / "nowhere")}
    res = subprocess.run([sys.executable, str(project_root / "stages/prepare_dataset.py"), "--name", "mnist"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and f"'{key}'" in lines[0], lines[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "metrics").exists()


def test_lookup_walks_a_dotted_name_and_gives_the_default_where_a_part_is_missing(project_root):
    params = load_params(project_root / "params.yaml")
    conv = params["study_c"]["architectures"]["conv"]
    assert lookup(params, "study_c.architectures.conv.batch_size") == conv["batch_size"]
    assert lookup(params, "delta") == params["delta"]
    assert lookup(params, "study_c.architectures.rnn.batch_size") is None
    assert lookup(params, "delta.value", default=KeyError) is KeyError   # a value is not a section
    assert lookup(params, "segmentation.chain") == params["segmentation"]["chain"]
