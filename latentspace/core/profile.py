"""Run a profile (paper_scale.yaml, quick.yaml): a file of dotted params.yaml overrides, one reason on each line,
run as one DVC experiment named after the profile without touching params.yaml.

    python -m latentspace.core.profile quick.yaml            # dvc exp run -n quick -S key=value ...
    python -m latentspace.core.profile paper_scale.yaml --queue

Every override is checked before anything runs: each key must already be a parameter of params.yaml (DVC would
add an unknown key silently), and params.yaml with every override applied must pass the whole validation.
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from latentspace.core.errors import UserError
from latentspace.core.io import read_yaml
from latentspace.core.params import PARAMS_FILE, load_params


def read_profile(path: str | Path) -> dict:
    overrides = read_yaml(path)
    if not isinstance(overrides, dict) or not overrides:
        raise UserError(f"{path}: expected a mapping of dotted params.yaml names to values")
    return overrides


def apply_profile(params: dict, overrides: dict, source: str = "profile") -> dict:
    """params.yaml's values with `overrides` applied, validated like params.yaml itself."""
    merged = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node, *parents, last = merged, *str(dotted).split(".")
        for key in parents:
            if not isinstance(node, dict) or key not in node:
                raise UserError(f"{source}: '{dotted}' is not a parameter of {PARAMS_FILE} (no '{key}')")
            node = node[key]
        if not isinstance(node, dict) or last not in node:
            raise UserError(f"{source}: '{dotted}' is not a parameter of {PARAMS_FILE}")
        node[last] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PARAMS_FILE
        path.write_text(yaml.safe_dump(merged, sort_keys=False))
        try:
            load_params(path)
        except UserError as e:
            raise UserError(f"{source}: with its overrides, {str(e).split(': ', 1)[1]}") from None
    return merged


def set_arguments(overrides: dict) -> list[str]:
    """`-S key=value` for every override, values in JSON (which DVC parses as YAML)."""
    return [arg for key, value in overrides.items() for arg in ("-S", f"{key}={json.dumps(value)}")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m latentspace.core.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="a file of overrides: paper_scale.yaml or quick.yaml")
    parser.add_argument("--name", help="the experiment's name (default: the file's name, e.g. quick)")
    args, dvc_args = parser.parse_known_args(argv)
    try:
        overrides = read_profile(args.profile)
        apply_profile(read_yaml(PARAMS_FILE), overrides, source=args.profile)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    name = args.name or Path(args.profile).stem.replace("_", "-")
    sys.exit(subprocess.call(["dvc", "exp", "run", "-n", name, *set_arguments(overrides), *dvc_args]))


if __name__ == "__main__":
    main()
