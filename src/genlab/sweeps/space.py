"""A search space: dotted config keys -> ranges or lists of choices, read from a search file's ``space:``.

    space:
      train.g_opt.lr: {low: 1.0e-4, high: 3.0e-3, log: true}    # a float range (log scale)
      model.hidden_dim: {low: 16, high: 64, step: 16}            # an int range (both ends integers)
      train.loss: [hinge, bce]                                  # choices, as in a sweep's grid
      train.g_opt.betas.0: {low: 0.0, high: 0.9}                # one element of a list-valued key
      objective.n_critic: {low: 1, high: 5, when: {model.name: wgan-gp}}   # only when an earlier key has that value

A list is a categorical choice, exactly as in a sweep's ``grid:``, so a grid written for `genlab sweep` is a space
for `genlab search` (and with ``sampler: grid`` the same study). Every problem is a ConfigError naming the key,
before anything trains. Optuna is imported only by :meth:`Param.distribution` and :meth:`Param.suggest`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.config import known_keys
from genlab.errors import ConfigError
from genlab.sweeps.grid import format_value

#: the keys of a range entry, each documented where a user reads it (the error for an unknown one lists them)
RANGE_KEYS = {
    "low": "the smallest value (included)",
    "high": "the largest value (included)",
    "log": "sample on a log scale (needs low > 0); default false",
    "step": "only values low, low + step, ... (not with log)",
    "type": "float | int (default: int when low and high are both integers)",
    "choices": "a list of values instead of a range (the long form of a list entry)",
    "when": "{earlier space key: value or [values]}: the key is searched only in trials where that holds",
}
#: a scalar a categorical choice may hold as it is (Optuna's own rule); other choices (lists) travel as text
PLAIN = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Param:
    key: str  # a dotted config key, or "<list key>.<index>" for one element of a list-valued key
    kind: str  # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()  # as Optuna sees them: plain scalars, lists as their override text
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (earlier space key, values it must have)

    def distribution(self):
        """The Optuna distribution of this parameter (what a study records for it)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def suggest(self, trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        assert self.low is not None and self.high is not None  # a range: checked when the file was read
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=self.log, step=self.step)

    def corners(self) -> list[Any]:
        """The values a check before any training tries: every choice, or both ends of the range."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]

    def active(self, values: dict[str, Any]) -> bool:
        """Whether this key is searched in a trial whose earlier keys took ``values``."""
        return all(values.get(k, _ABSENT) in allowed for k, allowed in self.when)

    def describe(self) -> str:
        cond = "".join(f" when {k} in {list(v)}" for k, v in self.when)
        if self.kind == "categorical":
            return f"{self.key}: one of {list(self.choices)}{cond}"
        scale = ", log scale" if self.log else (f", step {self.step}" if self.step else "")
        return f"{self.key}: {self.kind} in [{self.low}, {self.high}]{scale}{cond}"


_ABSENT = object()


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...] = field(default_factory=tuple)

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def suggest(self, trial) -> dict[str, Any]:
        """One trial's values, in space order; a conditional key whose condition fails is left out."""
        values: dict[str, Any] = {}
        for p in self.params:
            if p.active(values):
                values[p.key] = p.suggest(trial)
        return values

    def is_grid(self) -> bool:
        return all(p.kind == "categorical" and not p.when for p in self.params)

    def grid(self) -> dict[str, list[Any]]:
        """{key: choices} for Optuna's GridSampler (every key categorical and unconditional)."""
        return {p.key: list(p.choices) for p in self.params}

    def size(self) -> int:
        n = 1
        for p in self.params:
            n *= len(p.choices)
        return n

    def corner_points(self) -> list[dict[str, Any]]:
        """Points that together try every parameter's every corner once, each with its condition made true and
        the others at their first corner: what the check before any training builds configs for."""
        first = {p.key: p.corners()[0] for p in self.params}
        points = []
        for p in self.params:
            for value in p.corners():
                point = dict(first)
                for k, allowed in p.when:
                    point[k] = allowed[0]
                point[p.key] = value
                points.append({q.key: point[q.key] for q in self.params if q.active(point)})
        return points


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _list_element(key: str, known: set[str]) -> tuple[str, int] | None:
    """``train.g_opt.betas.0`` -> ("train.g_opt.betas", 0) when the part before the index is a config key."""
    head, _, tail = key.rpartition(".")
    return (head, int(tail)) if tail.isdigit() and head in known else None


def check_key(key: str, where: str, known: set[str]) -> None:
    """A space or override key must be a config key, an element of a list-valued one, or an objective option
    (``objective.*``: the recipe check names the options of the model's objective)."""
    if key in known or key.startswith("objective.") or _list_element(key, known):
        return
    close = sorted(x for x in known if x.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1])
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"{where}: {key!r} is not a config key{hint}; see `genlab train --help` and genlab/config.py")


def _choices(key: str, values: list, where: str) -> tuple[Any, ...]:
    if not values:
        raise ConfigError(f"{where}: space.{key} is an empty list of choices; give at least one value")
    shown = [v if isinstance(v, PLAIN) else format_value(v) for v in values]
    if len({format_value(v) for v in values}) != len(values):
        raise ConfigError(f"{where}: space.{key} repeats a choice: {values}")
    return tuple(shown)


def _range(key: str, spec: dict, where: str) -> Param:
    unknown = [k for k in spec if k not in RANGE_KEYS]
    if unknown:
        raise ConfigError(f"{where}: space.{key} has unknown option {unknown[0]!r}; allowed: "
                          + "; ".join(f"{k} ({v})" for k, v in RANGE_KEYS.items()))
    if "choices" in spec:
        if set(spec) - {"choices", "when"}:
            raise ConfigError(f"{where}: space.{key} gives choices and a range; keep one")
        if not isinstance(spec["choices"], list):
            raise ConfigError(f"{where}: space.{key}.choices must be a list of values")
        return Param(key, "categorical", choices=_choices(key, spec["choices"], where))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: space.{key} needs low and high (a range) or a list of choices")
    low, high = spec["low"], spec["high"]
    if not (_is_number(low) and _is_number(high)):
        raise ConfigError(f"{where}: space.{key}: low and high must be numbers, got {low!r} and {high!r}")
    kind = spec.get("type") or ("int" if isinstance(low, int) and isinstance(high, int) else "float")
    if kind not in ("int", "float"):
        raise ConfigError(f"{where}: space.{key}.type {kind!r}: use float or int (or a list of choices)")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"{where}: space.{key} is an int range but low={low}, high={high} are not integers")
    if not low < high:
        raise ConfigError(f"{where}: space.{key} is an empty range: low={low} is not below high={high}"
                          + ("; a single value belongs in overrides" if low == high else ""))
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: space.{key}.log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: space.{key}: a log scale needs low > 0, got low={low}; use a positive low "
                          "or log: false")
    step = spec.get("step")
    if step is not None:
        if log:
            raise ConfigError(f"{where}: space.{key}: step and log cannot be combined; drop one")
        if not _is_number(step) or step <= 0 or (kind == "int" and not float(step).is_integer()):
            raise ConfigError(f"{where}: space.{key}.step must be a positive {kind}, got {step!r}")
    cast = int if kind == "int" else float
    return Param(key, kind, low=cast(low), high=cast(high), log=log,
                 step=None if step is None else cast(step))


def _when(key: str, spec: Any, earlier: dict[str, Param], where: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{where}: space.{key}.when must map an earlier space key to a value or a list of values, "
                          "e.g. {model.name: wgan-gp}")
    out = []
    for k, v in spec.items():
        if k not in earlier:
            raise ConfigError(f"{where}: space.{key}.when names {k!r}, which is not a space key above it; a "
                              "condition reads a key searched earlier in the space")
        allowed = tuple(x if isinstance(x, PLAIN) else format_value(x) for x in (v if isinstance(v, list) else [v]))
        cond = earlier[k]
        if cond.kind == "categorical" and not set(allowed) & set(cond.choices):
            raise ConfigError(f"{where}: space.{key}.when {k} in {list(allowed)} can never hold: {k}'s choices "
                              f"are {list(cond.choices)}")
        out.append((k, allowed))
    return tuple(out)


def parse_space(data: Any, where: str, owned: dict[str, str]) -> Space:
    """The ``space:`` mapping (nested or dotted keys) -> a :class:`Space`; ``owned``: keys the search sets itself
    (key -> which search-file key sets it)."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: 'space' must map dotted config keys to ranges or lists of choices, e.g. "
                          "{train.g_opt.lr: {low: 1.0e-4, high: 1.0e-3, log: true}}")
    joined: dict[str, Any] = {}

    def walk(d: dict, prefix: str) -> None:  # nested or dotted keys; a range (a mapping too) ends the walk
        for k, v in d.items():
            if isinstance(v, dict) and v and not set(v) & set(RANGE_KEYS):
                walk(v, f"{prefix}{k}.")
            else:
                joined[f"{prefix}{k}"] = v

    walk(data, "")
    known = set(known_keys())
    params: dict[str, Param] = {}
    for key, spec in joined.items():
        check_key(key, f"{where}: space", known)
        if key in owned:
            raise ConfigError(f"{where}: {key!r} is set by the search's {owned[key]!r}; remove it from the space")
        if isinstance(spec, list):
            p = Param(key, "categorical", choices=_choices(key, spec, where))
        elif isinstance(spec, dict):
            p = _range(key, spec, where)
            if "when" in spec:
                p = Param(p.key, p.kind, p.low, p.high, p.log, p.step, p.choices, _when(key, spec["when"], params,
                                                                                        where))
        else:
            raise ConfigError(f"{where}: space.{key} = {spec!r}: give a list of choices or a range {{low, high}}; "
                              "a fixed value belongs in overrides")
        params[key] = p
    return Space(tuple(params.values()))


def trial_overrides(values: dict[str, Any], base_lists: dict[str, list]) -> list[str]:
    """A trial's values -> ``key=value`` overrides; elements of a list-valued key (``betas.0``) are folded into
    one override of the whole list, starting from its value in the base recipe (``base_lists``)."""
    out: list[str] = []
    lists: dict[str, list] = {}
    known = set(base_lists)
    for key, v in values.items():
        element = _list_element(key, known)
        if element is not None:
            head, i = element
            lists.setdefault(head, list(base_lists[head]))[i] = v
        else:
            out.append(f"{key}={override_text(v)}")
    return out + [f"{k}={format_value(v)}" for k, v in lists.items()]


def override_text(v: Any) -> str:
    """``format_value``, with a string that an override would read as something else ("" as null, "true" as a
    bool, "1e-3" as a float) quoted, so a choice reaches the config as the text it is."""
    text = format_value(v)
    if not isinstance(v, str):
        return text
    from omegaconf import OmegaConf

    try:
        same = OmegaConf.from_dotlist([f"x={text}"]).x == v
    except Exception:  # not even parseable: quoted below
        same = False
    return text if same and text else "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_keys(space: Space, known: set[str]) -> set[str]:
    """The list-valued config keys whose elements the space searches."""
    return {e[0] for e in (_list_element(k, known) for k in space.keys) if e is not None}
