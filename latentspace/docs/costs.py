"""The cost box and the other measured figures of the docs: docs/costs.yaml (what was measured by hand, with the
command) and metrics/timing/ of the committed run (each stage's own time). A figure that is not there says
"not measured yet"; none is typed into the docs."""
from __future__ import annotations

from pathlib import Path

from latentspace import paths
from latentspace.core.params import lookup
from latentspace.docs.format import NOT_YET, count, duration, fmt, size, table
from latentspace.docs.readers import COSTS_FILE, costs, params, per_study, stage_records, stage_seconds, study_of


def _split(seconds: dict[str, float]) -> str:
    return ", ".join(f"{s} {duration(t)}" for s, t in per_study(seconds).items() if round(t))


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def one_worker_rows(root: Path) -> list[list[str]]:
    """Per pooled stage of the profile docs/costs.yaml names under `workers` (the quick profile: the default run
    takes too long to repeat), its time with two workers and with one, both measured on the same machine."""
    stages = ((costs(root).get("workers") or {}).get("stages")) or {}
    rows = []
    for stage, t in stages.items():
        two, one = _number((t or {}).get("two")), _number((t or {}).get("one"))
        ratio = f"{one / two:.2f}x" if one and two else "–"
        rows.append([f"`{stage}`", duration(one), duration(two), ratio])
    return rows


def _profile_scaling(root: Path) -> str:
    w = costs(root).get("workers") or {}
    one, two = _number(w.get("one_worker_wall_seconds")), _number(w.get("two_workers_wall_seconds"))
    if not (one and two):
        return NOT_YET
    return (f"{duration(one)} with one worker against {duration(two)} with two ({one / two:.2f}x), "
            f"the `{w.get('profile', 'quick')}` profile's whole run")


def _noop_floor(noop: dict) -> str:
    """DVC's own no-op time for as many one-file stages (`pipeline_timing.py --floor`), where measured."""
    floor = _number(noop.get("floor_median_seconds"))
    if floor is None:
        return ""
    return f"; DVC alone, {fmt(noop.get('floor_stages'))} one-file stages: {fmt(floor, 2)} s"


def block_costs(root: Path, args: list[str]) -> str:
    c = costs(root)
    run, env, disk = c.get("default_run") or {}, c.get("environment") or {}, c.get("disk") or {}
    quick, noop, gpu = c.get("quick") or {}, c.get("noop_repro") or {}, c.get("gpu") or {}
    times = stage_seconds(root)
    wall = duration(_number(run.get("wall_seconds")))
    if times:
        wall += f" (the stages' own time {duration(sum(times.values()))}: {_split(times)})"
    rows = [["`dvc repro` of the whole default pipeline, data from the offline copy (no download), 2 CPU cores, "
             "fp32, `workers: auto`", wall]]
    rows.append(["one worker against two (`-S workers=1`; results are the same)", _profile_scaling(root)])
    noop_s = _number(noop.get("median_seconds"))
    rows += [
        ["`make quick` (every stage at the quick profile, 2 CPU cores)", duration(_number(quick.get("wall_seconds")))],
        ["a no-op `dvc repro` (nothing changed)", NOT_YET if noop_s is None else
         f"{fmt(noop_s, 2)} s (median of {fmt(noop.get('runs'))})" + _noop_floor(noop)],
        ["the default run on a GPU" + (f" ({gpu['name']})" if gpu.get("name") else ""),
         duration(_number(gpu.get("wall_seconds")))],
        ["peak memory (RAM) of the default run", size(_number(run.get("peak_memory_bytes")))],
        ["Python environment (`.venv`, default install)", f"{size(_number(env.get('venv_bytes')))}, of which "
         f"{size(_number(env.get('cuda_libraries_bytes')))} CUDA libraries (`TORCH=cpu` leaves them out)"],
        ["fresh `make setup` from PyPI (default install)", duration(_number(env.get("install_seconds")))],
        ["`make test` (the test suite, 2 CPU cores): idle machine / another process busy on one core",
         " / ".join(duration(_number((c.get("test_suite") or {}).get(k))) for k in ("idle_seconds", "busy_seconds"))],
        ["workspace data after a run (`data/`, `models/`, `reports/`)", size(_number(disk.get("workspace_bytes")))],
        ["DVC cache after a run (`.dvc/cache`)", size(_number(disk.get("dvc_cache_bytes")))],
    ]
    machine = c.get("machine", "the development machine")
    date = f", {c['date']}" if c.get("date") else ""
    return (table(["cost", "measured"], rows)
            + f"\nMeasured on {machine}{date}. `make repro` is `make setup`, then this `dvc repro`, then `make docs`. "
              f"Sources: `{COSTS_FILE}` and `{paths.TIMING_DIR}/` of the committed run; `make docs` rewrites this "
              "box.\n")


def block_stage_times(root: Path, args: list[str]) -> str:
    records = stage_records(root)
    if not records:
        return "No stage times recorded yet: `make repro` writes them.\n"
    rows = []
    for study, total in per_study({k: v["seconds"] for k, v in records.items()}).items():
        mine = sorted((s, r) for s, r in records.items() if study_of(s) == study)
        rows += [[study, f"`{s}`", f"{r['seconds']:.1f}", fmt(r.get("workers", 1))] for s, r in mine]
        rows.append([f"**{study}**", "**all**", f"**{total:.0f}**", ""])
    total = sum(r["seconds"] for r in records.values())
    rows.append(["**all stages**", "", f"**{total:.0f}** ({duration(total)})", ""])
    return table(["study", "stage", "seconds", "workers"], rows)


def block_workers(root: Path, args: list[str]) -> str:
    rows = one_worker_rows(root)
    if not rows:
        return "No pooled stage has run yet: `make repro` records each stage's workers and time.\n"
    profile = (costs(root).get("workers") or {}).get("profile", "quick")
    return (table(["pooled stage", "one worker", "two workers", "speed-up"], rows)
            + f"\nThe `{profile}` profile run twice on the same machine, `workers` 1 and 2 (`workers` in "
              f"`{COSTS_FILE}`; each stage's time from `{paths.TIMING_DIR}/<stage>.json` of those runs).\n")


def block_pool(root: Path, args: list[str]) -> str:
    """benchmarks/pool_throughput.py's figures, as docs/costs.yaml records them."""
    bench = costs(root).get("pool_throughput") or {}
    fams = bench.get("families") or {}
    if not fams:
        return f"{NOT_YET.capitalize()}: `benchmarks/pool_throughput.py` prints the figures.\n"
    rows = []
    for name, f in fams.items():
        one, two, pool = (_number(f.get(k)) for k in ("one_thread", "two_threads", "two_workers"))
        gain = f"{pool / two:.2f}x" if pool and two else "–"
        rows.append([f.get("title", name), count(one), count(two), count(pool), gain])
    where = ", ".join(str(x) for x in (bench.get("machine"), bench.get("date")) if x)
    return (table(["net family", "1 process, 1 thread", "1 process, 2 threads", "2 workers, 1 thread each",
                   "workers against threads"], rows)
            + f"\nImages per second in training{f' ({where})' if where else ''}; from `{COSTS_FILE}`.\n")


def block_engine(root: Path, args: list[str]) -> str:
    """benchmarks/engine_vs_dataloader.py (`make bench`), as docs/costs.yaml records it."""
    bench = costs(root).get("engine_vs_dataloader") or {}
    models = bench.get("models") or {}
    if not models:
        return f"{NOT_YET.capitalize()}: `make bench` prints the figures.\n"
    cols = list(bench.get("columns") or next(iter(models.values())).keys())
    rows = [[name, *(count(_number(m.get(k))) for k in cols)] for name, m in models.items()]
    where = ", ".join(str(x) for x in (bench.get("machine"), bench.get("date"), bench.get("setup")) if x)
    return (table(["classifier", *cols], rows)
            + f"\nImages per second{f' ({where})' if where else ''}; from `{COSTS_FILE}`.\n")


def block_size_trial(root: Path, args: list[str]) -> str:
    """Smaller training sets, the budget rule's next lever, as measured in a trial (`size_trial` of
    docs/costs.yaml), against the default and the default run's stage times (the trial's own record of them,
    else the committed run's): what they save and what they cost."""
    trial = costs(root).get("size_trial") or {}
    stages = trial.get("stages") or {}
    if not stages:
        return f"{NOT_YET.capitalize()}.\n"
    times, values = stage_seconds(root), params(root)
    rows, saved = [], 0.0
    for stage, t in stages.items():
        # Against the default run's time measured with the trial (same machine, same code), when recorded: a later
        # committed run may have run on a faster or slower machine.
        default = _number(t.get("default_seconds")) or _number(times.get(stage))
        now = _number(t.get("seconds"))
        saved += (default - now) if default and now else 0.0
        rows.append([f"`{stage}`", f"`{t.get('parameter')}` {fmt(lookup(values, t.get('parameter', '')))} -> "
                     f"{fmt(t.get('trial'))}", f"{duration(default)} -> {duration(now)}", fmt(t.get("converged")),
                     fmt(t.get("outcome"))])
    total = sum(times.values())
    where = ", ".join(str(x) for x in (trial.get("machine"), trial.get("date")) if x)
    # DVC's hashing and caching and Python's start-ups come on top of the stages' own time in a run's wall time.
    wall = _number((costs(root).get("default_run") or {}).get("wall_seconds"))
    with_dvc = (f"; {duration(wall - saved)} of wall time with DVC's own time on top (the default run's wall "
                f"time less what the trial saves)" if wall else "")
    return (table(["stage", "training set", "stage time", "converged", "what it cost"], rows)
            + f"\nTogether they would save {duration(saved)} of the stages' own {duration(total)}: "
              f"{duration(total - saved)} in all{with_dvc}{f' ({where})' if where else ''}; from `{COSTS_FILE}` "
              f"and `{paths.TIMING_DIR}/`.\n")


def block_layer_order(root: Path, args: list[str]) -> str:
    """benchmarks/net_speed.py's figures (`layer_order` of docs/costs.yaml): each net in the original layer order
    (the sources' architectures) and in the project's (ReLU after the max-pool, in place), and whether both trained to the same weights."""
    bench = costs(root).get("layer_order") or {}
    models = bench.get("models") or {}
    if not models:
        return f"{NOT_YET.capitalize()}: `benchmarks/net_speed.py` prints the figures.\n"
    rows = []
    for name, m in models.items():
        spec, fast = _number(m.get("original_order")), _number(m.get("project_order"))
        gain = f"{fast / spec:.2f}x" if spec and fast else "–"
        rows.append([name, count(spec), count(fast), gain, "yes" if m.get("bit_identical") else "no"])
    where = ", ".join(str(x) for x in (bench.get("machine"), bench.get("date")) if x)
    return (table(["net", "original order", "project order", "speed-up", "same weights, bit for bit"], rows)
            + f"\nImages per second in training, one thread{f' ({where})' if where else ''}; from `{COSTS_FILE}`.\n")
