"""A search folder's table: one row per trial of its study (parameters, objective with its spread over seeds,
state, minutes) -> trials.csv and trials.md. Rows are Optuna ``FrozenTrial``s; nothing here imports Optuna.

``genlab.sweeps.search`` writes the files after every trial; the HTML report (``search_report``) shows the same
rows next to Optuna's figures.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.config import short_keys
from genlab.errors import GenlabError
from genlab.io import atomic_write_text
from genlab.reporting.metric_names import pretty

SEARCH_FILE = "search.yaml"  # the search file as run (workers started elsewhere read it)
SEARCH_MANIFEST = "search.json"  # what was searched, the storage and the study's name
TRIALS_CSV, TRIALS_MD = "trials.csv", "trials.md"
#: Optuna's trial states as the table names them
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting",
          "SURPLUS": "not run"}  # SURPLUS: a FAIL trial marked "surplus", one too many after two workers' race


def state_name(t: Any) -> str:
    """A trial's state as the table names it."""
    if t.state.name == "FAIL" and t.user_attrs.get("surplus"):
        return STATES["SURPLUS"]
    return STATES.get(t.state.name, t.state.name.lower())


def trial_folder(root: int) -> str:
    """A trial's run folders (one per seed) inside the search folder, by the first trial of its retry chain."""
    return f"trials/{root:04d}"


def is_search_dir(path: str | Path) -> bool:
    return (Path(path) / SEARCH_MANIFEST).is_file()


def read_search_manifest(out: str | Path) -> dict | None:
    p = Path(out) / SEARCH_MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise GenlabError(f"{p} is not valid JSON ({e}); run the search again to rewrite it") from None


@dataclass
class TrialRow:
    number: int
    state: str  # complete | pruned | failed | running | waiting | not run
    params: dict[str, Any]
    value: float | None  # the objective: mean over seeds (complete trials)
    seed_values: list[float] = field(default_factory=list)
    minutes: float | None = None
    folder: str = ""
    retry_of: int | None = None
    note: str = ""  # why it was pruned or failed

    @property
    def spread(self) -> str:
        v = self.seed_values
        if len(v) < 2:
            return ""
        return f"{statistics.fmean(v):.4g} ± {statistics.stdev(v):.2g} ({len(v)} seeds)"


def rows(trials: Sequence[Any]) -> list[TrialRow]:
    out = []
    for t in sorted(trials, key=lambda t: t.number):
        ua, sa = t.user_attrs, t.system_attrs
        minutes = ((t.datetime_complete - t.datetime_start).total_seconds() / 60
                   if t.datetime_complete is not None and t.datetime_start is not None else None)
        history = sa.get("retry_history") or []
        out.append(TrialRow(
            number=t.number, state=state_name(t), params=dict(t.params),
            value=t.value if t.state.name == "COMPLETE" else None, seed_values=list(ua.get("seed_values") or []),
            minutes=minutes, folder=str(ua.get("folder") or ""), retry_of=int(history[-1]) if history else None,
            # a waiting retry carries its dead trial's notes until it runs: they are not its own
            note="" if t.state.name == "WAITING" else str(ua.get("pruned_at_epoch") or ua.get("error") or "")))
    return out


def best_row(table: Sequence[TrialRow], direction: str) -> TrialRow | None:
    done = [r for r in table if r.value is not None and math.isfinite(r.value)]
    if not done:
        return None
    return (max if direction == "maximize" else min)(done, key=lambda r: float(r.value or 0.0))


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def to_markdown(table: Sequence[TrialRow], key: str, direction: str, keys: Sequence[str], title: str = "") -> str:
    best = best_row(table, direction)
    counts = {s: sum(r.state == s for r in table) for s in STATES.values()}
    lines = [f"## {title}", ""] if title else []
    lines += [", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no trial yet", ""]
    arrow = "↑" if direction == "maximize" else "↓"
    names = short_keys(list(keys))
    head = ["trial", "state"] + [names[k] for k in keys] + \
        [f"{pretty(key)} {arrow}", "over seeds", "minutes", "note"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        mark = " ★" if best is not None and r.number == best.number else ""
        retry = f" (retry of {r.retry_of})" if r.retry_of is not None else ""
        lines.append("| " + " | ".join([f"{r.number}{mark}", r.state + retry]
                                       + [_value(r.params.get(k)) for k in keys]
                                       + [_value(r.value), r.spread, "" if r.minutes is None else f"{r.minutes:.2f}",
                                          r.note.replace("|", "/")])
                     + " |")
    if best is not None:
        lines += ["", f"★ best: trial {best.number}, {pretty(key)} {best.value:.4g}; its recipe: best.yaml"]
    return "\n".join(lines) + "\n"


def to_csv(table: Sequence[TrialRow], key: str, keys: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["trial", "state", "retry_of", *keys, key, "seed_values", "minutes", "folder", "note"])
    for r in table:
        w.writerow([r.number, r.state, "" if r.retry_of is None else r.retry_of,
                    *[r.params.get(k, "") for k in keys], "" if r.value is None else repr(r.value),
                    ";".join(repr(v) for v in r.seed_values), "" if r.minutes is None else f"{r.minutes:.3f}",
                    r.folder, r.note])
    return buf.getvalue()


def write_table(out: str | Path, trials: Sequence[Any], key: str, direction: str, keys: Sequence[str]
                ) -> dict[str, Path]:
    """OUT/trials.csv and OUT/trials.md from the study's trials."""
    out = Path(out)
    table = rows(trials)
    return {"csv": atomic_write_text(out / TRIALS_CSV, to_csv(table, key, keys)),
            "md": atomic_write_text(out / TRIALS_MD, to_markdown(table, key, direction, keys, out.name))}
