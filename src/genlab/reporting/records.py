"""A run's numbers, read from its folder through RunDir: training and evaluation records (metrics.jsonl), the
last evaluation (eval.json, else the last evaluation record) and the final training losses.

Figures, the HTML report and sweep tables all read runs through these functions; nothing here loads a model.
Every evaluation comes with its protocol (``genlab.evaluation.protocol_id``: extractor and hash, sample counts,
reference): numbers of different protocols are not comparable, so callers group by it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genlab.evaluation import describe_protocol, protocol_id
from genlab.reporting.metric_names import NON_METRIC_KEYS, flatten, is_score
from genlab.rundir import RunDir


@dataclass
class Records:
    train: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)


def read_records(run_dir: str | Path | RunDir) -> Records:
    """metrics.jsonl -> training records and evaluation records (``"kind": "eval"``); torn lines are skipped."""
    out = Records()
    for rec in RunDir.of(run_dir).read_records():
        if not isinstance(rec, dict):
            continue
        kind = rec.get("kind", "train")
        if kind == "eval":
            out.eval.append(flatten(rec))
        elif kind == "train":
            out.train.append(rec)
    return out


def numeric_keys(records: Sequence[dict]) -> list[str]:
    """Keys holding numbers in any record, first-seen order, without step/epoch/time/lr bookkeeping."""
    seen: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k in NON_METRIC_KEYS or k.startswith(("time/", "lr/")):
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                seen.setdefault(k, None)
    return list(seen)


def eval_metrics(run_dir: str | Path | RunDir) -> list[str]:
    """The scores the run's evaluation records hold (FID, KID mean, IS mean, precision, ...)."""
    return [k for k in numeric_keys(read_records(run_dir).eval) if is_score(k)]


def metric_series(run_dir: str | Path | RunDir, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of ``metric`` over the run's evaluation records (empty arrays when never evaluated)."""
    pts = [(float(r.get("epoch", np.nan)), float(r[metric])) for r in read_records(run_dir).eval
           if isinstance(r.get(metric), (int, float)) and math.isfinite(float(r[metric]))]
    pts.sort()
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def metric_series_by_protocol(run_dir: str | Path | RunDir,
                              metric: str) -> list[tuple[dict | None, np.ndarray, np.ndarray]]:
    """``metric_series`` split by evaluation protocol: [(protocol id, epochs, values)], first-seen order (a run
    resumed with another eval.num_samples has two)."""
    groups: list[tuple[dict | None, list]] = []
    for r in read_records(run_dir).eval:
        v = r.get(metric)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(float(v)):
            continue
        pid = r.get("protocol") if isinstance(r.get("protocol"), dict) else None
        for g, pts in groups:
            if g == pid:
                pts.append((float(r.get("epoch", np.nan)), float(v)))
                break
        else:
            groups.append((pid, [(float(r.get("epoch", np.nan)), float(v))]))
    return [(pid, np.array([p[0] for p in sorted(pts)]), np.array([p[1] for p in sorted(pts)]))
            for pid, pts in groups]


@dataclass
class Evaluation:
    """A run's last evaluation: its numbers, where they came from ("eval.json", "metrics.jsonl" or "") and its
    protocol (``protocol_id``; None when not recorded)."""

    metrics: dict[str, float]
    source: str
    protocol: dict | None
    #: bootstrap intervals of the evaluation (metric ``ci95``): {"fid": (low, high), "kid/mean": (low, high)}
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


#: where a run's numbers keep the ``ci95`` metric's intervals: metric -> (low key, high key), flattened
INTERVAL_KEYS = {"fid": ("ci95/fid_low", "ci95/fid_high"), "kid/mean": ("ci95/kid_low", "ci95/kid_high"),
                 "fd_dinov2": ("ci95/fd_dinov2_low", "ci95/fd_dinov2_high"),
                 "cmmd": ("ci95/cmmd_low", "ci95/cmmd_high")}


def intervals_of(flat: dict) -> dict[str, tuple[float, float]]:
    """The (low, high) bootstrap intervals a flattened result holds (``INTERVAL_KEYS``)."""
    out = {}
    for metric, (lo, hi) in INTERVAL_KEYS.items():
        a, b = flat.get(lo), flat.get(hi)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
                and not isinstance(b, bool) and math.isfinite(float(a)) and math.isfinite(float(b)):
            out[metric] = (float(a), float(b))
    return out


def run_evaluation(run_dir: str | Path | RunDir) -> Evaluation:
    """The numbers of eval.json (with its protocol), else of the last evaluation record of metrics.jsonl."""
    data = RunDir.of(run_dir).read_eval()
    if data is not None:
        vals = {k: float(v) for k, v in (flatten(data) if isinstance(data, dict) else {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and is_score(k) and math.isfinite(float(v))}
        if vals:
            return Evaluation(vals, "eval.json", protocol_id(data.get("protocol")), intervals_of(flatten(data)))
    evals = read_records(run_dir).eval
    if evals:
        last = evals[-1]
        pid = last.get("protocol") if isinstance(last.get("protocol"), dict) else None
        return Evaluation({k: float(last[k]) for k in numeric_keys([last]) if is_score(k)}, "metrics.jsonl", pid,
                          intervals_of(last))
    return Evaluation({}, "", None)


class Protocols:
    """The distinct protocols of a set of evaluations, numbered P1, P2, ... in first-seen order."""

    def __init__(self, pids=()):
        self.ids: list[dict | None] = []
        for pid in pids:
            self.index(pid)

    def index(self, pid: dict | None) -> int:
        if pid not in self.ids:
            self.ids.append(pid)
        return self.ids.index(pid)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def mixed(self) -> bool:
        return len(self.ids) > 1

    @staticmethod
    def tag(i: int) -> str:
        return f"P{i + 1}"

    def legend(self) -> list[str]:
        """``P1 = classifier 3f2a..., 128 generated vs 64 reference, ...`` per protocol."""
        return [f"{self.tag(i)} = {describe_protocol(pid)}" for i, pid in enumerate(self.ids)]

    def warning(self) -> str:
        """The line said wherever numbers of several protocols are shown ("" for one protocol)."""
        if not self.mixed:
            return ""
        return (f"these runs were evaluated under {len(self.ids)} different protocols: {'; '.join(self.legend())}; "
                "their numbers are not comparable: each is compared and ranked only within its own protocol")


def final_losses(run_dir: str | Path | RunDir) -> dict[str, float]:
    """Training losses averaged over the records of the last epoch (a steadier figure than the last record)."""
    train = read_records(run_dir).train
    if not train:
        return {}
    last_epoch = max(int(r.get("epoch", 0)) for r in train)
    recs = [r for r in train if int(r.get("epoch", 0)) == last_epoch]
    keys = [k for k in numeric_keys(recs) if k.startswith("loss")]
    return {k: float(np.mean([r[k] for r in recs if isinstance(r.get(k), (int, float))])) for k in keys}
