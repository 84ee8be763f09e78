"""`make paper` turns paper_scale.yaml into `dvc exp run -S key=value` overrides: every key must already exist
in params.yaml (DVC would otherwise add a new key silently, and the loader would reject it only mid-run), and
the overridden parameters must pass the loader's validation."""
import yaml

from latentspace.core.params import load_params


def test_paper_scale_overrides_existing_keys_with_valid_values(project_root, tmp_path):
    params = yaml.safe_load((project_root / "params.yaml").read_text())
    overrides = yaml.safe_load((project_root / "paper_scale.yaml").read_text())
    assert len(overrides) >= 10
    for key, value in overrides.items():
        node = params
        *parents, last = key.split(".")
        for k in parents:
            assert isinstance(node, dict) and k in node, f"paper_scale.yaml: {key}: no '{k}' in params.yaml"
            node = node[k]
        assert last in node, f"paper_scale.yaml: {key} is not a parameter of params.yaml"
        node[last] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    loaded = load_params(tmp_path / "params.yaml")
    assert loaded["rectangles"]["samples"]["train"]["images"] == 200_000
    assert loaded["study_b"]["ae_max_epochs"] == 200 and loaded["study_b"]["ae_patience"] < 200
    assert loaded["segmentation"]["losses"] == ["wce", "dice", "focal"] and loaded["segmentation"]["launches"] == 5
    assert loaded["segmentation"]["nadam_epochs"] == 25 and loaded["segmentation"]["sgd_epochs"] == 50


def test_every_profile_applies_and_validates(project_root, tmp_path, monkeypatch):
    """`make quick` and `make paper` go through latentspace.core.profile, which checks every override before
    DVC runs anything; a key params.yaml does not have is a one-line error naming the profile."""
    import pytest

    from latentspace.core.errors import UserError
    from latentspace.core.io import read_yaml
    from latentspace.core.profile import apply_profile, read_profile, set_arguments
    params = read_yaml(project_root / "params.yaml")
    for name in ("quick.yaml", "paper_scale.yaml"):
        overrides = read_profile(project_root / name)
        merged = apply_profile(params, overrides, source=name)
        assert merged["seed"] == params["seed"] and len(set_arguments(overrides)) == 2 * len(overrides)
    with pytest.raises(UserError, match=r"^bad.yaml: 'study_c.seedz' is not a parameter of params.yaml$"):
        apply_profile(params, {"study_c.seedz": 3}, source="bad.yaml")
    with pytest.raises(UserError, match="bad.yaml: with its overrides, parameter 'study_c.seeds' = 0"):
        apply_profile(params, {"study_c.seeds": 0}, source="bad.yaml")
