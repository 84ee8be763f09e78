"""latentspace/paths.py is the one place that names outputs: every `outs` entry of dvc.yaml (its matrix and foreach
items filled in from params.yaml) is a path that paths.py names, and no stage or library module writes a path
literal of its own."""
import inspect
import re
from pathlib import Path

import pytest

from latentspace import paths
from latentspace.constants import STUDY_C_CELLS

ROOT = Path(__file__).resolve().parents[1]


def resolved_outputs() -> dict[str, list[str]]:
    """{stage instance: [out paths]} as DVC resolves dvc.yaml against params.yaml."""
    from dvc.repo import Repo
    with Repo(str(ROOT)) as repo:
        return {stage.addressing: [str(out.def_path) for out in stage.outs] for stage in repo.index.stages}


def named_paths(stages: list[str]) -> set[str]:
    """Every path paths.py gives: its constants, and each function applied to the names an out can carry."""
    import yaml
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    seg = params["segmentation"]
    names = {*stages, *STUDY_C_CELLS, "baseline", "mnist", "cifar10", *params["rectangles"]["samples"],
             *(f"{n}-{loss}" for n in seg["nets"] for loss in seg["losses"]),
             "study_a", "study_b", "study_c", "verdicts"}
    out = {v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str)}
    for name, fn in vars(paths).items():
        if inspect.isfunction(fn) and fn.__module__ == paths.__name__:
            if len(inspect.signature(fn).parameters) == 1:
                out |= {fn(n) for n in names}
    return out


def test_every_dvc_output_is_named_in_paths():
    outputs = resolved_outputs()
    named = named_paths(list(outputs))
    missing = sorted(f"{stage}: {out}" for stage, outs in outputs.items() for out in outs if out not in named)
    assert not missing, "outputs of dvc.yaml that latentspace/paths.py does not name:\n" + "\n".join(missing)


# A string literal that starts like an output folder ("metrics/...", f"reports/{...}").
LITERAL = re.compile(r"""[fr]?["'](metrics|reports|models|data)/""")


@pytest.mark.parametrize("folder", ["stages", "latentspace"])
def test_no_module_spells_an_output_path_itself(folder):
    offenders = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.name == "paths.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if LITERAL.search(code) and not code.lstrip().startswith(('"""', "'''")):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "path literals outside latentspace/paths.py:\n" + "\n".join(offenders)
