"""How long the pipeline takes: the README's table of stage times, and the time of a no-op `dvc repro`.

    python benchmarks/pipeline_timing.py              # the table, from metrics/stage_times.json
    python benchmarks/pipeline_timing.py --noop 5     # also time 5 runs of `dvc repro` with nothing to do
    python benchmarks/pipeline_timing.py --floor 5    # and DVC's own floor: the same number of one-file stages

The floor is a throwaway pipeline of as many stages as this one, each copying one file under one parameter:
what a no-op `dvc repro` of that many stages costs in DVC alone, whatever the stages depend on.

The stage times are those the stages wrote into their metrics (the report stage collects them); the wall time
of a whole run also holds each stage's Python start-up and DVC's own hashing and caching, so time that with
`time dvc repro --force`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Study of each stage family (the name before '@'), in the order the table shows them.
STUDIES = {
    "Study A data": ("generate_rectangles", "eda"),
    "Study A segmentation": ("train_segmentation",),
    "Study A latent analysis": ("generate_image_sets", "latent_analysis"),
    "Datasets": ("prepare_dataset",),
    "Study B": ("study_b_autoencoders", "study_b_probes", "study_b_summary"),
    "Study C": ("study_c",),
}


def _order(name: str) -> tuple:
    family, _, item = name.partition("@")
    return (family, int(item) if item.isdigit() else item)


def stage_table(times: dict) -> str:
    stages = times["stages"]
    lines = ["| study | stage | seconds |", "|---|---|---:|"]
    seen = set()
    for study, families in STUDIES.items():
        names = sorted((s for s in stages if s.split("@")[0] in families),
                       key=lambda s: (families.index(s.split("@")[0]), _order(s)))
        for name in names:
            lines.append(f"| {study} | `{name}` | {stages[name]:.1f} |")
        seen.update(names)
        lines.append(f"| **{study}** | **all** | **{sum(stages[n] for n in names):.0f}** |")
    for name in sorted(set(stages) - seen):
        lines.append(f"| other | `{name}` | {stages[name]:.1f} |")
    lines.append(f"| Report | `report` | {times['seconds']:.1f} |")
    total = sum(stages.values()) + times["seconds"]
    lines.append(f"| **all stages** | | **{total:.0f}** ({total / 60:.1f} min) |")
    return "\n".join(lines)


def noop_seconds(runs: int, cwd: Path = ROOT) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=cwd, capture_output=True, text=True)
        out.append(time.perf_counter() - start)
        if res.returncode != 0 or "Running stage" in res.stdout:
            raise SystemExit(f"`dvc repro` was not a no-op in {cwd}:\n{res.stdout}{res.stderr}")
    return out


def stage_count() -> int:
    """Stages of this project's pipeline, matrix entries counted one by one (as `dvc repro` checks them)."""
    res = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--all", "--name-only"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return len(res.stdout.split())


def floor_seconds(runs: int, stages: int) -> list[float]:
    """No-op `dvc repro` times of a throwaway pipeline of `stages` one-file stages (DVC's cost per stage alone)."""
    with tempfile.TemporaryDirectory(prefix="dvc-floor-") as folder:
        repo = Path(folder)
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
               "GIT_COMMITTER_EMAIL": "b@b"}

        def run(*args: str) -> None:
            subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, check=True)
        run("git", "init", "-q")
        run(sys.executable, "-m", "dvc", "init", "-q")
        run(sys.executable, "-m", "dvc", "config", "core.analytics", "false")
        (repo / "params.yaml").write_text(yaml.safe_dump({f"p{i}": i for i in range(stages)}))
        for i in range(stages):
            (repo / f"in{i}.txt").write_text(str(i))
        (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
            f"s{i}": {"cmd": f"cp in{i}.txt out{i}.txt", "deps": [f"in{i}.txt"], "params": [f"p{i}"],
                      "outs": [f"out{i}.txt"]} for i in range(stages)}}))
        run(sys.executable, "-m", "dvc", "repro", "-q")
        return noop_seconds(runs, cwd=repo)


def _summary(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds):.2f} s over {len(seconds)} runs ({', '.join(f'{s:.2f}' for s in seconds)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noop", type=int, default=0, metavar="N", help="time N no-op `dvc repro` runs")
    parser.add_argument("--floor", type=int, default=0, metavar="N",
                        help="time N no-op runs of a pipeline of as many one-file stages (DVC's floor)")
    args = parser.parse_args()
    path = ROOT / "metrics/stage_times.json"
    try:
        times = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path}: missing; run the pipeline (`dvc repro`) first") from None
    print(stage_table(times))
    if args.noop:
        print(f"\nno-op `dvc repro`: {_summary(noop_seconds(args.noop))}")
    if args.floor:
        stages = stage_count()
        print(f"no-op `dvc repro` of {stages} one-file stages (DVC's floor): {_summary(floor_seconds(args.floor, stages))}")


if __name__ == "__main__":
    main()
