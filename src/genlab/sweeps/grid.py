"""Sweep files -> a validated plan of runs: every grid cell x seed is its own run folder.

A sweep file (YAML)::

    base: configs/fashion_mnist_mlp_gan.yaml     # the recipe every run starts from
    overrides: {data.name: mnist, train.epochs: 20}   # fixed for every run
    grid: {model.latent_dim: [16, 100], model.hidden_dim: [16, 100]}
    seeds: 5                                     # 0..4, or an explicit list [2022, 2023]

Runs land in ``OUT/<cell>/seed=<s>``, with ``<cell>`` like ``latent_dim=16,hidden_dim=100``; a value that does
not spell itself in a folder name (``"a b"``, ``"a/b"``, ``[16,32]``) gets a short hash of itself
(``name=a-b~3c9f2e``), so two cells never share a folder. Every run's
config is built with ``genlab.recipe.load_config`` before anything starts, so a typo fails the whole sweep
up front with the key named.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.config import Config, known_keys
from genlab.deletion import refuse_protected
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.io import atomic_write_text
from genlab.recipe import load_config
from genlab.recipe_files import shipped_path
from genlab.rundir import SWEEP_MANIFEST as MANIFEST

SWEEP_KEYS = {
    "base": "the recipe YAML every run starts from (required)",
    "overrides": "dotted config keys fixed for every run, e.g. {train.epochs: 20}",
    "grid": "dotted config keys -> lists of values; every combination is a cell",
    "seeds": "number of seeds per cell (0..N-1) or a list of seeds (default 1)",
    "name": "a short name (defaults to the sweep file's name)",
    "description": "one line: what the sweep compares",
}
#: keys the sweep sets itself (from ``seeds``); each run also gets log.progress=false (it writes to a log file)
SWEEP_OWNED = ("train.seed",)


@dataclass(frozen=True)
class Cell:
    values: tuple[tuple[str, Any], ...]  # (dotted key, value) in grid order
    name: str  # folder name, e.g. "latent_dim=16,hidden_dim=100"

    def overrides(self) -> list[str]:
        return [f"{k}={format_value(v)}" for k, v in self.values]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass(frozen=True)
class PlannedRun:
    cell: Cell
    seed: int
    path: Path
    overrides: tuple[str, ...]  # everything after the base recipe, in order

    @property
    def name(self) -> str:
        return f"{self.cell.name}/seed={self.seed}"


@dataclass
class Sweep:
    base: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    name: str = ""
    description: str = ""
    source: Path | None = None

    def cells(self) -> list[Cell]:
        keys = list(self.grid)
        short = _short_names(keys)
        if not keys:
            return [Cell(values=(), name="base")]
        out = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            values = tuple(zip(keys, combo))
            name = ",".join(f"{short[k]}={_slug(v)}" for k, v in values)
            if len(name) > MAX_CELL_NAME:
                name = f"{name[:MAX_CELL_NAME - 7]}~{_hash(name)}"
            out.append(Cell(values=values, name=name))
        names = [c.name for c in out]
        if len(set(names)) != len(names):  # a hash collision: never two cells in one folder
            twice = next(n for n in names if names.count(n) > 1)
            raise ConfigError(f"two grid cells would share the run folder {twice!r}; change one of their values")
        return out

    def fixed_overrides(self) -> list[str]:
        return [f"{k}={format_value(v)}" for k, v in self.overrides.items()] + ["log.progress=false"]

    def plan(self, out: str | Path) -> list[PlannedRun]:
        out = Path(out).absolute()
        runs = []
        for cell in self.cells():
            for seed in self.seeds:
                ov = tuple(self.fixed_overrides() + cell.overrides() + [f"train.seed={seed}"])
                runs.append(PlannedRun(cell=cell, seed=seed, path=out / cell.name / f"seed={seed}", overrides=ov))
        return runs

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "base": str(self.base),
                "overrides": self.overrides, "grid": self.grid, "seeds": self.seeds}


def format_value(v: Any) -> str:
    """A YAML value as it must appear on the right of ``key=value`` in an override."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(format_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{format_value(x)}" for k, x in v.items()) + "}"
    return str(v)


#: a cell name longer than this is cut and given a hash of the whole name (folder names end at 255 bytes)
MAX_CELL_NAME = 160


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _slug(v: Any) -> str:
    """A value as a folder-name part: itself when it spells itself safely, else its readable part and a short
    hash of the value (``a b`` and ``a/b`` would both read ``a-b``), so the names stay a pure function of
    the value and distinct values never share a folder."""
    s = format_value(v)
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "-", s).strip("-")
    return slug if slug == s and slug not in (".", "..") else f"{slug[:40] or 'x'}~{_hash(s)}"


def _short_names(keys: list[str]) -> dict[str, str]:
    """Last dotted component unless two keys share it (then the whole key)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{model: {latent_dim: 4}} and {model.latent_dim: 4} both -> {"model.latent_dim": 4}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):  # no config value is itself a mapping
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _resolve_base(base: str, sweep_file: Path | None) -> Path:
    p = Path(base).expanduser()
    # relative: from the working directory, else from the sweep file's folder or any folder above it (so
    # "configs/x.yaml" in configs/sweeps/s.yaml works from anywhere in the repository)
    above = [d / p for d in [sweep_file.parent.absolute(), *sweep_file.parent.absolute().parents]] if sweep_file else []
    candidates = [p] if p.is_absolute() else [Path.cwd() / p] + above
    candidates.append(shipped_path(base) or p)  # last: a recipe that ships with genlab, by name or configs/ path
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigError(f"sweep base recipe {base!r} does not exist (looked from {Path.cwd()}"
                      + (f" and from {sweep_file.parent} upwards)" if sweep_file else ")"))


def parse_sweep(data: Any, source: Path | None = None) -> Sweep:
    """A parsed YAML mapping -> a :class:`Sweep`; every problem is a ConfigError naming the key."""
    where = f"sweep file {str(source)!r}" if source else "sweep"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with keys: {', '.join(SWEEP_KEYS)}")
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys: "
                          + "; ".join(f"{k} ({v})" for k, v in SWEEP_KEYS.items()))
    if not data.get("base"):
        raise ConfigError(f"{where}: 'base' is required: the recipe YAML every run starts from")
    overrides = data.get("overrides") or {}
    if isinstance(overrides, list):  # also accept ["key=value", ...]
        pairs = {}
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"{where}: override {item!r} must look like key=value")
            k, _, v = item.partition("=")
            from omegaconf import OmegaConf

            pairs[k.strip()] = OmegaConf.from_dotlist([f"x={v}"]).x
        overrides = pairs
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: 'overrides' must map dotted keys to values, e.g. {{train.epochs: 20}}")
    overrides = _flatten(overrides)
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{where}: 'grid' must map dotted keys to lists of values, e.g. "
                          "{model.latent_dim: [16, 100]}")
    grid = _flatten(grid)
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where}: grid.{k} must be a non-empty list of values, got {v!r}")
        if len({format_value(x) for x in v}) != len(v):
            raise ConfigError(f"{where}: grid.{k} repeats a value: {v}")
    both = sorted(set(grid) & set(overrides))
    if both:
        raise ConfigError(f"{where}: {both[0]!r} is both in overrides and in grid; keep it in one")
    for k in SWEEP_OWNED:
        if k in grid or k in overrides:
            raise ConfigError(f"{where}: {k!r} is set by 'seeds'; remove it from overrides/grid")
    seeds = data.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise ConfigError(f"{where}: 'seeds' must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"{where}: seeds={seeds}: at least one seed per cell")
        seeds = list(range(seeds))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: 'seeds' must be distinct non-negative integers, got {seeds!r}")
    known = set(known_keys())
    for section, keys in (("overrides", overrides), ("grid", grid)):
        for k in keys:
            if k not in known and not k.startswith("objective."):  # objective options: checked per model (plan)
                close = [x for x in known if x.rsplit(".", 1)[-1] == k.rsplit(".", 1)[-1]]
                hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
                raise ConfigError(f"{where}: {section} key {k!r} is not a config key{hint}; "
                                  "see `genlab train --help` and genlab/config.py")
    name = str(data.get("name") or (source.stem if source else "sweep"))
    return Sweep(base=_resolve_base(str(data["base"]), source), overrides=overrides, grid=grid, seeds=list(seeds),
                 name=name, description=str(data.get("description") or ""), source=source)


def load_sweep(path: str | Path) -> Sweep:
    p = Path(path)
    if not p.exists():  # a sweep that ships with genlab: sweeps/NAME or configs/sweeps/NAME.yaml
        p = shipped_path(str(path)) or p
    if not p.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist (shipped sweeps: `genlab recipes list`)")
    from omegaconf import OmegaConf

    try:
        data = OmegaConf.to_container(OmegaConf.load(p))
    except Exception as e:
        raise ConfigError(f"sweep file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    return parse_sweep(data, p)


def validate_plan(sweep: Sweep, runs: list[PlannedRun]) -> dict[str, Config]:
    """Build every run's config (no training): run name -> Config, or one ConfigError naming the cell."""
    configs = {}
    for r in runs:
        try:
            configs[r.name] = load_config(sweep.base, list(r.overrides))
        except GenlabError as e:
            raise ConfigError(f"sweep cell {r.cell.name} (seed {r.seed}): {e}") from None
    return configs


def check_sweep_folder(out: str | Path) -> None:
    """RunError of one line unless ``out`` may receive a sweep: a new or empty folder, or a sweep folder (its
    sweep.json); a folder of other files is refused (its results.csv, logs/, ... would be replaced)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {str(out)!r} is a file; give a folder for the sweep, e.g. sweeps/NAME")
    refuse_protected(out, "write a sweep into")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise RunError(f"--out {str(out)!r} holds files and is not a sweep folder (no {MANIFEST}); give a new or "
                       "empty folder, e.g. sweeps/NAME")


def write_manifest(sweep: Sweep, runs: list[PlannedRun], out: str | Path) -> Path:
    """OUT/sweep.json: the sweep and its runs; reports and result tables read it."""
    out = Path(out)
    manifest = {**sweep.to_dict(), "genlab_version": __version__, "keys": list(sweep.grid),
                "runs": [{"cell": r.cell.name, "values": r.cell.as_dict(), "seed": r.seed,
                          "path": str(r.path.relative_to(out.absolute()))} for r in runs]}
    return atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
