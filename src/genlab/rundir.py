"""The run folder: the contract between training, evaluation, analysis and reporting.

runs/<name>/config.yaml, metrics.jsonl, tb/, samples/, checkpoints/, noise.pt
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from genlab.errors import RunError


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def of(cls, path: str | Path) -> "RunDir":
        return cls(Path(path))

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    tb = property(lambda self: self.path / "tb")
    samples = property(lambda self: self.path / "samples")
    checkpoints = property(lambda self: self.path / "checkpoints")
    noise = property(lambda self: self.path / "noise.pt")
    eval_json = property(lambda self: self.path / "eval.json")

    def exists(self) -> bool:
        return self.config.is_file()

    def create(self, overwrite: bool = False) -> None:
        if self.path.exists() and any(self.path.iterdir()):
            if not overwrite:
                raise RunError(
                    f"run folder {str(self.path)!r} already exists; resume it with `genlab train --resume "
                    f"{self.path}`, pick another --run-dir, or pass --overwrite to replace it"
                )
            shutil.rmtree(self.path)
        for p in (self.path, self.samples, self.checkpoints):
            p.mkdir(parents=True, exist_ok=True)

    def require(self) -> "RunDir":
        if not self.exists():
            raise RunError(f"{str(self.path)!r} is not a genlab run folder (no config.yaml); "
                           "train one with `genlab train RECIPE --run-dir PATH`")
        return self

    def checkpoint_files(self) -> list[Path]:
        """Step checkpoints, oldest first (names sort by step)."""
        return sorted(self.checkpoints.glob("step_*.pt")) if self.checkpoints.is_dir() else []

    def checkpoint_path(self, which: str = "last") -> Path:
        """``last``, ``best`` or an explicit path -> an existing checkpoint file."""
        if which == "last":
            files = self.checkpoint_files()
            if not files:
                raise RunError(f"run {str(self.path)!r} has no checkpoint yet")
            return files[-1]
        if which == "best":
            p = self.checkpoints / "best.pt"
            if not p.is_file():
                raise RunError(f"run {str(self.path)!r} has no best.pt (it is kept when eval.every > 0); "
                               "use --checkpoint last")
            return p
        p = Path(which)
        if not p.is_file():
            p = self.checkpoints / which
        if not p.is_file():
            raise RunError(f"checkpoint {which!r} not found; use last, best, or a path to a .pt file")
        return p

    def read_metrics(self) -> Iterator[dict]:
        if not self.metrics.is_file():
            return iter(())
        with self.metrics.open() as f:
            return iter([json.loads(line) for line in f if line.strip()])
