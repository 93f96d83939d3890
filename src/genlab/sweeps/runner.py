"""Plan a sweep against what is already on disk, then hand the remaining runs to an executor.

A finished run (status.json state "finished", same epochs) is skipped; a run folder with a config but not
finished is resumed (``genlab train --resume DIR``: from its last checkpoint, exactly); a missing run is
started. Run folders whose saved config differs from the sweep's in a key that changes training are refused
up front, naming the keys, so an edited sweep file never mixes results.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from genlab.config import Config, diff
from genlab.errors import ConfigError, GenlabError
from genlab.recipe import from_dict
from genlab.registry import Registry
from genlab.resume import check_resume
from genlab.rundir import RunDir
from genlab.sweeps.grid import PlannedRun, Sweep, check_sweep_folder, validate_plan, write_manifest
from genlab.sweeps.local import Job, JobResult, LocalExecutor
from genlab.sweeps.ray import RayExecutor

#: executors by name (the CLI's --executor choices); RayExecutor imports Ray only when it runs
EXECUTORS: Registry[Callable[..., object]] = Registry("executor")


@EXECUTORS.register("local")
def _local(**kw):
    return LocalExecutor(**kw)


@EXECUTORS.register("ray")
def _ray(**kw):
    return RayExecutor(**kw)


def make_executor(name: str, **kw):
    return EXECUTORS.get(name)(**kw)


TERMINAL_STATES = ("finished", "diverged")


@dataclass
class Action:
    run: PlannedRun
    state: str  # "new" | "resume" | "finished" | "diverged"
    args: tuple[str, ...] = ()  # genlab CLI arguments (empty when nothing is to be done)

    @property
    def todo(self) -> bool:
        return self.state in ("new", "resume")


def decide(sweep: Sweep, run: PlannedRun, planned: Config) -> Action:
    """What to do with one planned run given its folder; ConfigError when the folder holds another config."""
    path = run.path
    rd = RunDir.of(path)
    if not rd.exists():
        overwrite = ("--overwrite",) if path.exists() and any(path.iterdir()) else ()
        return Action(run, "new", ("train", str(sweep.base), *run.overrides, "--run-dir", str(path), *overwrite))
    saved = from_dict(rd.read_config())
    bad = check_resume(saved, planned)
    if bad:
        raise ConfigError(f"{path} was trained with a different config ({', '.join(bad)}) than the sweep now "
                          "asks for; pick another --out, or delete that run folder to retrain it")
    changed = [k for k in diff(saved, planned) if k in ("train.epochs", "train.max_steps")]
    state = (rd.read_status() or {}).get("state")
    if state in TERMINAL_STATES and not changed:
        return Action(run, state)
    structured = OmegaConf.structured(planned)
    extra = [f"{k}={_yaml_value(OmegaConf.select(structured, k))}" for k in changed]
    return Action(run, "resume", ("train", "--resume", str(path), *extra))


def _yaml_value(v) -> str:
    return "null" if v is None else str(v)


@dataclass
class SweepOutcome:
    out: Path
    actions: list[Action]
    results: list[JobResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if not r.ok]

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for a in self.actions:
            c[a.state] = c.get(a.state, 0) + 1
        return c


def plan_actions(sweep: Sweep, out: str | Path) -> list[Action]:
    """Validate every cell (no training yet), check existing folders, and decide each run's action.

    Runs are ordered seed-major (every cell's first seed before any second seed), so partial results cover
    the whole grid early.
    """
    runs = sweep.plan(out)
    configs = validate_plan(sweep, runs)
    actions = [decide(sweep, r, configs[r.name]) for r in runs]
    order = {s: i for i, s in enumerate(sweep.seeds)}
    return sorted(actions, key=lambda a: order[a.run.seed])


def run_sweep(sweep: Sweep, out: str | Path, executor=None, dry_run: bool = False,
              log: Callable[[str], None] = print, cwd: str | None = None) -> SweepOutcome:
    """Run (or continue) a sweep into ``out``; returns what was done. Failed runs do not stop the others."""
    out = Path(out).absolute()
    check_sweep_folder(out)
    actions = plan_actions(sweep, out)
    outcome = SweepOutcome(out=out, actions=actions)
    c = outcome.counts()
    log(f"sweep {sweep.name}: {len(sweep.cells())} cell(s) x {len(sweep.seeds)} seed(s) = {len(actions)} runs; "
        + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
    if dry_run:
        for a in actions:
            log(f"  {a.state:9s} {a.run.name}" + (f": genlab {' '.join(a.args)}" if a.todo else ""))
        return outcome
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(sweep, sweep.plan(out), out)
    todo = [a for a in actions if a.todo]
    if not todo:
        log("nothing to run: every run is finished")
        return outcome
    executor = executor or LocalExecutor(workers=1)
    log(executor.describe())
    jobs = [Job(name=a.run.name, args=a.args, log=out / "logs" / (a.run.name.replace("/", "__") + ".log"),
                cwd=cwd or str(Path.cwd())) for a in todo]
    t0 = time.perf_counter()
    done = [0]

    def on_done(r: JobResult) -> None:
        done[0] += 1
        status = "ok" if r.ok else f"FAILED (exit {r.returncode}; log {r.log})"
        log(f"[{done[0]}/{len(jobs)}] {r.name} {status} in {r.seconds:.1f}s")

    outcome.results = executor.run(jobs, on_done)
    outcome.seconds = time.perf_counter() - t0
    return outcome


def check_outcome(outcome: SweepOutcome) -> None:
    if outcome.failed:
        names = "; ".join(f"{r.name} (exit {r.returncode}, log {r.log})" for r in outcome.failed[:5])
        raise GenlabError(f"{len(outcome.failed)} run(s) failed: {names}; fix the cause and run the sweep again "
                          "(finished runs are skipped)")
