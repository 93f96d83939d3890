"""genlab search, measured (docs/benchmarks.md, section "Search"): the study database's cost per trial, and what a
finished search did. Nothing here asserts.

    python benchmarks/search_study.py overhead [--search configs/searches/fashion_mnist_2min.yaml] [--trials 30]
        [--repeats 3] [--storage postgresql://...] [--real-steps 100] [--out r.json]

genlab's search machinery around one trial (the dead-worker check, ask, the trial's attributes, one report and one
pruning decision per evaluated epoch, tell, trials.csv/.md and best.yaml written after the trial) with a stub trial
that trains nothing: milliseconds per trial, mean +- std over ``--repeats``, on a
SQLite study in a temporary folder and, with ``--storage``, on that database too (a fresh study name each run).
The baseline, measured in the same run: one real trial of the same search with a budget of ``--real-steps``
training steps (the real Fashion-MNIST; eval every epoch as the search file says), and the ratio of the overhead
to it and to a trial of the search file's own budget (minutes).

    python benchmarks/search_study.py summarize SEARCH_FOLDER

What a search did: trials complete / pruned / failed, the minutes its trials took against trials x budget without
pruning, the study's wall time and the workers', the best trial, its recipe and the command that compares it with
fashion_mnist_10min at equal minutes (benchmarks/quality_per_minute.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from omegaconf import OmegaConf

from genlab.reporting.search_report import load_study
from genlab.reporting.search_table import read_search_manifest
from genlab.sweeps import search as search_mod
from genlab.sweeps.search_file import parse_search, validate
from genlab.sweeps.study import quiet_optuna

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEARCH = ROOT / "configs" / "searches" / "fashion_mnist_2min.yaml"


def read_search(path: Path, **changes):
    data = OmegaConf.to_container(OmegaConf.load(path))
    data["base"] = str((ROOT / data["base"]) if not Path(data["base"]).is_absolute() else data["base"])
    data.update(changes)
    return validate(parse_search(data, path))


def stub_trials(search, storage: str | None, trials: int, epochs: int) -> float:
    """Seconds per trial of the search machinery with a trial that trains nothing (reports ``epochs`` values)."""
    real = search_mod.run_seed

    def stub(search, values, seed, path, trial, log):  # a real trial also builds its config: not the study's cost
        value = 100.0 + sum(hash(str(v)) % 1000 for v in values.values()) / 100
        for epoch in range(1, epochs + 1):
            if trial is not None:
                trial.report(value + 10.0 / epoch, epoch)
                trial.should_prune()
        return value

    search.sweep.name = f"overhead-{uuid.uuid4().hex[:8]}"  # a new study every run, also in a shared database
    search.pruner = ("none", {})  # every stub trial completes: each one costs a full trial's bookkeeping
    search_mod.run_seed = stub
    try:
        with tempfile.TemporaryDirectory() as tmp:
            search.trials = 1  # first the one-off costs: imports, the tables, the study, its folder
            search_mod.run_search(search, Path(tmp) / "out", storage, log=lambda *_: None)
            search.trials = 1 + trials
            t0 = time.perf_counter()
            search_mod.run_search(search, Path(tmp) / "out", storage, log=lambda *_: None)
            return (time.perf_counter() - t0) / trials
    finally:
        search_mod.run_seed = real


def overhead(args) -> dict:
    search_file = Path(args.search)
    result: dict = {"search": str(search_file), "trials": args.trials, "repeats": args.repeats}
    storages = {"sqlite": None, **({"storage": args.storage} if args.storage else {})}
    for name, url in storages.items():
        per = [stub_trials(read_search(search_file), url, args.trials, args.epochs) * 1000 for _ in range(args.repeats)]
        result[name] = {"ms_per_trial": per, "mean": statistics.fmean(per),
                        "std": statistics.stdev(per) if len(per) > 1 else 0.0}
        print(f"{name}: {result[name]['mean']:.1f} +- {result[name]['std']:.1f} ms of study bookkeeping per trial "
              f"({args.trials} stub trials x {args.repeats} repeats, {args.epochs} reports each)", flush=True)
    spec = read_search(search_file, budget={"steps": args.real_steps}, trials=1)
    spec.sweep.name = f"baseline-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        search_mod.run_search(spec, Path(tmp) / "out", None, log=lambda *_: None)
        real_s = time.perf_counter() - t0
    budget_min = read_search(search_file).budget.get("minutes")
    result["baseline"] = {"steps": args.real_steps, "seconds": real_s}
    for name in storages:
        ms = result[name]["mean"]
        result[name]["share_of_baseline_trial"] = ms / 1000 / real_s
        line = f"{name}: {ms:.1f} ms per trial = {100 * ms / 1000 / real_s:.3f}% of a {args.real_steps}-step trial " \
               f"({real_s:.1f} s, measured in this run)"
        if budget_min:
            result[name]["share_of_budget_trial"] = ms / 1000 / (budget_min * 60)
            line += f", {100 * ms / 1000 / (budget_min * 60):.4f}% of a {budget_min:g}-minute trial"
        print(line)
    return result


def summarize(args) -> dict:
    folder = Path(args.folder)
    manifest = read_search_manifest(folder)
    if manifest is None:
        sys.exit(f"{folder} is not a search folder (no search.json)")
    with quiet_optuna():
        trials = load_study(folder, manifest).get_trials(deepcopy=False)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    minutes = {t.number: (t.datetime_complete - t.datetime_start).total_seconds() / 60 for t in trials
               if t.datetime_complete is not None and t.datetime_start is not None}
    finished = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    budget = (manifest.get("budget") or {}).get("minutes")
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    wall = (max(ends) - min(starts)).total_seconds() / 60 if starts and ends else float("nan")
    workers = {json.dumps(t.user_attrs.get("worker")) for t in trials if t.user_attrs.get("worker")}
    out = {"folder": str(folder), "states": states, "trial_minutes": sum(minutes.values()),
           "study_wall_minutes": wall, "workers": len(workers)}
    print(f"{folder}: {finished} finished trials ({states.get('COMPLETE', 0)} complete, {states.get('PRUNED', 0)} "
          f"pruned, {states.get('FAIL', 0)} failed) on {len(workers)} worker(s); the trials took "
          f"{out['trial_minutes']:.1f} minutes in all (training and evaluation), the study {wall:.1f} minutes of wall "
          "time")
    if budget:
        full = finished * budget
        out["minutes_without_pruning"] = full
        print(f"without pruning: {finished} x {budget:g} = {full:.0f} minutes of training alone; pruned trials "
              f"trained {sum(minutes[t.number] for t in trials if t.state.name == 'PRUNED'):.1f} minutes")
    done = [t for t in trials if t.state.name == "COMPLETE"]
    if done:
        direction = (manifest.get("objective") or {}).get("direction", "minimize")
        best = (max if direction == "maximize" else min)(done, key=lambda t: t.value)
        out["best"] = {"number": best.number, "value": best.value, "params": best.params}
        key = (manifest.get("objective") or {}).get("key", "fid")
        print(f"best: trial {best.number}, {key} {best.value:.4g}, {json.dumps(best.params)}")
        print(f"its recipe: {folder / 'best.yaml'}; against fashion_mnist_10min at equal minutes (3 repeats):\n"
              "  python benchmarks/quality_per_minute.py --minutes 10 --repeats 3 --arm "
              f"configs/fashion_mnist_10min.yaml --arm '{folder / 'best.yaml'} data.limit=null eval.every=0' "
              f"--out {folder / 'vs_10min.json'}")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("overhead", help="the study's bookkeeping per trial against a real trial")
    o.add_argument("--search", default=str(DEFAULT_SEARCH), help="the search file whose machinery is measured")
    o.add_argument("--trials", type=int, default=30, help="stub trials per repeat")
    o.add_argument("--repeats", type=int, default=3)
    o.add_argument("--epochs", type=int, default=4, help="reports (evaluated epochs) per stub trial")
    o.add_argument("--storage", default=None, help="also measure this database (e.g. postgresql://USER@HOST/DB)")
    o.add_argument("--real-steps", type=int, default=100, help="training steps of the baseline's real trial")
    o.add_argument("--out", default=None, help="write the results as JSON here")
    s = sub.add_parser("summarize", help="what a finished search did")
    s.add_argument("folder")
    s.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    result = overhead(args) if args.cmd == "overhead" else summarize(args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main()
