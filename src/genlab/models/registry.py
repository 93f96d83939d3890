"""The model registry: a name -> how to build its networks and which training objective drives them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from torch import nn

from genlab.registry import Registry

if TYPE_CHECKING:
    from genlab.config import Config


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of a model.

    build(cfg, num_classes) -> nn.ModuleDict of networks ("G" always: latent -> image in [-1, 1]; "D" for
    adversarial models; "E" for encoders). objective names the entry of ``genlab.training.OBJECTIVES`` that
    turns the networks into training phases.
    """

    name: str
    description: str
    build: Callable[["Config", int], nn.ModuleDict]
    objective: str = "gan"
    conditioning: str = "none"  # none | class | text
    resolutions: tuple[int, ...] = (28, 32, 64, 128)
    check: Callable[["Config"], None] | None = field(default=None, compare=False)

    def validate(self, cfg: "Config") -> None:
        if self.check is not None:
            self.check(cfg)


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(spec: ModelSpec) -> ModelSpec:
    return MODELS.add(spec.name, spec)
