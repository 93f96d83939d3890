"""The model registry: a name -> how to build its networks and which training objective drives them."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from genlab.config import ModelConfig
from genlab.models.conditioning import Conditioning, resolve
from genlab.registry import Registry


@dataclass(frozen=True)
class DataShape:
    """What a builder needs to know of the data: image side, channels and class count (0 = unlabeled)."""

    resolution: int
    channels: int
    num_classes: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of a model.

    build(model options, data shape) -> nn.ModuleDict of networks ("G" always: latent -> image in [-1, 1]; "D"
    for adversarial models; "E" for encoders). objective names the entry of ``genlab.training.OBJECTIVES`` that
    turns the networks into training phases (and whose options dataclass reads the ``objective:`` section).
    """

    name: str
    description: str
    build: Callable[[ModelConfig, DataShape], nn.ModuleDict]
    objective: str = "gan"
    #: how G and D take a condition: ``CONDITIONINGS`` none | class | text (``resolve("class")``)
    conditioning: Conditioning = field(default_factory=lambda: resolve("none"))
    resolutions: tuple[int, ...] = (28, 32, 64, 128)
    losses: tuple[str, ...] = ()  # the GAN losses its D can train with (empty = any); critics: no sigmoid
    #: a ``genlab.diffusion.PROCESSES`` name (flow | edm) for flow and diffusion models: G is then a denoising
    #: network that the process's ODE sampler integrates from noise of the image's shape (latent_dim = C x H x W);
    #: "" (GANs, VAEs): G maps a latent to an image in one call
    process: str = ""


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.add(spec.name, spec)
