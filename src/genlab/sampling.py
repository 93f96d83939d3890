"""Load a trained run and draw images from it: the sampler that eval, analysis and the CLI share.

A checkpoint file is read with ``genlab.checkpoint`` and its networks rebuilt here (:func:`restore`, with the
same :func:`load_networks` that a resume uses); nothing of ``genlab.training`` is imported to draw from a run.
:class:`LoadedRun` also wraps a live run's networks (``Trainer.live_run``: evaluation during training).

Truncation (``Truncation``, ``genlab sample/eval --truncation PSI``) trades diversity for quality by keeping
latents near the prior's centre. genlab's GANs and VAE decoders have no mapping network (no learned ``w``
space with a mean latent), so both forms act on ``z ~ N(0, I)`` itself:

- ``resample`` (the BigGAN truncation trick): every coordinate with ``|z_i| > psi`` is redrawn until it lies
  inside; the redraws come from their own generator, so the in-range coordinates and the labels drawn after
  ``z`` are those of the untruncated run (the seeded order z then y is kept);
- ``interp`` (StyleGAN's ``w = w_mean + psi (w - w_mean)``) against the prior's mean, which is exactly 0 for
  ``z`` (the mean of a large draw is 0 up to noise): it is a plain shrinkage ``z -> psi z``. Meaningful as a
  quality/diversity knob for any of genlab's models, but not StyleGAN's trick in a learned space.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlab.checkpoint import load_checkpoint
from genlab.config import Config, to_dict
from genlab.device import resolve_device
from genlab.diffusion import ImageSampler
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.models import MODELS, ModelSpec
from genlab.models.conditioning import Conditioning
from genlab.models.ema import EMA
from genlab.recipe import build_networks, from_dict, image_sampler
from genlab.rundir import RunDir

#: the truncation forms (see the module docstring)
TRUNCATION_MODES = ("resample", "interp")
# the resampling draws come from torch.Generator().manual_seed(seed + this): not from the latent stream
_TRUNCATION_SEED_OFFSET = 7_919
# a resampling loop that needs more rounds than this has a psi too small to be useful
_MAX_RESAMPLE_ROUNDS = 10_000


@dataclass(frozen=True)
class Truncation:
    """``psi`` > 0 and the form (``resample`` | ``interp``); recorded in every protocol as ``describe()``."""

    psi: float
    mode: str = "resample"

    def __post_init__(self) -> None:
        if not (isinstance(self.psi, (int, float)) and np.isfinite(self.psi) and self.psi > 0):
            raise ConfigError(f"truncation psi={self.psi} is not allowed: a positive number such as 0.7 "
                              "(smaller: closer to the mean image, less diverse)")
        if self.mode not in TRUNCATION_MODES:
            raise ConfigError(f"truncation mode {self.mode!r} is unknown; choose from: {', '.join(TRUNCATION_MODES)}")

    def apply(self, z: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``z`` (standard normal) truncated; ``g`` supplies the resampling draws."""
        if self.mode == "interp":
            return z * self.psi  # w_mean + psi (w - w_mean) with w_mean = E[z] = 0
        z = z.clone()
        for _ in range(_MAX_RESAMPLE_ROUNDS):
            out = z.abs() > self.psi
            count = int(out.sum())
            if not count:
                return z
            z[out] = torch.randn(count, generator=g)
        raise GenlabError(f"truncation psi={self.psi} is too small to draw latents inside it; use psi >= 0.05")

    def describe(self) -> dict:
        return {"psi": float(self.psi), "mode": self.mode}


def as_truncation(truncation: Truncation | float | None, mode: str = "resample") -> Truncation | None:
    """None, a ``Truncation``, or a psi (with ``mode``) as a checked ``Truncation``."""
    if truncation is None or isinstance(truncation, Truncation):
        return truncation
    return Truncation(float(truncation), mode)


def truncation_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed + _TRUNCATION_SEED_OFFSET)


class Sampler:
    """``sampler(n)`` -> n images from fresh seeded latents (then conditions), the callable metrics take.

    ``drawn_labels()``: the class of every image drawn so far, in order ((N,) int64), or None when the run draws
    no class labels (unconditional runs; text runs trained without classes draw captions)."""

    def __init__(self, run: LoadedRun, seed: int, batch_size: int, truncation: Truncation | None):
        self.run, self.batch_size, self.truncation = run, batch_size, truncation
        self.g = torch.Generator().manual_seed(seed)
        self.g_trunc = truncation_generator(seed)
        self.__name__ = "LoadedRun.sampler"
        self._labels: list[torch.Tensor] = []
        self._unlabeled = False

    def __call__(self, n: int) -> torch.Tensor:
        run = self.run
        z = torch.randn(n, run.cfg.model.latent_dim, generator=self.g)
        y = run.conditioning.random(n, self.g, run.extra)  # drawn after z: the order seeded metrics rely on
        if self.truncation is not None:
            z = self.truncation.apply(z, self.g_trunc)
        if y is not None and y.dtype == torch.int64 and y.ndim == 1:
            self._labels.append(y)
        else:
            self._unlabeled = True
        return run.generate(z, y, self.batch_size)

    def drawn_labels(self) -> np.ndarray | None:
        if self._unlabeled or not self._labels:
            return None
        return torch.cat(self._labels).numpy()


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
    #: how flow and diffusion models draw: steps / solver / guidance replacing the run's defaults (with_sampling)
    sampling: dict = field(default_factory=dict)

    def with_sampling(self, steps: int | None = None, solver: str | None = None,
                      guidance: float | None = None) -> LoadedRun:
        """This run drawing with another ODE step count, solver or guidance scale (None: keep); a ConfigError for
        a one-step generator (GANs, VAEs) or guidance on an unconditional model."""
        asked = {k: v for k, v in (("steps", steps), ("solver", solver), ("guidance", guidance)) if v is not None}
        if not asked:
            return self
        sampling = {**self.sampling, **asked}
        image_sampler(self.cfg, **sampling)  # checked now, before any image is drawn
        return replace(self, sampling=sampling)

    @property
    def image_sampler(self) -> ImageSampler:
        """How the generator turns latents into images (one call, or an ODE: ``genlab.recipe.image_sampler``)."""
        return image_sampler(self.cfg, **self.sampling)

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

    def latents(self, n: int, seed: int = 0, truncation: Truncation | float | None = None) -> torch.Tensor:
        """``n`` seeded standard-normal latents, truncated when ``truncation`` (a psi or a ``Truncation``) is set."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.cfg.model.latent_dim, generator=g)
        trunc = as_truncation(truncation)
        if trunc is not None:
            z = trunc.apply(z, truncation_generator(seed))
        return z.to(self.device)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
        """Latents (and labels/conditions for conditional models) -> float images in [-1, 1] on the CPU."""
        G, draw, cond = self.generator, self.image_sampler, self.conditioning
        out = []
        for i in range(0, len(z), batch_size):
            zi = z[i:i + batch_size].to(self.device)
            yi = y[i:i + batch_size].to(self.device) if y is not None and self.conditional else None
            out.append(draw(G, zi, yi, cond.without(yi)).float().cpu())
        images = torch.cat(out) if out else torch.empty(0)
        if not torch.isfinite(images).all():
            raise GenlabError(f"the generator of checkpoint {self.checkpoint} produced NaN/inf images; "
                              "pick an earlier checkpoint with --checkpoint PATH")
        return images

    def default_labels(self, n: int, labels: list[int] | None = None) -> torch.Tensor | None:
        """The conditions for ``labels`` (cycled), or the model's default (class models cycle the classes);
        GenlabError for labels a model cannot take."""
        return self.conditioning.from_labels(labels, n, self.num_classes, self.cfg.model.name)

    def sample(self, n: int, seed: int = 0, labels: list[int] | None = None, batch_size: int = 256,
               truncation: Truncation | float | None = None) -> torch.Tensor:
        """``n`` images from seeded latents (class-conditional models cycle through the classes)."""
        return self.generate(self.latents(n, seed, truncation), self.default_labels(n, labels), batch_size)

    def sampler(self, seed: int = 0, batch_size: int = 256, truncation: Truncation | float | None = None) -> Sampler:
        """A function n -> images that draws fresh, seeded latents on every call (for metrics); it reports
        the class labels it drew (``drawn_labels()``)."""
        return Sampler(self, seed, batch_size, as_truncation(truncation))


def sample_prompt(run: LoadedRun, prompt: str, n: int, seed: int = 0, log=print,
                  truncation: Truncation | float | None = None) -> torch.Tensor:
    """``n`` images of a text-conditional run for one caption; words outside its vocabulary are reported."""
    bags = run.conditioning.from_prompt(prompt, n, run.extra, run.cfg.model.name, log)
    return run.generate(run.latents(n, seed, truncation), bags)


def _model_of(config: dict | None) -> dict:
    model = (config or {}).get("model") if isinstance(config, dict) else None
    return model if isinstance(model, dict) else {}


def _describe_models(ckpt_config: dict | None, cfg: Config) -> str:
    """``dcgan (hidden_dim=8, latent_dim=8)`` in the checkpoint vs the config: the model keys that differ."""
    saved, wanted = _model_of(ckpt_config), to_dict(cfg)["model"]
    changed = [k for k in sorted(set(saved) | set(wanted)) if k != "name" and saved.get(k) != wanted.get(k)][:4]

    def side(m: dict) -> str:
        keys = ", ".join(f"{k}={m.get(k)}" for k in changed)
        return f"model.name={m.get('name', '?')}" + (f" ({keys})" if keys else "")

    return f"the checkpoint holds {side(saved)}, the config asks for {side(wanted)}"


def load_networks(nets: nn.ModuleDict, ckpt: dict, cfg: Config, source: str, fix: str) -> None:
    """Each network's weights from ``ckpt`` (drawing here, a resume in ``training.state``); a checkpoint of another
    model (missing, extra or differently shaped tensors) is a RunError naming ``source``, both models and ``fix``."""
    for k, sd in ckpt["nets"].items():
        try:
            if k not in nets:
                raise KeyError(f"a network {k!r} that this model does not have")
            nets[k].load_state_dict(sd)
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            lines = [ln.strip() for ln in str(e).strip("'\"").splitlines() if ln.strip()]
            if len(lines) > 1 and lines[0].startswith("Error(s) in loading"):  # torch's header line
                lines = lines[1:]
            first = lines[0] if lines else type(e).__name__
            raise RunError(f"checkpoint {source} does not fit the config: {_describe_models(ckpt.get('config'), cfg)}"
                           f" ({k}: {first[:160]}); {fix}") from None


def restore(ckpt: dict, device: torch.device, run: RunDir, checkpoint: Path) -> LoadedRun:
    """A checkpoint dict (read from ``checkpoint`` of ``run``) -> its config, networks in eval mode on ``device``
    and EMA generator, as a :class:`LoadedRun`; a checkpoint whose weights do not fit its config is a RunError."""
    cfg = from_dict(ckpt["config"])
    extra = ckpt.get("extra", {}) or {}
    nets = build_networks(cfg, int(extra.get("num_classes", 0)), extra)
    load_networks(nets, ckpt, cfg, str(checkpoint),
                  "its weights were not written by this config (a hand-edited checkpoint or another genlab "
                  "version?); use a checkpoint written by `genlab train`")
    nets.to(device).eval()
    ema = None
    if ckpt.get("ema") is not None:
        holder = EMA(nets["G"], cfg.train.ema, cfg.train.ema_warmup)
        holder.load_state_dict(ckpt["ema"], updates=ckpt["step"])
        ema = holder.net
    return LoadedRun(run=run, cfg=cfg, spec=MODELS.get(cfg.model.name), nets=nets, checkpoint=checkpoint,
                     step=ckpt["step"], epoch=ckpt["epoch"], extra=extra, ema=ema, device=device)


def load_run(run_dir: str | Path, checkpoint: str = "last", device: str = "cpu") -> LoadedRun:
    """A run folder + which checkpoint (last | best | path) -> networks in eval mode."""
    run = RunDir.of(run_dir).require()
    path = run.checkpoint_path(checkpoint)
    dev = resolve_device(device)  # a missing GPU is a ConfigError, not a broken checkpoint
    return restore(load_checkpoint(path, "cpu"), dev, run, path)  # restore moves the networks; the rest stays
