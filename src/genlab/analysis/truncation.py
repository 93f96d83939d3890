"""The quality-diversity curve: FID, precision and recall of one checkpoint against the truncation psi.

Smaller psi keeps the latents nearer the prior's centre (``genlab.sampling.Truncation``): images move towards
the model's most typical ones, so precision (realism) tends to rise while recall (diversity) falls; FID is
usually best near psi = 1 (no effective truncation). Each psi is one ``evaluate_loaded`` call with the same
seed, sample count, extractor and reference (whose statistics are computed once and cached), so the points
differ only in psi. ``genlab eval RUN --truncation-sweep 0.5,0.7,1.0,1.5`` writes RUN/analysis/truncation.json
(these numbers) and truncation.png; the report redraws the curve from the JSON.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from genlab.errors import ConfigError
from genlab.evaluation import EvalRequest, evaluate_loaded, protocol_id
from genlab.sampling import LoadedRun, Truncation

#: the metrics every point of the curve holds
SWEEP_METRICS = ("fid", "pr")
#: generated images per point when no request says otherwise (`genlab eval` passes the protocol's)
SWEEP_SAMPLES = 2000
#: the columns of each point, in table order
COLUMNS = ("psi", "fid", "precision", "recall", "density", "coverage")


def parse_psis(text: str | Sequence[float]) -> list[float]:
    """``"0.5,0.7,1.0"`` (or a sequence) -> sorted distinct positive psis; ConfigError names a bad entry."""
    items = [t.strip() for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            psi = float(item)
        except ValueError:
            raise ConfigError(f"--truncation-sweep {text!r}: {item!r} is not a number; give psis such as "
                              "0.5,0.7,1.0,1.5") from None
        Truncation(psi)  # checks psi > 0
        out.append(psi)
    if not out:
        raise ConfigError("--truncation-sweep needs at least one psi, e.g. 0.5,0.7,1.0,1.5")
    return sorted(set(out))


def truncation_sweep(run: LoadedRun, psis: Sequence[float], *, mode: str = "resample",
                     request: EvalRequest | None = None,
                     on_point: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """{"mode", "num_samples", "seed", "split", "extractor", "extractor_hash", "protocol", "points": [...]}: one
    point per psi (ascending) with the ``COLUMNS``, each measured as ``request`` asks (default: 2000 images;
    its metrics and truncation are the sweep's). ``on_point`` is called after each (progress)."""
    values = parse_psis(psis)
    req = request if request is not None else EvalRequest(num_samples=SWEEP_SAMPLES)
    req = req.pinned(run, metrics=SWEEP_METRICS)
    ext = req.features
    points, protocol, k = [], None, None
    for psi in values:
        result = evaluate_loaded(run, replace(req, truncation=Truncation(psi, mode)))
        pr = result["pr"]
        k = int(pr["k"])
        point = {"psi": psi, "fid": float(result["fid"]), **{k: float(pr[k]) for k in COLUMNS[2:]}}
        points.append(point)
        protocol = protocol or {k: v for k, v in (protocol_id(result["protocol"]) or {}).items() if k != "truncation"}
        if on_point is not None:
            on_point(point)
    return {"mode": mode, "num_samples": req.num_samples, "seed": req.seed, "split": req.split, "extractor": ext.name,
            "extractor_hash": ext.hash, "pr_k": k, "protocol": protocol, "points": points}
