"""FID against the number of sampling steps of one flow or diffusion checkpoint, with what each point costs.

A GAN draws an image in one network evaluation; a flow or diffusion model integrates an ODE, and its quality
depends on the step count. Each point of the curve is one ``evaluate_loaded`` call with the same seed, sample
count, extractor and reference (its statistics are computed once and cached), differing only in the steps; the
time spent drawing the images (the ODE, not the features) is measured during that evaluation and given as
seconds per 10,000 images, next to the network evaluations per image (NFE). ``genlab eval RUN --steps-sweep
1,2,5,10,20,50`` writes RUN/analysis/steps.json (these numbers) and steps.png; the report redraws the curve.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from genlab.errors import ConfigError
from genlab.evaluation import EvalRequest, evaluate_loaded, protocol_id
from genlab.sampling import LoadedRun

#: the columns of each point, in table order
COLUMNS = ("steps", "nfe", "fid", "seconds_per_10k")
#: the step counts `genlab eval --steps-sweep` suggests
DEFAULT_STEPS = (1, 2, 5, 10, 20, 50)
#: generated images per point when no request says otherwise (`genlab eval` passes the protocol's)
SWEEP_SAMPLES = 2000


def parse_steps(text: str | Sequence[int]) -> list[int]:
    """``"1,2,5,10"`` (or a sequence) -> sorted distinct positive step counts; ConfigError names a bad entry."""
    items = [t.strip() for t in text.split(",") if t.strip()] if isinstance(text, str) else list(text)
    out = []
    for item in items:
        try:
            n = int(item)
        except ValueError:
            n = 0
        if n < 1 or str(item).strip() != str(n):
            raise ConfigError(f"--steps-sweep {text!r}: {item!r} is not a positive whole number of steps; give "
                              f"step counts such as {','.join(map(str, DEFAULT_STEPS))}")
        out.append(n)
    if not out:
        raise ConfigError(f"--steps-sweep needs at least one step count, e.g. {','.join(map(str, DEFAULT_STEPS))}")
    return sorted(set(out))


@dataclasses.dataclass
class TimedRun(LoadedRun):
    """A LoadedRun that adds the wall-clock seconds of every ``generate`` call to ``seconds``."""

    seconds: float = 0.0

    @classmethod
    def of(cls, run: LoadedRun) -> TimedRun:
        return cls(**{f.name: getattr(run, f.name) for f in dataclasses.fields(LoadedRun)})

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        t0 = time.perf_counter()
        try:
            return super().generate(z, y, batch_size)
        finally:
            self.seconds += time.perf_counter() - t0


def steps_sweep(run: LoadedRun, steps: Sequence[int], *, request: EvalRequest | None = None,
                on_point: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """{"solver", "guidance", "num_samples", "seed", "split", "extractor", "extractor_hash", "protocol", "points"}: one
    point per step count (ascending) with the ``COLUMNS``, each measured as ``request`` asks (default: 2000 images;
    its solver and guidance are kept, None: the run's; its metrics and steps are the sweep's). ``on_point``:
    progress."""
    values = parse_steps(steps)
    req = request if request is not None else EvalRequest(num_samples=SWEEP_SAMPLES)
    run = run.with_sampling(guidance=req.guidance)
    run.with_sampling(steps=values[0], solver=req.solver)  # a GAN or VAE is refused here, before any work
    sweep = req.pinned(run, metrics=("fid",), steps=None, solver=None, guidance=None)
    ext, settings = sweep.features, sweep.settings
    points: list[dict] = []
    protocol: dict | None = None
    described: dict = {}
    for n in values:
        timed = TimedRun.of(run.with_sampling(steps=n, solver=req.solver))
        result = evaluate_loaded(timed, sweep)
        described = timed.image_sampler.describe() or {}
        point = {"steps": n, "nfe": described["nfe"], "fid": float(result["fid"]),
                 "seconds_per_10k": timed.seconds * 10_000 / settings.num_samples}
        points.append(point)
        protocol = protocol or {k: v for k, v in (protocol_id(result["protocol"]) or {}).items() if k != "sampling"}
        if on_point is not None:
            on_point(point)
    return {"process": described["process"], "solver": described["solver"], "guidance": described["guidance"],
            "num_samples": settings.num_samples, "seed": req.seed, "split": settings.split, "extractor": ext.name,
            "extractor_hash": ext.hash, "device": str(run.device), "protocol": protocol, "points": points}
