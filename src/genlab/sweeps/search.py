"""Run a search: workers that ask the study for trials, train each trial's seeds as genlab runs, report the
in-training evaluations to the pruner and tell the study the objective.

    OUT/search.yaml        the search file as run (workers started elsewhere run this copy)
        search.json        what was searched (space, objective, sampler, pruner, storage, study name)
        study.db           the study (SQLite), unless --storage names another database
        trials/0007/seed=0 trial 7's run folder for seed 0 (a retry of trial 7 continues this folder)
        trials.csv, .md    every trial: parameters, objective (mean and spread over seeds), state, minutes
        best.yaml          the best trial's recipe: `genlab train OUT/best.yaml` trains it as it is
        logs/worker-K.log  the output of worker processes started by --workers N

One worker trains in this process; ``workers`` > 1 starts that many ``genlab search OUT/search.yaml`` processes
(local) or Ray tasks sharing the study. A worker stops when the study holds ``trials`` finished (complete or
pruned) trials, waiting for trials other workers still run (so a trial whose worker died is retried, see
``genlab.sweeps.study``), or when ``timeout_minutes`` of its own have passed.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from genlab.config import Config, to_yaml
from genlab.errors import ConfigError, GenlabError, Interrupted, TrainingDiverged
from genlab.evaluation import TrainingEval
from genlab.io import atomic_write_text
from genlab.recipe import from_dict
from genlab.reporting.search_table import (
    SEARCH_FILE,
    SEARCH_MANIFEST,
    read_search_manifest,
    trial_folder,
    write_table,
)
from genlab.resume import check_resume, resume_config
from genlab.rundir import RunDir
from genlab.sweeps.local import Job, JobResult, SweepInterrupted
from genlab.sweeps.search_file import Search
from genlab.sweeps.study import (
    ERROR_ATTR,
    FOLDER_ATTR,
    PRUNED_AT_ATTR,
    SURPLUS_ATTR,
    VALUES_ATTR,
    WORKER_ATTR,
    default_storage,
    fail_dead_trials,
    import_optuna,
    make_pruner,
    make_sampler,
    open_storage,
    quiet_optuna,
    retry_trial,
    root_trial,
    shown_url,
    worker_id,
)
from genlab.training.callbacks import Callback
from genlab.training.loop import train as train_loop

#: trials in a row that fail for a reason of their own (not divergence) before a worker gives up
MAX_FAILURES_IN_A_ROW = 3
BEST_RECIPE = "best.yaml"
#: the index of a worker started by --workers N (0..N-1); it shifts a seeded sampler's seed
WORKER_INDEX_ENV = "GENLAB_SEARCH_WORKER"
Progress = Callable[[int, int, str], None]  # (finished trials, target, what is happening)


class SearchInterrupted(Interrupted):
    """Ctrl-C during a search: the running trial was checkpointed and will be retried (the CLI exits 130)."""


@dataclass
class SearchSummary:
    """What ``genlab.search`` returns: the study's state after this call."""

    name: str
    out: Path
    storage: str  # the URL with any password hidden
    objective: str  # the number optimised (fid, kid/mean, ...)
    direction: str  # minimize | maximize
    target: int  # finished trials the study aims at
    counts: dict[str, int] = field(default_factory=dict)  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING, SURPLUS -> n
    best: dict[str, Any] | None = None  # {"number", "value", "params", "folder", "recipe"}
    seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.counts.get("COMPLETE", 0) + self.counts.get("PRUNED", 0)

    def line(self) -> str:
        c = self.counts
        parts = [f"search {self.name}: {self.finished}/{self.target} trials finished ({c.get('COMPLETE', 0)} complete, "
                 f"{c.get('PRUNED', 0)} pruned, {c.get('FAIL', 0)} failed"
                 + (f", {c['SURPLUS']} not run: started by two workers at once" if c.get("SURPLUS") else "") + ")"]
        if self.best:
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in self.best["params"].items())
            parts.append(f"best trial {self.best['number']}: {self.objective} {self.best['value']:.4g} ({shown})")
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------ one trial
class PruneOnEval(Callback):
    """Reports each whole-epoch evaluation of the objective to the trial and stops the fit when the pruner says
    so (after the epoch's checkpoint; the fit returns as "stopped", the search marks the folder "pruned")."""

    def __init__(self, trial, key: str):
        self.trial, self.key = trial, key
        self.last: float | None = None
        self.pruned_at: int | None = None

    def on_record(self, trainer, record: dict) -> None:
        if record.get("kind") != "eval" or self.key not in record:
            return
        self.last = float(record[self.key])
        if self.trial is None or trainer.state.step_in_epoch != 0:  # only whole epochs line up across trials
            return
        self.trial.report(self.last, int(record["epoch"]))
        if self.trial.should_prune():
            self.pruned_at = int(record["epoch"])
            trainer.request_stop()


def final_value(run: RunDir, key: str) -> float | None:
    """The objective of a finished run: its last evaluation record's ``key``."""
    evals = [r for r in run.read_records() if r.get("kind") == "eval" and key in r]
    return float(evals[-1][key]) if evals else None


def run_seed(search: Search, values: dict[str, Any], seed: int, path: Path, trial, log: Callable[[str], None]
             ) -> float:
    """Train (or continue, or read) one seed of a trial in ``path``; its objective value. ``trial``: the Optuna
    trial to report to (the first seed only), None for the others. Raises TrialPruned after marking the folder."""
    optuna = import_optuna()
    key = search.objective.key
    planned = search.config(values, seed)
    run = RunDir.of(path)
    cb = PruneOnEval(trial, key)
    callbacks = (TrainingEval(), cb)
    wait_for_lock(run, log)
    if run.exists():
        saved = from_dict(run.read_config())
        bad = check_resume(saved, planned)
        if bad:
            raise ConfigError(f"{path} was trained with another config ({', '.join(bad)}) than this trial asks for; "
                              "the search folder holds another search's runs: use another --out")
        state = (run.read_status() or {}).get("state")
        if state == "finished":
            value = final_value(run, key)
            if value is not None:
                log(f"already finished in {path} ({key} {value:.4g})")
                return value
        if state == "pruned":
            raise GenlabError(f"{path} is marked pruned but its trial is being run again; use another --out")
        log(f"continuing {path} (its trial stopped before the end)")
        train_loop(resume_config(run), path, resume=True, log=log, callbacks=callbacks)
    else:
        overwrite = path.is_dir() and any(path.iterdir())  # a start killed before its config was written
        train_loop(planned, path, overwrite=overwrite, log=log, callbacks=callbacks)
    if cb.pruned_at is not None:
        status = run.read_status() or {}
        run.write_status("pruned", **{k: v for k, v in status.items() if k != "state"},
                         search={"study": search.name, "trial": trial.number, "epoch": cb.pruned_at, key: cb.last})
        raise optuna.TrialPruned(f"pruned at epoch {cb.pruned_at}: {key} {cb.last:.4g}")
    value = cb.last if cb.last is not None else final_value(run, key)
    if value is None:
        raise GenlabError(f"{path} finished without an evaluation of {key}; check eval.every and eval.metrics")
    return value


def wait_for_lock(run: RunDir, log: Callable[[str], None], poll_s: float = 2.0) -> None:
    """Wait while another process trains ``run`` (its lock is held): a worker taken for dead (its heartbeat came
    late) is still training the trial this retry continues; once it ends, the retry reads what it finished."""
    owner = run.lock_owner()
    if owner is None:
        return
    log(f"{run.path} is being trained by genlab process {owner.get('pid', '?')} on {owner.get('host', '?')} (a "
        "worker taken for dead); waiting for it to end")
    while run.lock_owner() is not None:
        time.sleep(poll_s)


class SurplusTrial(Exception):
    """A trial started when the study already had its trials (see :func:`is_surplus`); it ends FAIL, untrained."""


def is_surplus(trials, number: int, target: int) -> bool:
    """Whether new trial ``number`` is one too many: ``target`` trials with smaller numbers are already running or
    finished. A worker checks the count before it asks for a trial, but two workers can both find room for one
    more and both start one; the trial numbers order them, so the later one gives way (failed trials, this race's
    own surplus ones included, count nowhere, as in the worker's check)."""
    live = ("RUNNING", "COMPLETE", "PRUNED")
    return sum(t.number < number and t.state.name in live for t in trials) >= target


class Objective:
    """The function Optuna calls per trial: suggest, train every seed, return the mean over seeds."""

    def __init__(self, search: Search, out: Path, log: Callable[[str], None]):
        self.search, self.out, self.log = search, out, log
        self.error: BaseException | None = None  # what ended the last trial, when it failed
        self.number: int | None = None
        self.surplus = False  # the last trial was one too many and did not run

    def __call__(self, trial) -> float:
        self.error, self.number, self.surplus = None, trial.number, False
        study = trial.study
        trials = study.get_trials(deepcopy=False)
        frozen = next(t for t in trials if t.number == trial.number)
        root = root_trial(frozen)
        if root == trial.number and is_surplus(trials, trial.number, self.search.trials):  # a retry always runs
            self.surplus = True
            trial.set_user_attr(SURPLUS_ATTR, True)
            trial.set_user_attr(ERROR_ATTR, f"not run: the study already had its {self.search.trials} trials "
                                            "(another worker started the last one at the same time)")
            raise SurplusTrial(trial.number)
        values = self.search.space.suggest(trial)
        trial.set_user_attr(WORKER_ATTR, worker_id())
        for k in (ERROR_ATTR, PRUNED_AT_ATTR):  # a retry inherits the dead trial's notes: they are not its own
            if k in trial.user_attrs:
                trial.set_user_attr(k, "")
        trial.set_user_attr(FOLDER_ATTR, trial_folder(root))
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        again = f" (retry of trial {root})" if root != trial.number else ""
        self.log(f"trial {trial.number}{again}: {shown}")
        seed_values: list[float] = []
        try:
            for i, seed in enumerate(self.search.seeds):
                path = self.out / trial_folder(root) / f"seed={seed}"
                prefix = f"trial {trial.number} seed {seed}: "
                v = run_seed(self.search, values, seed, path, trial if i == 0 else None,
                             lambda m, p=prefix: self.log(p + str(m)))  # type: ignore[misc]  # (str) -> None
                seed_values.append(v)
                trial.set_user_attr(VALUES_ATTR, seed_values)
        except import_optuna().TrialPruned as e:
            trial.set_user_attr(PRUNED_AT_ATTR, str(e))
            raise
        except BaseException as e:
            self.error = e
            stopped = isinstance(e, (KeyboardInterrupt, Interrupted))
            note = "interrupted (Ctrl-C) and checkpointed; continued by its retry" if stopped else \
                " ".join(str(e).split())[:500] or type(e).__name__
            trial.set_user_attr(ERROR_ATTR, note)
            raise
        return float(statistics.fmean(seed_values))


# ------------------------------------------------------------------------------------------ the study
def _counts(study) -> dict[str, int]:
    """Trials per state name; a race's surplus trials (FAIL in the study) under SURPLUS, not FAIL."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        state = "SURPLUS" if t.state.name == "FAIL" and t.user_attrs.get(SURPLUS_ATTR) else t.state.name
        out[state] = out.get(state, 0) + 1
    return out


def open_study(search: Search, url: str):
    """The search's study in ``url`` (created when new); refused, before any training, when the storage cannot
    be reached or holds a study of that name made by another search (other space, objective, base or seeds)."""
    st = search.study
    storage = open_storage(url, st["heartbeat_seconds"], st["grace_seconds"], st["retries"])
    sampler = make_sampler(search.sampler[0], search.sampler[1],
                           search.space.grid() if search.space.is_grid() else None)
    pruner = make_pruner(search.pruner[0], search.pruner[1])
    with quiet_optuna() as optuna:
        try:
            study = optuna.create_study(storage=storage, study_name=search.name, sampler=sampler, pruner=pruner,
                                        direction=search.objective.direction, load_if_exists=True)
        except Exception as e:  # the database went away between the two calls, a race creating the tables
            raise GenlabError(f"cannot open study {search.name!r} in {shown_url(url)}: {str(e).splitlines()[0]}"
                              ) from None
        if study.direction.name.lower() != search.objective.direction:
            raise ConfigError(f"study {search.name!r} in {shown_url(url)} was made to "
                              f"{study.direction.name.lower()}, but objective {search.objective.key} asks to "
                              f"{search.objective.direction}; use another search name or --out")
        mine = {"fingerprint": search.fingerprint(), "objective": search.objective.key}
        theirs = study.user_attrs.get("genlab")
        if theirs is None:
            study.set_user_attr("genlab", {**mine, "uid": uuid.uuid4().hex})
            theirs = study.user_attrs["genlab"]
        seed = search.sampler[1].get("seed")
        if seed is not None:  # a rerun (or a second worker) must not propose the first worker's points again
            offset = len(study.get_trials(deepcopy=False)) + 7919 * int(os.environ.get(WORKER_INDEX_ENV, "0"))
            study.sampler = make_sampler(search.sampler[0], {**search.sampler[1], "seed": int(seed) + offset},
                                         search.space.grid() if search.space.is_grid() else None)
        if theirs.get("fingerprint") != mine["fingerprint"]:
            raise ConfigError(f"study {search.name!r} in {shown_url(url)} was made by another search (its base "
                              "recipe, overrides, space, seeds, objective or budget differ); give this search "
                              "another name (name: in the file) or another --out / --storage")
    return study


def _manifest(search: Search, out: Path, url: str, uid: str) -> None:
    """OUT/search.yaml (the file workers run) and OUT/search.json; refused when OUT holds another study."""
    old = read_search_manifest(out)
    if old is not None and old.get("uid") not in (None, uid):
        raise ConfigError(f"{out} holds the trials of another study ({old.get('name')!r} in {old.get('storage')}); "
                          "pick another --out, or give the same --storage as that search")
    in_folder = url == default_storage(out)
    manifest = {**search.describe(), "storage": "study.db" if in_folder else shown_url(url), "uid": uid,
                "study_name": search.name}
    atomic_write_text(out / SEARCH_MANIFEST, json.dumps(manifest, indent=1, default=str))
    data = dict(search.data)
    data["base"] = str(search.sweep.base)  # absolute: the copy runs from any folder
    data["name"] = search.name
    atomic_write_text(out / SEARCH_FILE, OmegaConf.to_yaml(OmegaConf.create(data)))


def write_best(search: Search, study, out: Path) -> Path | None:
    """OUT/best.yaml: the best complete trial's recipe (its first seed), a YAML `genlab train` takes as it is."""
    with quiet_optuna():
        try:
            best = study.best_trial
        except ValueError:  # no complete trial yet
            return None
    cfg: Config = search.config(dict(best.params), search.seeds[0], progress=True)
    cfg.name = f"{search.name}-best"
    spread = best.user_attrs.get(VALUES_ATTR) or []
    cfg.description = (f"best trial {best.number} of search {search.name}: {search.objective.key} {best.value:.4g}"
                       + (f" (mean of {len(spread)} seeds)" if len(spread) > 1 else ""))
    head = (f"# The best trial of search {search.name} (trial {best.number}, {search.objective.key} {best.value:.6g};"
            f" run folder {out / trial_folder(root_trial(best))}).\n"
            f"# Parameters: {json.dumps(best.params)}\n# Train it as it is: genlab train {out / BEST_RECIPE}\n")
    return atomic_write_text(out / BEST_RECIPE, head + to_yaml(cfg))


def summarize(search: Search, study, out: Path, url: str, seconds: float) -> SearchSummary:
    with quiet_optuna():
        counts = _counts(study)
        summary = SearchSummary(search.name, out, shown_url(url), search.objective.key, search.objective.direction,
                                search.trials, counts, seconds=seconds)
        summary.files = write_table(out, study.get_trials(deepcopy=False), search.objective.key,
                                    search.objective.direction, search.space.keys)
        recipe = write_best(search, study, out)
        if recipe is not None:
            best = study.best_trial
            summary.files["best"] = recipe
            summary.best = {"number": best.number, "value": best.value, "params": dict(best.params),
                            "folder": out / trial_folder(root_trial(best)), "recipe": recipe}
    return summary


# ------------------------------------------------------------------------------------------ workers
def work(search: Search, study, out: Path, log: Callable[[str], None], progress: Progress | None = None) -> None:
    """One worker in this process: trials until the study has enough finished ones (or the timeout)."""
    optuna = import_optuna()
    objective = Objective(search, out, log)
    t0 = time.monotonic()
    failures = 0
    waiting_said = False
    best: int | None = None  # the trial whose recipe best.yaml holds
    while True:
        with quiet_optuna():
            fail_dead_trials(study, log)
            c = _counts(study)
        finished, running, waiting = c.get("COMPLETE", 0) + c.get("PRUNED", 0), c.get("RUNNING", 0), c.get("WAITING", 0)
        if progress is not None:
            progress(finished, search.trials, f"{running} running")
        if finished >= search.trials and not waiting:  # retries of dead trials still run: nothing is lost
            return
        if search.timeout_minutes and time.monotonic() - t0 >= search.timeout_minutes * 60:
            log(f"timeout_minutes={search.timeout_minutes:g} reached: this worker starts no new trial")
            return
        if not waiting and finished + running >= search.trials:
            if not waiting_said:
                log(f"waiting for {running} trial(s) running on other workers (a dead worker's trial is retried "
                    f"after {search.study['grace_seconds']} s without a heartbeat)")
                waiting_said = True
            time.sleep(min(5.0, search.study["heartbeat_seconds"]))
            continue
        waiting_said = False
        try:
            with quiet_optuna():
                study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
        except KeyboardInterrupt:
            _interrupted(study, objective, log)
        except optuna.exceptions.UpdateFinishedTrialError:
            log(f"trial {objective.number} was declared dead by another worker while it ran (its heartbeat came "
                "late); its retry waits for this worker and reads the run folders it finished")
            continue
        if isinstance(objective.error, (Interrupted, KeyboardInterrupt)):
            _interrupted(study, objective, log)
        if objective.surplus:
            log(f"trial {objective.number} not run: another worker started the study's last trial at the same time")
            continue
        t = next(t for t in study.get_trials(deepcopy=False) if t.number == objective.number)
        log(_outcome(t, search.objective.key))
        if t.state.name == "FAIL" and not isinstance(objective.error, TrainingDiverged):
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise GenlabError(f"{failures} trials in a row failed; the last one: {t.user_attrs.get(ERROR_ATTR)}; "
                                  "fix the cause and run the same command again (finished trials are kept)")
        else:
            failures = 0
        best = after_trial(search, study, out, best)


def after_trial(search: Search, study, out: Path, written: int | None) -> int | None:
    """The table after each trial, best.yaml when the best trial changed (every worker writes them; each write is
    atomic); returns the best trial's number."""
    with quiet_optuna():
        trials = study.get_trials(deepcopy=False)
        write_table(out, trials, search.objective.key, search.objective.direction, search.space.keys)
        done = [t for t in trials if t.state.name == "COMPLETE"]
        if not done:
            return written
        best = (max if search.objective.direction == "maximize" else min)(done, key=lambda t: t.value)
        if best.number != written or not (out / BEST_RECIPE).is_file():
            write_best(search, study, out)
        return best.number


def _outcome(t, key: str) -> str:
    minutes = ((t.datetime_complete - t.datetime_start).total_seconds() / 60
               if t.datetime_complete and t.datetime_start else math.nan)
    if t.state.name == "COMPLETE":
        return f"trial {t.number} complete: {key} {t.value:.4g} in {minutes:.1f} min"
    if t.state.name == "PRUNED":
        return f"trial {t.number} pruned ({t.user_attrs.get(PRUNED_AT_ATTR, '')}) after {minutes:.1f} min"
    return f"trial {t.number} failed: {t.user_attrs.get(ERROR_ATTR, 'see the log above')}"


def _interrupted(study, objective: Objective, log: Callable[[str], None]) -> None:
    n = objective.number
    if n is not None:
        retry_trial(study, n)
    raise SearchInterrupted(f"search interrupted (Ctrl-C): trial {n} was checkpointed and is queued again; run the "
                            "same command to continue (finished trials are kept)" if n is not None else
                            "search interrupted (Ctrl-C) between trials; run the same command to continue")


def worker_jobs(search: Search, out: Path, url: str, workers: int, cwd: str | None) -> list[Job]:
    args = ("search", str(out / SEARCH_FILE), "--out", str(out), "--storage", url, "--workers", "1")
    return [Job(name=f"worker-{k}", args=args, log=out / "logs" / f"worker-{k}.log", cwd=cwd,
                env={WORKER_INDEX_ENV: str(k)}) for k in range(workers)]


def _run_workers(search: Search, out: Path, url: str, executor, workers: int, log: Callable[[str], None],
                 progress: Progress | None, cwd: str | None) -> list[JobResult]:
    """``workers`` worker processes (or Ray tasks) sharing the study; the progress follows the study meanwhile."""
    stop = threading.Event()

    def follow() -> None:
        with quiet_optuna() as optuna:
            study = optuna.load_study(study_name=search.name, storage=open_storage(url))
            while not stop.wait(2.0):
                c = _counts(study)
                if progress is not None:
                    progress(c.get("COMPLETE", 0) + c.get("PRUNED", 0), search.trials,
                             f"{c.get('RUNNING', 0)} running on {workers} workers")

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    log(executor.describe())
    done: list[JobResult] = []
    try:
        done = executor.run(worker_jobs(search, out, url, workers, cwd),
                            lambda r: log(f"{r.name} {'done' if r.ok else f'FAILED (exit {r.returncode}; {r.log})'}"))
    except SweepInterrupted:
        raise SearchInterrupted("search interrupted (Ctrl-C): each worker checkpointed its trial, which is queued "
                                "again; run the same command to continue (finished trials are kept)") from None
    finally:
        stop.set()
    return done


def run_search(search: Search, out: str | Path, storage: str | None = None, *, workers: int = 1, executor=None,
               log: Callable[[str], None] = print, progress: Progress | None = None,
               cwd: str | None = None) -> SearchSummary:
    """Run (or continue) ``search`` into the folder ``out`` with its study in ``storage`` (default: a SQLite file
    in ``out``). ``workers`` > 1 (or a Ray ``executor``) starts worker processes; otherwise this process is the
    worker. Returns the study's summary; the table and best.yaml are written."""
    out = Path(out).absolute()
    url = storage or default_storage(out)
    t0 = time.perf_counter()
    if storage is None:  # the SQLite file lives in the folder; another database is reached before anything is made
        out.mkdir(parents=True, exist_ok=True)
    study = open_study(search, url)
    out.mkdir(parents=True, exist_ok=True)
    _manifest(search, out, url, study.user_attrs["genlab"]["uid"])
    log(f"search {search.name}: {len(search.space.params)} key(s), {search.objective.direction} "
        f"{search.objective.key}, {search.trials} trials, {len(search.seeds)} seed(s) each; sampler "
        f"{search.sampler[0]}, pruner {search.pruner[0]}; study in {shown_url(url)}")
    if workers > 1 or (executor is not None and getattr(executor, "name", "") == "ray"):
        results = _run_workers(search, out, url, executor, workers, log, progress, cwd)
        bad = [r for r in results if not r.ok]
        if bad:
            raise GenlabError(f"{len(bad)} worker(s) failed: " + "; ".join(f"{r.name} (exit {r.returncode}, log "
                                                                         f"{r.log}: {r.tail(1)})" for r in bad))
    else:
        work(search, study, out, log, progress)
    return summarize(search, study, out, url, time.perf_counter() - t0)
