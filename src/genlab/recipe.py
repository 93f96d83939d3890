"""The checks that span registries, in one place: a config's model, resolution, loss and objective options fit.

``genlab.config`` knows no registry; this module's ``load_config`` and ``from_dict`` are config's plus
``check_recipe``, so a recipe or a saved config fails with one line before any work. Every caller outside
``genlab.config`` loads configs through these two.
``build_networks`` is the one way from a config to its networks, ``image_sampler`` the one way from a config to how
its generator draws images (one call for GANs and VAEs, an ODE for flow and diffusion models).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf import errors as oc_errors
from torch import nn

from genlab import config as _config
from genlab.config import Config
from genlab.diffusion import PROCESSES, ImageSampler, ODESampler, OneStep
from genlab.errors import ConfigError
from genlab.memory import check_fits
from genlab.models import MODELS, DataShape
from genlab.models.textcond import set_text_vocabulary
from genlab.objectives import LOSSES
from genlab.objectives.diffaugment import parse_policy
from genlab.objectives.options import OPTIONS, ObjectiveOptions

__all__ = ["build_networks", "check_recipe", "check_training_fits", "data_shape", "from_dict", "image_sampler",
           "load_config", "network_sizes", "objective_options"]


def objective_options(cfg: Config) -> ObjectiveOptions:
    """The ``objective:`` section as the dataclass of the model's objective (unknown keys and bad values fail)."""
    spec = MODELS.get(cfg.model.name)
    cls = OPTIONS.get(spec.objective)
    known = [f.name for f in dataclasses.fields(cls)]
    for key, value in (cfg.objective or {}).items():
        if key not in known:
            raise ConfigError(f"objective.{key}={value!r} is not an option of model {spec.name} (objective "
                              f"{spec.objective}); its options: {', '.join(known) or 'none'}")
    try:
        node = OmegaConf.merge(OmegaConf.structured(cls), OmegaConf.create(dict(cfg.objective or {})))
    except oc_errors.OmegaConfBaseException as e:
        key = getattr(e, "full_key", "?")
        msg = (getattr(e, "msg", None) or str(e)).strip().splitlines()[0]
        raise ConfigError(f"config key 'objective.{key}': {msg}") from None
    opts: ObjectiveOptions = OmegaConf.to_object(node)  # type: ignore[assignment]
    _config.check_finite(opts, "objective.")
    opts.check()
    return opts


def check_recipe(cfg: Config) -> None:
    """Cross-registry checks; fills ``cfg.objective`` with every option of the model's objective."""
    m, d, t = cfg.model, cfg.data, cfg.train
    _config.require(m.name in MODELS, "model.name", m.name, f"one of {', '.join(MODELS.names())}")
    spec = MODELS.get(m.name)
    _config.require(d.resolution in spec.resolutions, "data.resolution", d.resolution,
           f"model {m.name} supports {', '.join(map(str, spec.resolutions))}")
    _config.require(t.loss in LOSSES, "train.loss", t.loss, f"one of {', '.join(LOSSES.names())}")
    if spec.losses and t.loss not in spec.losses:
        others = f" (or {', '.join(spec.losses[1:])})" if len(spec.losses) > 1 else ""
        raise ConfigError(f"model {m.name} trains a critic (no sigmoid): set train.loss={spec.losses[0]}{others}, "
                          f"not {t.loss}")
    parse_policy(t.diffaugment)
    opts = objective_options(cfg)
    if getattr(opts, "ada_target", 0.0) and not t.diffaugment:
        raise ConfigError(f"objective.ada_target={opts.ada_target} adapts how often train.diffaugment is applied, "
                          "and train.diffaugment is off; set a policy, e.g. train.diffaugment=translation,cutout")
    if LOSSES.get(t.loss).paired and not opts.pairs_real_in_g:
        raise ConfigError(f"train.loss={t.loss} pairs each fake with a real image in G's loss, which model {m.name} "
                          f"(objective {spec.objective}) does not do; use a GAN whose G phase scores the reals "
                          "(dcgan, resnet-gan, r3gan, wgan-gp, cgan, ...) or another loss")
    if t.diffaugment and not opts.augments:
        raise ConfigError(f"train.diffaugment={t.diffaugment!r} is not supported by model {m.name}; leave it at ''")
    if spec.process:
        m.latent_dim = d.channels * d.resolution ** 2  # the ODE starts from noise of the image's shape
        for key, neutral in (("guidance", 1.0), ("label_dropout", 0.0)):
            if getattr(opts, key) != neutral and not spec.conditioning.takes_labels:
                raise ConfigError(f"objective.{key}={getattr(opts, key)!r} is for class-conditional models and "
                                  f"{m.name} is unconditional; leave it at {neutral:g} or use the class-conditional "
                                  "model (cflow-unet, cedm-unet)")
    cfg.objective = dataclasses.asdict(opts)


def data_shape(cfg: Config, num_classes: int = 0) -> DataShape:
    return DataShape(resolution=cfg.data.resolution, channels=cfg.data.channels, num_classes=num_classes)


def build_networks(cfg: Config, num_classes: int = 0, extra: dict | None = None) -> nn.ModuleDict:
    """The networks of ``cfg``'s model for its data (``num_classes``: the label count, 0 = unlabeled); the one
    place that builds them. ``extra`` (a checkpoint's) gives text models the vocabulary they learnt from the
    data, which must be in place before the weights load."""
    spec = MODELS.get(cfg.model.name)
    spec.conditioning.require_classes(spec.name, cfg.data.name, num_classes)
    nets = spec.build(cfg.model, data_shape(cfg, num_classes))
    if extra and "text" in extra:
        set_text_vocabulary(nets, extra["text"])
    return nets


def network_sizes(cfg: Config, num_classes: int = 0, extra: dict | None = None) -> dict[str, int]:
    """Entries (parameters and buffers) of each network of ``cfg``'s model, counted on the ``meta`` device: no
    memory is allocated, so an impossible size is known before it is built."""
    import torch

    with torch.device("meta"):
        nets = build_networks(cfg, num_classes, extra)
    return {k: sum(t.numel() for t in v.state_dict().values()) for k, v in nets.items()}


def check_training_fits(cfg: Config, num_classes: int, device: str = "cpu") -> None:
    """ConfigError (``genlab.memory``) when the networks with their gradients and optimizer state, or the fixed
    noise of the sample grid, cannot fit in the memory of ``device``."""
    sizes = network_sizes(cfg, num_classes)
    # fp32 weights, gradients and two Adam moments per entry, plus the EMA copy of G
    need = 4 * (4 * sum(sizes.values()) + (sizes.get("G", 0) if cfg.train.ema else 0))
    counts = ", ".join(f"{k}: {v:,}" for k, v in sizes.items())
    check_fits(need, f"model {cfg.model.name} (model.hidden_dim={cfg.model.hidden_dim}, model.latent_dim="
               f"{cfg.model.latent_dim}; {counts} parameters) with its gradients and optimizer state",
               "make it smaller: model.hidden_dim, model.depth or model.latent_dim", device)
    pixels = cfg.data.channels * cfg.data.resolution ** 2
    check_fits(8 * cfg.log.num_samples * (pixels + cfg.model.latent_dim),
               f"log.num_samples={cfg.log.num_samples} (the fixed noise and images of each sample grid)",
               "a grid of a few hundred images is plenty, e.g. log.num_samples=64", "cpu")

def image_sampler(cfg: Config, *, steps: int | None = None, solver: str | None = None,
                  guidance: float | None = None) -> ImageSampler:
    """How ``cfg``'s generator draws images: ``OneStep`` (GANs, VAEs), or the ODE sampler of a flow or diffusion
    model with the objective's defaults (``objective.steps``, ``solver``, ``guidance``) unless given here. Asking a
    one-step generator for steps, a solver or guidance, or an unconditional model for guidance, is a ConfigError."""
    spec = MODELS.get(cfg.model.name)
    if not spec.process:
        asked = [k for k, v in (("steps", steps), ("solver", solver), ("guidance", guidance)) if v is not None]
        if asked:
            raise ConfigError(f"model {spec.name} draws each image in one network call: {asked[0]} applies to flow "
                              "and diffusion models only (flow-unet, edm-unet, ...)")
        return OneStep()
    opts = objective_options(cfg)
    scale = opts.guidance if guidance is None else float(guidance)
    if scale != 1.0 and not spec.conditioning.takes_labels:
        raise ConfigError(f"guidance {scale:g} needs a class-conditional model; {spec.name} is unconditional "
                          "(leave the guidance at 1)")
    process = PROCESSES.get(spec.process).from_options(dataclasses.asdict(opts))
    d = cfg.data
    return ODESampler(process, solver or opts.solver, opts.steps if steps is None else steps,
                      (d.channels, d.resolution, d.resolution), scale)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict | None = None) -> Config:
    """Recipe YAML (or a saved config dict) + dotted overrides -> a Config whose model, objective and data fit."""
    cfg = _config.parse_config(path, overrides, base)
    check_recipe(cfg)
    return cfg


def from_dict(d: dict) -> Config:
    """A config saved in a run folder or checkpoint -> a checked Config (unknown keys still fail)."""
    cfg = _config.parse_saved(d)
    check_recipe(cfg)
    return cfg
