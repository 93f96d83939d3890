"""ACGAN (Odena et al.): a class-conditional G and a D with two heads, real/fake and class (report 004)."""
from __future__ import annotations

import torch
from torch import nn

from genlab.config import ModelConfig
from genlab.models.blocks import ConvBody, maybe_sn
from genlab.models.conditional import class_generator
from genlab.models.conditioning import resolve
from genlab.models.dcgan import RESOLUTIONS
from genlab.models.init import dcgan_init
from genlab.models.registry import DataShape, ModelSpec, register_model


class ACGANDiscriminator(nn.Module):
    """image -> (validity logit (N,), class logits (N, K)). ``D(x)`` is the validity alone; unconditional:
    ``cond`` is ignored (the class head predicts the label instead)."""

    def __init__(self, body: ConvBody, num_classes: int, sn: bool = False):
        super().__init__()
        self.body = body
        self.num_classes = num_classes
        self.feature_dim = body.feature_dim
        self.validity = maybe_sn(nn.Linear(body.feature_dim, 1), sn)
        self.classes = nn.Linear(body.feature_dim, num_classes)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x).flatten(1)

    def heads(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.validity(h).squeeze(1), self.classes(h)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.heads(x)[0]


def build_acgan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    body = ConvBody(d.channels, d.resolution, m.hidden_dim, "batch", m.dropout_d, m.spectral_norm)
    nets = nn.ModuleDict({"G": class_generator(m, d), "D": ACGANDiscriminator(body, d.num_classes, m.spectral_norm)})
    dcgan_init(nets)
    return nets


register_model(ModelSpec(
    name="acgan",
    description="auxiliary-classifier GAN: label embedding concatenated to z; D has a real/fake and a class "
                "head; D adds the class cross-entropy on real images, G on its fakes",
    build=build_acgan,
    objective="acgan",
    conditioning=resolve("class"),
    resolutions=RESOLUTIONS,
))
