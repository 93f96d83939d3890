"""What analysis commands leave in RUN/analysis/: their figures, and next to each a small JSON with its numbers
and where they came from (checkpoint, step, seed), so the HTML report can show them without loading models.

    analysis/interpolation.png .gif .json   genlab interpolate
    analysis/latent_*.png, latent.json      genlab latent
    analysis/class_grid.png .json           genlab class-grid
    analysis/coverage.png .json             genlab coverage (the class histograms, entropy, KL)
    analysis/neighbours.png .json           genlab neighbours (nearest training images, distances, indices)
    analysis/curves.png .json               genlab plot curves (the final losses)
    analysis/progress.png .json             genlab plot progress (the epochs shown)
    analysis/truncation.png .json           genlab eval --truncation-sweep (FID, precision, recall per psi)
    analysis/steps.png .json                genlab eval --steps-sweep (FID, NFE, seconds per 10k images per step count)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from genlab.io import atomic_write_text
from genlab.rundir import RunDir

#: the JSON file names (under RUN/analysis/) of each command's numbers
INTERPOLATION = "interpolation.json"
LATENT = "latent.json"
CLASS_GRID = "class_grid.json"
COVERAGE = "coverage.json"
NEIGHBOURS = "neighbours.json"
CURVES = "curves.json"
PROGRESS = "progress.json"
TRUNCATION = "truncation.json"
STEPS = "steps.json"


@dataclass(frozen=True)
class Source:
    """Where an artifact came from: the checkpoint file (name), its training step and the latent seed."""

    checkpoint: str
    step: int
    seed: int | None = None

    @classmethod
    def of(cls, run, seed: int | None = None) -> Source:
        """From a ``genlab.sampling.LoadedRun``."""
        return cls(checkpoint=Path(run.checkpoint).name, step=int(run.step), seed=seed)


def write_numbers(run_dir: str | Path | RunDir, figure: Path, numbers: dict,
                  source: Source | None = None) -> Path:
    """``numbers`` (plus ``source``) as JSON next to ``figure``: through RunDir when the figure sits in
    RUN/analysis/ (the default), else beside the path the user gave with --out."""
    rd = RunDir.of(run_dir)
    obj = {**(asdict(source) if source else {}), **numbers}
    target = Path(figure).with_suffix(".json")
    if target.parent.absolute() == rd.analysis.absolute():
        return rd.write_artifact_json(target.name, obj)
    return atomic_write_text(target, json.dumps(obj, indent=1, default=float))


@dataclass(frozen=True)
class Saved:
    """An artifact's numbers as the report found them, and a short phrase saying where from."""

    numbers: dict
    about: str


def saved(run_dir: str | Path | RunDir, name: str, checkpoint: Path | None = None) -> tuple[Saved | None, str]:
    """analysis/<name> if it was made from ``checkpoint`` (any checkpoint when None), else (None, why not)."""
    data = RunDir.of(run_dir).read_artifact_json(name)
    if not isinstance(data, dict):
        return None, f"no analysis/{name}"
    made_from = data.get("checkpoint")
    if checkpoint is not None and made_from is not None and made_from != Path(checkpoint).name:
        return None, f"analysis/{name} was made from {made_from}, not {Path(checkpoint).name}"
    step = f", step {data['step']}" if data.get("step") is not None else ""
    return Saved(numbers=data, about=f"analysis/{name}" + (f" ({made_from}{step})" if made_from else "")), ""
