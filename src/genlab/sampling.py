"""Load a trained run and draw images from it: the sampler that eval, analysis and the CLI share.

The networks come back through ``training.state.networks_from_checkpoint``, the rebuild that training and
resume use too; :class:`LoadedRun` also wraps a live run's networks (evaluation during training).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from genlab.config import Config
from genlab.errors import GenlabError
from genlab.models import MODELS, ModelSpec
from genlab.models.conditioning import Conditioning
from genlab.rundir import RunDir
from genlab.training.checkpoint import load_checkpoint
from genlab.training.perf import resolve_device
from genlab.training.state import networks_from_checkpoint


@dataclass
class LoadedRun:
    run: RunDir
    cfg: Config
    spec: ModelSpec
    nets: nn.ModuleDict
    checkpoint: Path
    step: int
    epoch: int
    extra: dict = field(default_factory=dict)
    ema: nn.Module | None = None
    device: torch.device = torch.device("cpu")

    @property
    def generator(self) -> nn.Module:
        return self.ema if self.ema is not None else self.nets["G"]

    @property
    def num_classes(self) -> int:
        return int(self.extra.get("num_classes", 0))

    @property
    def class_names(self) -> list[str]:
        return list(self.extra.get("class_names", []))

    @property
    def conditioning(self) -> Conditioning:
        return self.spec.conditioning

    @property
    def conditional(self) -> bool:
        return self.conditioning.conditional

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.cfg.model.latent_dim, generator=g).to(self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """Latents (and labels/conditions for conditional models) -> float images in [-1, 1] on the CPU."""
        G = self.generator
        out = []
        for i in range(0, len(z), batch_size):
            zi = z[i:i + batch_size].to(self.device)
            yi = y[i:i + batch_size].to(self.device) if y is not None and self.conditional else None
            out.append(G(zi, yi).float().cpu())
        images = torch.cat(out) if out else torch.empty(0)
        if not torch.isfinite(images).all():
            raise GenlabError(f"the generator of checkpoint {self.checkpoint} produced NaN/inf images; "
                              "pick an earlier checkpoint with --checkpoint PATH")
        return images

    def default_labels(self, n: int, labels: list[int] | None = None) -> torch.Tensor | None:
        """The conditions for ``labels`` (cycled), or the model's default (class models cycle the classes);
        GenlabError for labels a model cannot take."""
        return self.conditioning.from_labels(labels, n, self.num_classes, self.cfg.model.name)

    def sample(self, n: int, seed: int = 0, labels: list[int] | None = None, batch_size: int = 256) -> torch.Tensor:
        """``n`` images from seeded latents (class-conditional models cycle through the classes)."""
        return self.generate(self.latents(n, seed), self.default_labels(n, labels), batch_size)

    def sampler(self, seed: int = 0, batch_size: int = 256):
        """A function n -> images that draws fresh, seeded latents on every call (for metrics)."""
        g = torch.Generator().manual_seed(seed)
        counter = [0]

        def fn(n: int) -> torch.Tensor:
            z = torch.randn(n, self.cfg.model.latent_dim, generator=g)
            y = self.conditioning.random(n, g, self.extra)  # drawn after z: the order seeded metrics rely on
            counter[0] += n
            return self.generate(z, y, batch_size)

        return fn


def sample_prompt(run: LoadedRun, prompt: str, n: int, seed: int = 0, log=print) -> torch.Tensor:
    """``n`` images of a text-conditional run for one caption; words outside its vocabulary are reported."""
    bags = run.conditioning.from_prompt(prompt, n, run.extra, run.cfg.model.name, log)
    return run.generate(run.latents(n, seed), bags)


def load_run(run_dir: str | Path, checkpoint: str = "last", device: str = "cpu") -> LoadedRun:
    """A run folder + which checkpoint (last | best | path) -> networks in eval mode."""
    run = RunDir.of(run_dir).require()
    path = run.checkpoint_path(checkpoint)
    dev = resolve_device(device)  # a missing GPU is a ConfigError, not a broken checkpoint
    ckpt = load_checkpoint(path, dev)
    restored = networks_from_checkpoint(ckpt, dev, source=str(path))
    return LoadedRun(run=run, cfg=restored.cfg, spec=MODELS.get(restored.cfg.model.name), nets=restored.nets,
                     checkpoint=path, step=ckpt["step"], epoch=ckpt["epoch"], extra=restored.extra,
                     ema=restored.ema, device=dev)
