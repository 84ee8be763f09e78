"""Study A data stages: parameter errors, the stage scripts, and the DVC pipeline end to end."""
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from latentspace.core.params import ParamError, load_params

ROOT_FILES = ("latentspace/study_a/rectangles.py", "latentspace/study_a/eda.py")   # library files the stages declare as deps
GENERATE = {f"generate_rectangles@{s}" for s in ("eda_free", "eda_contained", "train", "test")}


def _set(data: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for k in parents:
        data = data[k]
    data[last] = value


def _rename(data: dict, key: str, new_name: str) -> None:
    *parents, last = key.split(".")
    for k in parents:
        data = data[k]
    data[new_name] = data.pop(last)


# (edit, expected message fragments) for each kind of bad parameter.
BAD = {
    "delta -1": (lambda d: _set(d, "delta", -1), ["'delta' = -1", "an integer from 0 to 127"]),
    "delta 1.5": (lambda d: _set(d, "delta", 1.5), ["'delta' = 1.5", "an integer from 0 to 127"]),
    "delta 200": (lambda d: _set(d, "delta", 200), ["'delta' = 200", "an integer from 0 to 127"]),
    "size 0": (lambda d: _set(d, "rectangles.samples.train.images", 0),
               ["'rectangles.samples.train.images' = 0", "an integer from 1 to"]),
    "contained not a bool": (lambda d: _set(d, "rectangles.samples.test.contained", "yes"),
                             ["'rectangles.samples.test.contained' = 'yes'", "true or false"]),
    "image_size 2": (lambda d: _set(d, "rectangles.image_size", 2), ["'rectangles.image_size' = 2", "from 4 to"]),
    "unknown key": (lambda d: _set(d, "rectangles.colour_jitter", 3),
                    ["unknown parameter 'rectangles.colour_jitter'", "allowed here: image_size, samples"]),
    "typo": (lambda d: _rename(d, "rectangles.image_size", "image_sise"),
             ["unknown parameter 'rectangles.image_sise'", "did you mean 'rectangles.image_size'"]),
    "unknown sample": (lambda d: _rename(d, "rectangles.samples.train", "trian"),
                       ["unknown parameter 'rectangles.samples.trian'", "did you mean 'rectangles.samples.train'"]),
    "eda examples 0": (lambda d: _set(d, "eda.examples", 0), ["'eda.examples' = 0", "an integer from 1 to 64"]),
}


@pytest.fixture
def bad_params(tmp_path, project_root, request):
    edit, expected = BAD[request.param]
    data = yaml.safe_load((project_root / "params.yaml").read_text())
    edit(data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path, expected


@pytest.mark.parametrize("bad_params", list(BAD), indirect=True)
def test_bad_parameter_is_one_line_naming_it_its_value_and_what_is_allowed(bad_params):
    folder, expected = bad_params
    with pytest.raises(ParamError) as e:
        load_params(folder / "params.yaml")
    message = str(e.value)
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("bad_params", ["delta 1.5", "size 0", "typo"], indirect=True)
def test_stage_script_exits_2_with_one_line_and_no_traceback(bad_params, project_root):
    folder, expected = bad_params
    res = subprocess.run([sys.executable, str(project_root / "stages/study_a/generate_rectangles.py"), "--sample", "train"],
                         cwd=folder, capture_output=True, text=True)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr and expected[0] in lines[0]
    assert not (folder / "data").exists()


def test_unknown_sample_argument_is_one_line(tmp_path, project_root):
    shutil.copy(project_root / "params.yaml", tmp_path / "params.yaml")
    res = subprocess.run([sys.executable, str(project_root / "stages/study_a/generate_rectangles.py"), "--sample", "val"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0
    assert "'val'" in res.stderr and "eda_free, eda_contained, train, test" in res.stderr


def _summary(repo) -> dict:
    return json.loads((repo.path / "metrics/eda/summary.json").read_text())


@pytest.mark.e2e
def test_dvc_pipeline_reruns_exactly_what_a_changed_parameter_touches(dvc_repo, project_root):
    for rel in ROOT_FILES:
        (dvc_repo.path / rel).parent.mkdir(exist_ok=True)
        shutil.copy(project_root / rel, dvc_repo.path / rel)
    dvc_repo.set_params(**{"rectangles.image_size": 12, "rectangles.samples.eda_free.images": 200,
                           "rectangles.samples.eda_contained.images": 200, "rectangles.samples.train.images": 40,
                           "rectangles.samples.test.images": 20, "eda.examples": 2})
    targets = ("generate_rectangles", "eda")

    res = dvc_repo.dvc("repro", *targets)
    assert dvc_repo.ran_stages(res.stdout) == GENERATE | {"eda"}
    before = _summary(dvc_repo)
    assert before["eda_free"]["n"] == 200 and before["eda_free"]["delta"] == 15
    assert before["eda_contained"]["geometry"]["clipped_fraction"] == 0.0
    assert before["eda_free"]["geometry"]["clipped_fraction"] > 0.5
    assert {p.name for p in (dvc_repo.path / "reports/eda").iterdir()} == {
        "geometry.png", "areas.png", "colours.png", "examples-eda_free.png", "examples-eda_contained.png"}
    assert json.loads((dvc_repo.path / "metrics/eda/generate/train.json").read_text())["n"] == 40
    dvc_repo.commit("data")

    # A sample's own size reruns only that sample; train feeds no EDA, so nothing else runs.
    res = dvc_repo.dvc("exp", "run", "-S", "rectangles.samples.train.images=30", *targets)
    assert dvc_repo.ran_stages(res.stdout) == {"generate_rectangles@train"}
    # Really regenerated, not restored from DVC's run cache (which ignores dict keys named `size`).
    assert json.loads((dvc_repo.path / "metrics/eda/generate/train.json").read_text())["n"] == 30

    # delta reruns every sample and the EDA, and the colour statistics follow it.
    res = dvc_repo.dvc("exp", "run", "-S", "delta=25", *targets)
    assert dvc_repo.ran_stages(res.stdout) == GENERATE | {"eda"}
    after = _summary(dvc_repo)
    for sample in ("eda_free", "eda_contained"):
        assert after[sample]["delta"] == 25
        red_1 = after[sample]["classes"]["class_1"]["colour"]["R"]
        assert red_1 != before[sample]["classes"]["class_1"]["colour"]["R"]
        assert 42 - 25 <= red_1["min"] < 42 - 15 and 42 + 15 < red_1["max"] <= 42 + 25
    assert after["eda_free"]["n"] == 200
