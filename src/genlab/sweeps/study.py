"""The study behind a search: Optuna's samplers and pruners by name, its storage (a SQLite file in the search
folder, or any SQLAlchemy URL Optuna supports), and how a trial whose worker died is found and retried.

Optuna is optional (``pip install "genlab[search]"``) and imported by the functions here, never at import time.

A dead worker's trial. Every trial records its worker (host and pid) and Optuna's heartbeat (a thread of the
worker writes a timestamp every ``heartbeat_seconds``). A trial still "running" whose worker is gone is marked
FAIL, by any worker of the study: at once when the worker ran on this machine and its process no longer exists,
otherwise when its heartbeat is older than ``grace_seconds``. It is then retried (``retries`` times at most) as a
new trial with the same parameters, which continues the dead trial's run folders from their last checkpoints
(genlab's exact resume): the steps trained before the kill are not trained again, and a trial number is never
reused (Optuna's numbers only grow; a finished trial's state never changes again).
"""
from __future__ import annotations

import inspect
import os
import random
import socket
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, GenlabError
from genlab.registry import Registry

#: the file of the default storage, inside the search folder
STUDY_DB = "study.db"
#: trial user attributes genlab writes (the table and the report read them)
WORKER_ATTR, FOLDER_ATTR, VALUES_ATTR, ERROR_ATTR, PRUNED_AT_ATTR = "worker", "folder", "seed_values", "error", \
    "pruned_at_epoch"
#: set on a trial that two workers' race made one too many: it ends FAIL without training and counts nowhere
SURPLUS_ATTR = "surplus"


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise GenlabError('genlab search needs Optuna: pip install "genlab[search]" (or "optuna"); a grid of runs '
                          "needs nothing extra: `genlab sweep`") from None
    return optuna


@contextmanager
def quiet_optuna():
    """Optuna's own log lines and experimental-feature warnings off (genlab says what happens in its own words)."""
    optuna = import_optuna()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
        try:
            yield optuna
        finally:
            optuna.logging.set_verbosity(level)


# ------------------------------------------------------------------------------------------ samplers and pruners
@dataclass(frozen=True)
class Choice:
    """A sampler or pruner: its Optuna class (by attribute path) and genlab's defaults for its options."""

    path: str  # e.g. "samplers.TPESampler"
    summary: str
    defaults: tuple[tuple[str, Any], ...] = ()

    def cls(self):
        obj = import_optuna()
        for part in self.path.split("."):
            obj = getattr(obj, part)
        return obj


SAMPLERS: Registry[Choice] = Registry("sampler")
# constant_liar: running trials count as bad guesses, so parallel workers do not all propose the same point
SAMPLERS.add("tpe", Choice("samplers.TPESampler", "Tree-structured Parzen Estimator (Optuna's default)",
                           (("constant_liar", True),)))
SAMPLERS.add("random", Choice("samplers.RandomSampler", "independent uniform (or log-uniform) draws"))
SAMPLERS.add("grid", Choice("samplers.GridSampler", "every combination of the space's lists once"))

PRUNERS: Registry[Choice] = Registry("pruner")
PRUNERS.add("median", Choice("pruners.MedianPruner", "stop a trial worse than the median of earlier trials at the "
                                                    "same epoch"))
PRUNERS.add("halving", Choice("pruners.SuccessiveHalvingPruner", "asynchronous successive halving"))
PRUNERS.add("hyperband", Choice("pruners.HyperbandPruner", "Hyperband: several successive-halving brackets"))
PRUNERS.add("none", Choice("pruners.NopPruner", "never prune"))


def _options(kind: str, name: str, choice: Choice, options: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any]:
    params = inspect.signature(choice.cls().__init__).parameters
    allowed = [p for p in params if p not in ("self", *skip) and params[p].kind != inspect.Parameter.VAR_KEYWORD]
    for k in options:
        if k not in allowed:
            raise ConfigError(f"{kind} {name!r} has no option {k!r}; its options: {', '.join(allowed) or 'none'}")
    return {**dict(choice.defaults), **options}


def make_sampler(name: str, options: dict[str, Any], grid: dict[str, list] | None = None):
    """An Optuna sampler; ConfigError (one line) for an unknown name, option or value."""
    choice = SAMPLERS.get(name)
    kw = _options("sampler", name, choice, options, ("search_space",))
    if name == "grid":
        if grid is None:
            raise ConfigError("sampler grid needs a space of lists only (no ranges, no 'when'); use tpe or random "
                              "for ranges")
        kw["search_space"] = grid
    return _build("sampler", name, choice, kw)


def make_pruner(name: str, options: dict[str, Any]):
    choice = PRUNERS.get(name)
    return _build("pruner", name, choice, _options("pruner", name, choice, options, ()))


def _build(kind: str, name: str, choice: Choice, kw: dict[str, Any]):
    with quiet_optuna():
        try:
            return choice.cls()(**kw)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{kind} {name!r} refuses its options {kw}: {str(e).splitlines()[0]}") from None


# ------------------------------------------------------------------------------------------ storage
def default_storage(out: Path) -> str:
    return f"sqlite:///{(Path(out).absolute() / STUDY_DB)}"


def shown_url(url: str) -> str:
    """The storage URL with any password hidden (what files and logs show)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: the storage itself will say so
        return url


def open_storage(url: str, heartbeat_seconds: int | None = None, grace_seconds: int | None = None,
                 retries: int | None = None, attempts: int = 5):
    """An Optuna RDB storage at ``url`` (tables created when new); GenlabError, one line, when the database cannot
    be reached or the URL is not one SQLAlchemy knows. Workers that start together on an empty database race to
    create its tables: the loser sees a duplicate and tries again (``attempts`` times)."""
    for attempt in range(attempts):
        with quiet_optuna() as optuna:
            callback = None
            if heartbeat_seconds:
                callback = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=retries,
                                                                            inherit_intermediate_values=True)
            try:
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=heartbeat_seconds,
                    grace_period=grace_seconds, **({"heartbeat_stale_trial_callback": callback} if callback else {}))
            except Exception as e:  # sqlalchemy's OperationalError / ArgumentError, a missing driver (ImportError)
                if _lost_a_race(e) and attempt + 1 < attempts:
                    time.sleep(0.2 + random.random())
                    continue
                raise GenlabError(f"cannot open the study storage {shown_url(url)}: {_first_line(e)}; check that the "
                                  "database server is running and reachable, the URL (postgresql://USER@HOST:PORT/DB) "
                                  'and its driver (pip install "genlab[postgres]")') from None
    raise AssertionError("unreachable")


def _lost_a_race(e: BaseException) -> bool:
    """Another worker created the same table or row first (two workers starting on an empty database)."""
    text = str(e).lower()
    return type(e).__name__ == "IntegrityError" or "already exists" in text or "duplicate" in text


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": 10}}  # an unreachable host fails in seconds, not minutes
    return {}


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e).strip()
    return (text.splitlines()[0] if text else type(e).__name__).rstrip(".")


# ------------------------------------------------------------------------------------------ dead workers
def worker_id() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def fail_dead_trials(study, log: Callable[[str], None]) -> list[int]:
    """Mark FAIL the running trials whose worker is gone, and enqueue their retries (see the module's docstring):
    at once for a worker of this machine whose pid no longer exists, otherwise after the heartbeat's grace
    period (Optuna's ``fail_stale_trials``). Returns the numbers of the trials failed here."""
    with quiet_optuna() as optuna:
        TrialState = optuna.trial.TrialState
        storage = study._storage
        me = worker_id()
        failed: list[int] = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            w = t.user_attrs.get(WORKER_ATTR) or {}
            if w.get("host") != me["host"] or w.get("pid") in (None, me["pid"]) or _alive(int(w["pid"])):
                continue
            try:  # the note first: a finished trial takes no more attributes
                storage.set_trial_user_attr(t._trial_id, ERROR_ATTR, f"worker {w['pid']} on {w['host']} ended "
                                                                     "mid-trial (killed)")
                if not storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker was first
                continue
            failed.append(t.number)
            retry = storage.get_heartbeat_stale_trial_callback()
            if retry is not None:
                retry(study, storage.get_trial(t._trial_id))
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)
        stale = sorted({t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))} - before
                       - set(failed))
    for n in failed:
        log(f"trial {n}: its worker on this machine has ended mid-trial; marked failed, retried from its checkpoints")
    for n in stale:
        log(f"trial {n}: no heartbeat from its worker for the grace period; marked failed, retried from its "
            "checkpoints")
    return failed + stale


def retry_trial(study, number: int) -> None:
    """Enqueue a retry of failed trial ``number`` (a Ctrl-C'd trial): the storage's retry callback, when set."""
    retry = study._storage.get_heartbeat_stale_trial_callback()
    if retry is not None:
        with quiet_optuna():
            retry(study, next(t for t in study.get_trials(deepcopy=False) if t.number == number))


def root_trial(trial) -> int:
    """The number of the first trial of a retry chain (whose run folders every retry continues)."""
    history = trial.system_attrs.get("retry_history") or []
    return int(history[0]) if history else int(trial.number)
