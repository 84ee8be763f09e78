"""The delta sweep: Study A once per colour half-range `delta`, as DVC experiments on the experiment queue.

    python -m latentspace.sweep.run                  # queue what is missing, run it, wait, write reports/sweep.*
    python -m latentspace.sweep.run --report-only    # only collect the finished experiments and write the report

Settings live in sweep.yaml (`SweepConfig`). A rerun is a resume: an experiment of the current commit named
`<name>-delta-<d>` whose parameters match the sweep is done and kept; a task still queued or running is waited
for, not queued twice; a failed one, or an experiment of the same name run with other settings, is replaced.
Interrupting the wait (Ctrl-C) leaves the queue workers running; the next run picks their results up.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from latentspace.core.errors import UserError
from latentspace.core.params import SCHEMA, lookup

CONFIG_FILE = "sweep.yaml"
CONFIG_KEYS = ("deltas", "name", "jobs", "targets", "if_cached", "overrides", "separability")
STATUS_ACTIVE = ("Queued", "Running")
POLL_SECONDS = 10


@dataclass(frozen=True)
class SweepConfig:
    deltas: tuple[int, ...]
    name: str
    jobs: int
    targets: tuple[str, ...]
    if_cached: tuple[str, ...]
    overrides: dict[str, Any]
    reducer: str
    image_sets: tuple[str, ...]

    def experiment(self, delta: int) -> str:
        return f"{self.name}-delta-{delta}"

    def params(self, delta: int) -> dict[str, Any]:
        """The dotted params.yaml values an experiment of this sweep runs with."""
        return {**self.overrides, "delta": delta}

    def set_args(self, delta: int) -> list[str]:
        """`-S key=value` arguments of `dvc exp run` (values in JSON, which DVC's override grammar reads)."""
        return [a for key, value in self.params(delta).items() for a in ("-S", f"{key}={json.dumps(value)}")]


def _spec(dotted: str) -> Any:
    """The params.yaml schema entry of a dotted name, or a UserError naming the closest existing one."""
    node: Any = SCHEMA
    walked = []
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            options = list(node) if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, options, n=1)
            hint = f" (did you mean '{'.'.join([*walked, close[0]])}'?)" if close else ""
            raise UserError(f"{CONFIG_FILE}: overrides: '{dotted}' is not a parameter of params.yaml{hint}")
        node = node[part]
        walked.append(part)
    if isinstance(node, dict):
        raise UserError(f"{CONFIG_FILE}: overrides: '{dotted}' is a section; override its values one by one")
    return node


def load_config(path: str | Path = CONFIG_FILE) -> SweepConfig:
    """Read and check sweep.yaml; any problem is one line naming the key and what is allowed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; run from the project root, where sweep.yaml lives") from None
    except yaml.YAMLError:
        raise UserError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with the keys {', '.join(CONFIG_KEYS)}")
    for key in data:
        if key not in CONFIG_KEYS:
            close = difflib.get_close_matches(str(key), CONFIG_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"{path}: unknown key '{key}'{hint}; allowed: {', '.join(CONFIG_KEYS)}")
    missing = [k for k in CONFIG_KEYS if k not in data]
    if missing:
        raise UserError(f"{path}: missing key '{missing[0]}'")
    deltas, delta_spec = data["deltas"], SCHEMA["delta"]
    if (not isinstance(deltas, list) or not deltas or not all(delta_spec.check(d) for d in deltas)
            or len(set(deltas)) != len(deltas)):
        raise UserError(f"{path}: deltas = {deltas!r} is not allowed; expected a list of distinct integers, "
                        f"each {delta_spec.describe()}")
    name = data["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
        raise UserError(f"{path}: name = {name!r} is not allowed; expected letters, digits, '-' or '_'")
    jobs = data["jobs"]
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= 16:
        raise UserError(f"{path}: jobs = {jobs!r} is not allowed; expected an integer from 1 to 16")
    targets, if_cached = data["targets"], data["if_cached"] or []
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise UserError(f"{path}: targets = {targets!r} is not allowed; expected a list of stage names")
    if not isinstance(if_cached, list) or not all(isinstance(t, str) and t for t in if_cached):
        raise UserError(f"{path}: if_cached = {if_cached!r} is not allowed; expected a list of stage names")
    overrides = data["overrides"] or {}
    if not isinstance(overrides, dict):
        raise UserError(f"{path}: overrides must be a mapping of dotted params.yaml names to values")
    for key, value in overrides.items():
        if key == "delta":
            raise UserError(f"{path}: overrides: 'delta' is what the sweep varies; list its values under deltas")
        spec = _spec(str(key))
        if not spec.check(value):
            raise UserError(f"{path}: overrides: '{key}' = {value!r} is not allowed; expected {spec.describe()}")
    sep = data["separability"]
    reducers, image_sets = SCHEMA["latent"]["reducers"].item, SCHEMA["latent"]["probe_sets"]
    if not isinstance(sep, dict) or set(sep) != {"reducer", "image_sets"}:
        raise UserError(f"{path}: separability must have exactly the keys reducer and image_sets")
    if not reducers.check(sep["reducer"]):
        raise UserError(f"{path}: separability.reducer = {sep['reducer']!r} is not allowed; "
                        f"expected {reducers.describe()}")
    if not image_sets.check(sep["image_sets"]):
        raise UserError(f"{path}: separability.image_sets = {sep['image_sets']!r} is not allowed; "
                        f"expected {image_sets.describe()}")
    return SweepConfig(tuple(deltas), name, jobs, tuple(targets), tuple(if_cached), dict(overrides), sep["reducer"],
                       tuple(sep["image_sets"]))


# --- DVC ------------------------------------------------------------------------------------------------------

def _dvc_bin() -> str:
    """The dvc of this Python environment (the one whose stages' `python` is on PATH), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.exists() else "dvc"


def dvc(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    # Output through a file, not a pipe: `dvc queue start` leaves workers behind that inherit its descriptors, and
    # reading a pipe would wait for them to exit.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.run([_dvc_bin(), *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                              text=True).returncode
        out.seek(0)
        err.seek(0)
        res = subprocess.CompletedProcess(args, code, out.read(), err.read())
    if check and res.returncode != 0:
        last = ((res.stderr or res.stdout).strip().splitlines() or ["no output"])[-1]
        raise UserError(f"`dvc {' '.join(args[:3])} ...` failed ({res.returncode}): {last}")
    return res


def queue_tasks() -> dict[str, str]:
    """Experiment name -> status (Queued, Running, Success, Failed) of `dvc queue status`'s tasks."""
    out = dvc("queue", "status").stdout
    tasks = {}
    for line in out.splitlines():
        words = line.split()
        # Rows: task, name, created (one or more words), status; the header and the worker line end otherwise.
        if len(words) >= 4 and words[-1] in ("Queued", "Running", "Success", "Failed") and words[0] != "Task":
            tasks[words[1]] = words[-1]
    return tasks


def head() -> str:
    res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    if res.returncode != 0:
        raise UserError("no git commit here: DVC experiments start from a commit (git commit first)")
    return res.stdout.strip()


def experiments(rev: str | None = None) -> list[dict]:
    """Every experiment of the current commit (or of commit `rev`) in `dvc exp show --json`: name, rev, baseline,
    state, params.yaml values and metrics."""
    shown = json.loads(dvc("exp", "show", "--json", *(("--rev", rev) if rev else ())).stdout or "[]")
    found = []
    for baseline in shown:
        if baseline.get("rev") == "workspace":
            continue
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
                metrics = {path: (m or {}).get("data", {}) for path, m in (data.get("metrics") or {}).items()}
                found.append({"name": rev.get("name") or exp.get("name"), "rev": rev.get("rev"),
                              "baseline": baseline.get("rev"), "params": params, "metrics": metrics,
                              "state": (exp.get("executor") or {}).get("state")})
    return found


def matches(config: SweepConfig, delta: int, exp: dict) -> bool:
    return exp["name"] == config.experiment(delta) and all(
        lookup(exp["params"], key) == value for key, value in config.params(delta).items())


def cached_targets(config: SweepConfig, *, log=print) -> list[str]:
    """The `if_cached` stages whose every dependency is in the workspace or the DVC cache (a fresh clone without
    `dvc pull` has, say, no Study C predictions; the stage would fail, or rerun Study C in every experiment)."""
    if not config.if_cached:
        return []
    try:
        stages = (yaml.safe_load(Path("dvc.yaml").read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError):
        stages = {}
    missing = {p.rstrip("/") for p in json.loads(dvc("data", "status", "--json").stdout or "{}")
               .get("not_in_cache", [])}
    kept = []
    for name in config.if_cached:
        deps = (stages.get(name) or {}).get("deps")
        if deps is None:
            log(f"sweep: no stage '{name}' in dvc.yaml; leaving it out")
            continue
        absent = [d for d in deps if isinstance(d, str) and d.rstrip("/") in missing]
        if absent:
            log(f"sweep: leaving out '{name}': {', '.join(absent)} not in the DVC cache (`dvc pull` or `dvc repro` "
                f"first to have it run)")
        else:
            kept.append(name)
    return kept


def finished(exp: dict) -> bool:
    """A committed experiment (exp show lists queued, running and failed tasks too, with their state)."""
    return exp.get("state") in (None, "success")


def plan(config: SweepConfig, exps: list[dict], tasks: dict[str, str]) -> dict[str, list[int]]:
    """Which deltas are done, already in the queue, or to be queued; and stale experiments to remove first."""
    steps: dict[str, list] = {"done": [], "waiting": [], "queue": [], "remove": []}
    for delta in config.deltas:
        name = config.experiment(delta)
        same_name = [e for e in exps if e["name"] == name]
        if any(matches(config, delta, e) and finished(e) for e in same_name):
            steps["done"].append(delta)
        elif tasks.get(name) in STATUS_ACTIVE:
            steps["waiting"].append(delta)
        else:
            steps["queue"].append(delta)
            if same_name or name in tasks:
                steps["remove"].append(name)
    return steps


def run_sweep(config: SweepConfig, *, log=print) -> dict:
    """Queue every missing delta, start the workers, wait for them. Returns what this invocation did."""
    started, baseline = time.time(), head()
    steps = plan(config, experiments(), queue_tasks())
    log(f"sweep: {len(config.deltas)} deltas; done already: {steps['done'] or 'none'}; "
        f"in the queue: {steps['waiting'] or 'none'}; to run: {steps['queue'] or 'none'}")
    for name in steps["remove"]:
        dvc("queue", "remove", name, check=False)     # a failed task of that name
        dvc("exp", "remove", name, check=False)       # an experiment of that name run with other settings
    if steps["queue"]:
        # --allow-missing: a stage of another study whose outputs are not checked out is skipped, never rerun.
        targets = [*config.targets, *cached_targets(config, log=log)]
        for delta in steps["queue"]:
            dvc("exp", "run", "--queue", "--allow-missing", "-n", config.experiment(delta),
                *config.set_args(delta), *targets)
    names = {config.experiment(d): d for d in steps["queue"] + steps["waiting"]}
    if names:
        # One thread per worker: small nets gain nothing from more, and the workers share the cores.
        dvc("queue", "start", "--jobs", str(config.jobs), env={**os.environ, "OMP_NUM_THREADS": "1"})
    status: dict[str, str] = {}
    last = ""
    while names:
        status = {n: s for n, s in queue_tasks().items() if n in names}
        active = [n for n, s in status.items() if s in STATUS_ACTIVE]
        line = (f"sweep: {sum(s == 'Success' for s in status.values())}/{len(names)} finished, "
                f"{sum(s == 'Running' for s in status.values())} running, "
                f"{sum(s == 'Failed' for s in status.values())} failed ({time.time() - started:.0f} s)")
        if line.split(" (")[0] != last:
            log(line)
            last = line.split(" (")[0]
        if not active:
            break
        time.sleep(POLL_SECONDS)
    if names:
        dvc("queue", "stop", check=False)
    failed = sorted(names[n] for n, s in status.items() if s == "Failed")
    for delta in failed:
        logs = dvc("queue", "logs", config.experiment(delta), check=False).stdout.splitlines()
        errors = [line for line in logs if line.startswith("ERROR")] or logs[-1:]
        log(f"sweep: delta {delta} failed: {errors[-1].strip() if errors else '(no log)'}; whole log: "
            f"dvc queue logs {config.experiment(delta)}")
    return {"started": started, "wall_seconds": round(time.time() - started, 1), "ran": sorted(names.values()),
            "failed": failed, "jobs": config.jobs, "baseline": baseline}


def main(argv: list[str] | None = None) -> None:
    from latentspace.sweep.report import write_sweep_report
    parser = argparse.ArgumentParser(prog="python -m latentspace.sweep.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=CONFIG_FILE, help="the sweep's settings (default: sweep.yaml)")
    parser.add_argument("--report-only", action="store_true", help="write the report from finished experiments")
    parser.add_argument("--out", default="reports", help="folder of sweep.md, sweep.html and sweep/ (default: reports)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        invocation = None if args.report_only else run_sweep(config)
        report = write_sweep_report(config, Path(args.out), invocation)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; queued experiments keep running (`dvc queue status`); run the sweep again "
              "to wait for them and write the report", file=sys.stderr)
        sys.exit(130)
    if invocation is not None:
        print(f"sweep: this run took {invocation['wall_seconds'] / 60:.1f} min "
              f"({len(invocation['ran'])} experiments run, {len(invocation['failed'])} failed)")
    print(f"sweep: wrote {report['md']} and {report['html']} ({report['rows']} of {len(config.deltas)} deltas)")
    if invocation is not None and invocation["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
