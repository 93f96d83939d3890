"""Search files -> a validated :class:`Search`: a sweep file's vocabulary plus a space, an objective and a study.

    base: configs/demo_fashion_mnist_dcgan.yaml     # as in a sweep file: the recipe every trial starts from
    overrides: {eval.num_samples: 2000}             # fixed for every trial
    seeds: 1                                        # per trial: the objective is the mean over them
    space:                                          # genlab.sweeps.space: ranges, lists (as a sweep's grid)
      train.g_opt.lr: {low: 2.0e-4, high: 3.0e-3, log: true}
    objective: fid                                  # or {metric: kid/mean, every: 1}
    budget: {steps: 600}                            # or {minutes: 2} or {epochs: 3}, per trial and seed
    trials: 24                                      # finished (complete or pruned) trials to reach
    sampler: tpe                                    # tpe | random | grid, or {name: tpe, seed: 0, ...}
    pruner: median                                  # median | halving | hyperband | none, or {name, options}

Everything is checked before anything trains: unknown keys, empty ranges, a log scale over non-positive values,
configs the recipe check refuses at any end of any range, and an objective the model cannot have (rFID of a model
without an encoder, a conditional metric of an unconditional model).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.config import Config, known_keys, to_yaml
from genlab.errors import ConfigError, GenlabError
from genlab.metrics.evaluate import NEEDS_CLASSIFIER_HEAD
from genlab.metrics.suite import METRICS, RECONSTRUCTION_INPUTS, needed_inputs
from genlab.models import MODELS
from genlab.recipe import build_networks, load_config
from genlab.reporting.metric_names import higher_is_better
from genlab.sweeps.grid import SWEEP_KEYS, Sweep, _flatten, format_value, parse_sweep
from genlab.sweeps.space import Space, check_key, list_keys, parse_space, trial_overrides
from genlab.sweeps.study import PRUNERS, SAMPLERS, make_pruner, make_sampler

#: the keys a search file shares with a sweep file (same meaning, same checks)
SHARED_KEYS = ("base", "overrides", "seeds", "name", "description")
SEARCH_KEYS = {
    **{k: SWEEP_KEYS[k] for k in SHARED_KEYS},
    "space": "dotted config keys -> a range {low, high, log, step} or a list of choices (genlab.sweeps.space)",
    "objective": "the metric to optimise: a `genlab eval` metric (fid, kid, is, rfid, ...) or one of its numbers "
                 "(pr/recall, kid/mean); or {metric: ..., every: N} with N = eval.every, the epochs between "
                 "in-training evaluations that pruning reads (default 1); its direction comes from the metric",
    "budget": "each trial's training per seed: {steps: N} (train.max_steps), {minutes: M} (train.minutes) or "
              "{epochs: E} (train.epochs); the recipe's other limits still apply",
    "trials": "finished (complete or pruned) trials the study aims at (default 20; grid: the grid's size)",
    "timeout_minutes": "a worker starts no new trial after this many minutes of its own (default: no limit)",
    "sampler": f"{' | '.join(SAMPLERS.names())} (default tpe), or {{name: tpe, <Optuna option>: value}}",
    "pruner": f"{' | '.join(PRUNERS.names())} (default median), or {{name: median, <Optuna option>: value}}",
    "study": "{heartbeat_seconds: 20, grace_seconds: 60, retries: 3}: how the trial of a worker that died is "
             "found (heartbeat older than grace) and retried from its checkpoints",
}
BUDGETS = {"steps": "train.max_steps", "minutes": "train.minutes", "epochs": "train.epochs"}
STUDY_OPTIONS = {"heartbeat_seconds": 20, "grace_seconds": 60, "retries": 3}
DEFAULT_TRIALS = 20
#: the number a metric name stands for as an objective; other numbers are named "metric/leaf" (pr/recall)
OBJECTIVE_KEYS = {"fid": "fid", "fid_inf": "fid_inf", "rfid": "rfid", "kid": "kid/mean", "is": "is/mean",
                  "ifid": "ifid/mean", "class_acc": "class_acc/accuracy", "cas": "cas/accuracy",
                  "copies": "copies/copy_rate", "recon": "recon/mse", "coverage": "coverage/classes_covered"}
#: numbers of a metric's result that can be an objective (suite.py's result keys)
OBJECTIVE_LEAVES = {"kid": ("mean",), "is": ("mean",), "pr": ("precision", "recall", "density", "coverage"),
                    "coverage": ("classes_covered", "entropy", "entropy_normalized", "kl_to_real"),
                    "ifid": ("mean",), "class_acc": ("accuracy",), "cas": ("accuracy",),
                    "copies": ("copy_rate",), "recon": ("mse", "mae")}


@dataclass(frozen=True)
class Objective:
    metric: str  # the metric eval.metrics computes (fid, kid, pr, ...)
    key: str  # the number in its evaluation record (fid, kid/mean, pr/recall)
    every: int = 1  # eval.every: epochs between in-training evaluations

    @property
    def direction(self) -> str:
        return "maximize" if higher_is_better(self.key) else "minimize"


@dataclass
class Search:
    sweep: Sweep  # base, overrides, seeds, name, description (the sweep file's vocabulary)
    space: Space
    objective: Objective
    budget: dict[str, Any] = field(default_factory=dict)
    trials: int = DEFAULT_TRIALS
    timeout_minutes: float | None = None
    sampler: tuple[str, dict[str, Any]] = ("tpe", {})
    pruner: tuple[str, dict[str, Any]] = ("median", {})
    study: dict[str, int] = field(default_factory=lambda: dict(STUDY_OPTIONS))
    base_config: Config | None = None  # the base recipe with the fixed overrides (set by validate)
    data: dict[str, Any] = field(default_factory=dict)  # the search file's mapping as read
    #: list-valued keys whose elements the space searches -> their value in base_config (set by validate)
    base_lists: dict[str, list] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.sweep.name

    @property
    def seeds(self) -> list[int]:
        return self.sweep.seeds

    def fixed_overrides(self) -> list[str]:
        """Every trial's overrides before its own values: the sweep's (log.progress=false), the budget's and the
        evaluation the objective needs."""
        ev = self.base_config.eval if self.base_config is not None else None
        metrics = list(ev.metrics) if ev is not None else []
        if self.objective.metric not in metrics:
            metrics.append(self.objective.metric)
        return (self.sweep.fixed_overrides() + [f"{BUDGETS[k]}={format_value(v)}" for k, v in self.budget.items()]
                + [f"eval.every={self.objective.every}", f"eval.metrics={format_value(metrics)}"])

    def overrides(self, values: dict[str, Any], seed: int) -> list[str]:
        """One trial's overrides for one seed."""
        return self.fixed_overrides() + trial_overrides(values, self.base_lists) + [f"train.seed={seed}"]

    def config(self, values: dict[str, Any], seed: int, progress: bool = False) -> Config:
        ov = self.overrides(values, seed)
        if progress:  # the best recipe: the base's progress bar back (trials run without one)
            ov = [o for o in ov if o != "log.progress=false"]
        return load_config(self.sweep.base, ov)

    def fingerprint(self) -> str:
        """What a study's trials depend on (a rerun with another one is refused): the resolved base recipe with
        the fixed overrides, the space, the seeds and the objective."""
        text = "\n".join([to_yaml(self.base_config) if self.base_config is not None else "",
                          repr(self.space), repr(self.seeds), repr(self.objective), repr(sorted(self.budget.items()))])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.sweep.description, "base": str(self.sweep.base),
                "overrides": self.sweep.overrides, "seeds": self.seeds,
                "space": [p.describe() for p in self.space.params], "objective": {
                    "metric": self.objective.metric, "key": self.objective.key, "every": self.objective.every,
                    "direction": self.objective.direction},
                "budget": self.budget, "trials": self.trials, "timeout_minutes": self.timeout_minutes,
                "sampler": {"name": self.sampler[0], **self.sampler[1]},
                "pruner": {"name": self.pruner[0], **self.pruner[1]}, "study": self.study,
                "fingerprint": self.fingerprint()}


def _named(value: Any, what: str, where: str, default: str) -> tuple[str, dict[str, Any]]:
    if value is None:
        return default, {}
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("name", default), str):
        opts = {k: v for k, v in value.items() if k != "name"}
        return str(value.get("name", default)), opts
    raise ConfigError(f"{where}: '{what}' must be a name or {{name: ..., option: value}}, got {value!r}")


def parse_objective(value: Any, where: str) -> Objective:
    every = 1
    if isinstance(value, dict):
        unknown = set(value) - {"metric", "every"}
        if unknown:
            raise ConfigError(f"{where}: objective has unknown key {sorted(unknown)[0]!r}; allowed: metric, every")
        every = value.get("every", 1)
        value = value.get("metric", "fid")
    if value is None:
        value = "fid"
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: objective must be a metric name such as fid, got {value!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"{where}: objective.every={every!r}: the epochs between in-training evaluations, a "
                          "positive integer")
    metric, _, leaf = value.partition("/")
    if metric not in METRICS:
        raise ConfigError(f"{where}: objective {value!r} is not a metric; choose one of "
                          f"{', '.join(sorted(set(OBJECTIVE_KEYS) | set(OBJECTIVE_LEAVES)))} (or metric/number, "
                          "e.g. pr/recall)")
    if leaf:
        if leaf not in OBJECTIVE_LEAVES.get(metric, ()):
            known = ", ".join(f"{metric}/{x}" for x in OBJECTIVE_LEAVES.get(metric, ())) or OBJECTIVE_KEYS.get(metric)
            raise ConfigError(f"{where}: objective {value!r}: {metric} has no number {leaf!r}; use {known}")
        key = value
    elif metric in OBJECTIVE_KEYS:
        key = OBJECTIVE_KEYS[metric]
    else:
        raise ConfigError(f"{where}: objective {value!r} has several numbers; name one: "
                          + ", ".join(f"{metric}/{x}" for x in OBJECTIVE_LEAVES.get(metric, ())))
    return Objective(metric, key, every)


def _budget(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in BUDGETS:
        raise ConfigError(f"{where}: budget must be one of {{steps: N}}, {{minutes: M}}, {{epochs: E}}, got {value!r}")
    (k, v), = value.items()
    ok = isinstance(v, int) if k != "minutes" else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or v <= 0:
        raise ConfigError(f"{where}: budget.{k}={v!r}: a positive {'number' if k == 'minutes' else 'integer'}")
    return {k: v}


def _study(value: Any, where: str) -> dict[str, int]:
    if value is None:
        return dict(STUDY_OPTIONS)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: study must be a mapping with keys {', '.join(STUDY_OPTIONS)}")
    unknown = set(value) - set(STUDY_OPTIONS)
    if unknown:
        raise ConfigError(f"{where}: study has unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(STUDY_OPTIONS)}")
    out = {**STUDY_OPTIONS, **value}
    for k, v in out.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "retries" else 1):
            raise ConfigError(f"{where}: study.{k}={v!r}: a {'non-negative' if k == 'retries' else 'positive'} "
                              "integer (seconds for the heartbeat and its grace)")
    if out["grace_seconds"] <= out["heartbeat_seconds"]:
        raise ConfigError(f"{where}: study.grace_seconds={out['grace_seconds']} must exceed heartbeat_seconds="
                          f"{out['heartbeat_seconds']} (a live worker would be taken for dead)")
    return out


def parse_search(data: Any, source: Path | None = None) -> Search:
    """A parsed YAML mapping -> a :class:`Search` (not yet checked against the recipe: :func:`validate`)."""
    where = f"search file {str(source)!r}" if source else "search"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with keys: {', '.join(SEARCH_KEYS)}")
    unknown = [k for k in data if k not in SEARCH_KEYS]
    if unknown:
        hint = " (a search names its values in 'space'; `genlab sweep` runs a grid)" if unknown[0] == "grid" else ""
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{hint}; allowed keys: "
                          + "; ".join(f"{k} ({v})" for k, v in SEARCH_KEYS.items()))
    objective = parse_objective(data.get("objective"), where)
    budget = _budget(data.get("budget"), where)
    owned = {"train.seed": "seeds", "eval.every": "objective.every",
             **{BUDGETS[k]: "budget" for k in budget}}
    shared = {k: data[k] for k in SHARED_KEYS if k in data}
    overrides = shared.get("overrides") or {}
    objective_options: dict[str, Any] = {}
    if isinstance(overrides, dict):  # objective options (objective.n_critic) are checked by the recipe check
        flat = _flatten(overrides)
        objective_options = {k: v for k, v in flat.items() if k.startswith("objective.")}
        shared["overrides"] = {k: v for k, v in flat.items() if k not in objective_options}
    sweep = parse_sweep(shared, source)
    sweep.overrides.update(objective_options)
    for k in sweep.overrides:
        if k in owned:
            raise ConfigError(f"{where}: {k!r} is set by the search's {owned[k]!r}; remove it from overrides")
    space = parse_space(data.get("space"), where, owned)
    both = sorted(set(space.keys) & set(sweep.overrides))
    if both:
        raise ConfigError(f"{where}: {both[0]!r} is both in overrides and in space; keep it in one")
    sampler = _named(data.get("sampler"), "sampler", where, "tpe")
    pruner = _named(data.get("pruner"), "pruner", where, "median")
    if sampler[0] == "grid" and not space.is_grid():
        raise ConfigError(f"{where}: sampler grid needs every space entry to be a list of choices without 'when'; "
                          "use tpe or random for ranges")
    trials = data.get("trials", space.size() if sampler[0] == "grid" else DEFAULT_TRIALS)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"{where}: trials={trials!r}: a positive number of trials")
    if sampler[0] == "grid" and trials > space.size():
        raise ConfigError(f"{where}: trials={trials} but the grid has {space.size()} points; a grid search runs each "
                          "once (more seeds: 'seeds')")
    timeout = data.get("timeout_minutes")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"{where}: timeout_minutes={timeout!r}: a positive number of minutes, or leave it out")
    search = Search(sweep=sweep, space=space, objective=objective, budget=budget, trials=trials,
                    timeout_minutes=None if timeout is None else float(timeout), sampler=sampler, pruner=pruner,
                    study=_study(data.get("study"), where), data=dict(data))
    make_sampler(sampler[0], sampler[1], space.grid() if space.is_grid() else None)  # names, options, values
    make_pruner(pruner[0], pruner[1])
    return search


def load_search(path: str | Path) -> Search:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"search file {str(path)!r} does not exist")
    from omegaconf import OmegaConf

    try:
        data = OmegaConf.to_container(OmegaConf.load(p))
    except Exception as e:
        raise ConfigError(f"search file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    return validate(parse_search(data, p))


def validate(search: Search) -> Search:
    """Build the configs at every end of every range (no training) and check the objective against each model:
    one ConfigError naming the key and value, or the search with its ``base_config`` set."""
    sw = search.sweep
    try:
        search.base_config = load_config(sw.base, sw.fixed_overrides())
    except GenlabError as e:
        raise ConfigError(f"search {search.name}: the base recipe with the overrides: {e}") from None
    known = set(known_keys())
    for key in search.space.keys:
        check_key(key, f"search {search.name}: space", known)
    from omegaconf import OmegaConf

    node = OmegaConf.structured(search.base_config)
    search.base_lists = {head: list(OmegaConf.select(node, head)) for head in list_keys(search.space, known)}
    for head, values in search.base_lists.items():
        n = len(values)
        for key in search.space.keys:
            if key.startswith(head + ".") and int(key.rsplit(".", 1)[1]) >= n:
                raise ConfigError(f"search {search.name}: space key {key!r}: {head} has {n} elements (indices 0.."
                                  f"{n - 1})")
    models: dict[str, Config] = {}
    for point in search.space.corner_points():
        try:
            cfg = search.config(point, search.seeds[0])
        except GenlabError as e:
            shown = ", ".join(f"{k}={format_value(v)}" for k, v in point.items())
            raise ConfigError(f"search {search.name}: the trial {shown} would be refused: {e}") from None
        models.setdefault(cfg.model.name, cfg)
    for cfg in models.values():
        check_objective(search.objective, cfg)
    return search


def check_objective(objective: Objective, cfg: Config) -> None:
    """ConfigError when the model cannot have the objective's metric (rFID without an encoder, a conditional
    metric of an unconditional model, a classifier-head metric with head-less features)."""
    needs = needed_inputs([objective.metric])
    spec = MODELS.get(cfg.model.name)
    if needs & set(RECONSTRUCTION_INPUTS) and "E" not in build_networks(cfg, cfg.model.num_classes or 10):
        raise ConfigError(f"objective {objective.key} needs a model with an encoder (vae, conv-vae, vae-gan, "
                          f"cvae-gan) but {cfg.model.name} has none; optimise fid (or kid, is, ...) instead")
    if "generated_labels" in needs and not spec.conditioning.conditional:
        raise ConfigError(f"objective {objective.key} measures whether images show the class they were asked for, "
                          f"but {cfg.model.name} is unconditional; optimise fid instead, or search a "
                          "class-conditional model (cgan, acgan)")
    if objective.metric in NEEDS_CLASSIFIER_HEAD and str(cfg.eval.features).startswith("dinov2"):
        raise ConfigError(f"objective {objective.key} needs features with a classifier head; eval.features="
                          f"{cfg.eval.features} has none: use eval.features=classifier or inception")
