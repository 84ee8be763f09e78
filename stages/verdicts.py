"""Verdicts stage: check every claim of references.yaml against this run's metrics (metrics/verdicts.json) and
write the headline metrics that `dvc metrics diff` and `dvc exp show` compare (metrics/headline/*.json).

A study that has not run makes its claims `not run` and its headline file empty; it never stops the stage."""
from pathlib import Path

from latentspace import paths
from latentspace.core.io import write_json
from latentspace.core.stage import StageRun, stage
from latentspace.verdicts.headline import headline, headline_paths
from latentspace.verdicts.evaluate import REFERENCES_FILE, context, evaluate, load_references

VERDICTS_FILE = paths.VERDICTS


@stage(__doc__, name="verdicts")
def main(run: StageRun) -> str:
    root = Path(".")
    ctx = context(root, run.params, load_references(root / REFERENCES_FILE))
    result = evaluate(ctx)
    write_json(VERDICTS_FILE, result)
    files = headline(ctx, result)
    for name, path in headline_paths(root).items():
        write_json(path, files[name])
    return ", ".join(f"{n} {v}" for v, n in result["counts"].items() if n) + f" ({len(result['claims'])} checks)"


if __name__ == "__main__":
    main()
