"""What one training step does, as data: a list of phases run by one loop.

A phase names the optimizer it steps, the networks it trains, how many times it repeats per step (WGAN's
n_critic) and a function ``fn(batch, ctx) -> (loss, stats)``. A new model needs a new objective (a phase
list), never a new loop. The objectives themselves live in ``genlab.training.families``, which registers them
here in ``OBJECTIVES`` and builds the one a config asks for (``build_objective``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from genlab.config import Config, OptimConfig
from genlab.models import MODELS
from genlab.models.conditioning import Conditioning
from genlab.objectives import LOSSES, GANLoss
from genlab.objectives.diffaugment import make_augment
from genlab.objectives.options import ObjectiveOptions
from genlab.registry import Registry


@dataclass
class Batch:
    x: torch.Tensor  # real images, float in [-1, 1], (N, C, H, W)
    y: torch.Tensor | None = None  # int64 labels (N,) for labeled data
    idx: torch.Tensor | None = None  # the images' indices in the training set (per-image captions)


@dataclass
class StepContext:
    """Everything a phase may use; built once per run by the loop."""

    nets: nn.ModuleDict
    cfg: Config
    device: torch.device
    num_classes: int = 0
    loss: GANLoss | None = None
    augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    cache: dict = field(default_factory=dict)  # per-step scratch shared between phases (cleared each step)
    step: int = 0  # steps done before this one (the loop sets it; lazy regularisation reads it)
    #: fp16: the running phase's loss scale (a 0-d tensor; TrainStep sets it), which penalties that differentiate
    #: inside the loss apply to their input gradients (objectives.penalties.input_gradient); None otherwise
    loss_scale: torch.Tensor | None = None

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.model.latent_dim, device=self.device)


PhaseFn = Callable[[Batch, StepContext], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class Phase:
    name: str
    optimizer: str  # key of Objective.optimizers()
    trains: tuple[str, ...]  # networks that receive gradients in this phase (others are frozen)
    fn: PhaseFn
    repeat: int = 1
    after: Callable[[StepContext], None] | None = None  # e.g. weight clipping after a critic step


class Objective:
    """Turns networks + config into optimizers and phases. Subclasses set ``phases``.

    ``opts`` is the config's ``objective:`` section as the objective's options dataclass
    (``genlab.objectives.options.OPTIONS``); phases read it (plain attributes, nothing per step).
    """

    def __init__(self, cfg: Config, opts: ObjectiveOptions):
        self.cfg = cfg
        self.opts = opts
        # what the model is conditioned on; the text objective binds its run's captions to it in setup
        self.conditioning: Conditioning = MODELS.get(cfg.model.name).conditioning

    def optimizers(self) -> dict[str, tuple[tuple[str, ...], OptimConfig]]:
        """optimizer name -> (networks it owns, settings)."""
        t = self.cfg.train
        return {"D": (("D",), t.d_opt), "G": (("G",), t.g_opt)}

    def context(self, nets: nn.ModuleDict, device: torch.device, num_classes: int) -> StepContext:
        return StepContext(nets=nets, cfg=self.cfg, device=device, num_classes=num_classes,
                           loss=LOSSES.get(self.cfg.train.loss), augment=make_augment(self.cfg.train.diffaugment))

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def double_backward(self) -> tuple[str, ...]:
        """The networks whose graph a phase differentiates twice (a penalty on input gradients, taken with
        ``create_graph``): torch.compile cannot run them (perf.resolve_runtime keeps them eager)."""
        return ()

    def state_dict(self) -> dict:
        """What the objective itself learns during a run (moving averages, an adaptive probability), kept in
        checkpoints so a resume is exact; empty for most objectives."""
        return {}

    def load_state_dict(self, d: dict) -> None:
        """Take back ``state_dict``'s output."""

    def setup(self, data, ctx: StepContext) -> dict | None:
        """Once, before the first step, with the run's training data (e.g. a text vocabulary from the captions);
        returns facts for the checkpoint's ``extra`` (None: nothing)."""
        return None

    def sample_images(self, nets: Mapping[str, nn.Module], G: nn.Module, real: Batch) -> dict[str, torch.Tensor]:
        """Image grids beside the samples at each grid epoch: tag -> images in [-1, 1] (e.g. a VAE's
        reconstructions of ``real``); none by default."""
        return {}


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


def make_optimizer(params, o: OptimConfig, **impl) -> torch.optim.Optimizer:
    """``impl``: implementation switches that keep the maths (``fused=True``, ``foreach=True``; perf.py)."""
    if o.optimizer == "rmsprop":  # the WGAN paper's choice for weight clipping
        return torch.optim.RMSprop(params, lr=o.lr, eps=o.eps, weight_decay=o.weight_decay,
                                   foreach=impl.get("foreach"))
    return torch.optim.Adam(params, lr=o.lr, betas=(o.betas[0], o.betas[1]), eps=o.eps, weight_decay=o.weight_decay,
                            **impl)
