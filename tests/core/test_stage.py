"""The stage runner: parameters before arguments, the timing file, the closing line, one-line errors."""
import json
import os
import shutil

import pytest

from latentspace.core.errors import UserError
from latentspace.core.stage import arg, stage


@pytest.fixture
def in_project_copy(tmp_path, project_root):
    shutil.copy(project_root / "params.yaml", tmp_path / "params.yaml")
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def _stage(body):
    return stage("A test stage.", name="demo@{which}",
                 args=[arg("--which", required=True, choices=["a", "b"])])(body)


def test_a_stage_writes_its_timing_file_and_prints_one_closing_line(in_project_copy, capsys):
    def body(run):
        assert run.args.which == "a" and run.params["eda"]["examples"] >= 1
        run.timing["images_per_second"] = 12.5
        return "3 things done"
    _stage(body)(["--which", "a"])
    timing = json.loads((in_project_copy / "metrics/timing/demo@a.json").read_text())
    assert timing["stage"] == "demo@a" and timing["seconds"] >= 0 and timing["images_per_second"] == 12.5
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("demo@a: 3 things done (") and out[0].endswith(" s)")


def test_a_user_error_is_one_line_and_exit_2_and_writes_no_timing(in_project_copy, capsys):
    def body(run):
        raise UserError("parameter 'x' = 3 is not allowed")
    with pytest.raises(SystemExit) as e:
        _stage(body)(["--which", "b"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: parameter 'x' = 3 is not allowed"]
    assert not (in_project_copy / "metrics/timing/demo@b.json").exists()


def test_bad_parameters_are_reported_before_the_arguments(in_project_copy, capsys):
    text = (in_project_copy / "params.yaml").read_text().replace("delta: 15", "delta: 300")
    (in_project_copy / "params.yaml").write_text(text)
    with pytest.raises(SystemExit) as e:
        _stage(lambda run: "never")(["--which", "nope"])
    assert e.value.code == 2
    assert "'delta' = 300" in capsys.readouterr().err


def test_help_needs_no_parameters(tmp_path, capsys):
    old = os.getcwd()
    os.chdir(tmp_path)       # no params.yaml here
    try:
        with pytest.raises(SystemExit) as e:
            _stage(lambda run: "never")(["--help"])
    finally:
        os.chdir(old)
    assert e.value.code == 0 and "A test stage." in capsys.readouterr().out
