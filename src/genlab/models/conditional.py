"""Class-conditional GAN (Mirza & Osindero) with a concat or projection (Miyato & Koyama) discriminator.

A *condition* module turns what a caller passes as ``y`` into a vector: ``LabelEmbedding`` here (int64
labels), ``BagOfWordsEmbedding`` in textcond.py. ``ConditionalGenerator`` concatenates it to z;
``ConditionalDiscriminator`` either concatenates it, broadcast to maps, to the features after D's first conv
(``model.cond_d=concat``, the conditional GAN's label maps), or adds the projection ``<embed(y), phi(x)>`` to an
unconditional score (``model.cond_d=projection``). The projection's label vectors start at zero and learn
from the first step: with nn.Embedding's N(0, 1) the term was a label-dependent logit of tens at step 0 (D's
sum-pooled features are positive, ~15 per channel on the 28 px toy, ~5 at 64 px), BCE saturated for the
class it favoured, G got no gradient for that class and learned to ignore its label (2 of 6 toy seeds);
N(0, 0.02) still shifted the score by up to ~6 per label at 64 px. Where the condition enters matters:
concatenated straight
into the final linear layer, it would only add a constant per label to the score (D(x, y) = f(x) + g(y)) and
G would get no signal about the label; joined at the last feature map, a toy run still learned swapped
classes. ``y=None`` cycles through the classes, so ``G(z)`` still works.
"""
from __future__ import annotations

import torch
from torch import nn

from genlab.config import ModelConfig
from genlab.models.blocks import ConvBody, maybe_sn
from genlab.models.conditioning import resolve
from genlab.models.dcgan import RESOLUTIONS, DCGANGenerator
from genlab.models.init import dcgan_init
from genlab.models.registry import DataShape, ModelSpec, register_model

PROJECTION_STD = 0.0  # the projection's label vectors start at zero: D(x, y) starts as an unconditional D



class LabelEmbedding(nn.Module):
    """int64 labels (N,) -> learned vectors (N, dim); ``None`` -> labels 0, 1, ..., K-1, 0, 1, ...

    ``std``: the vectors' initial scale, N(0, 1) by default (G's, concatenated to z ~ N(0, 1)).
    """

    def __init__(self, num_classes: int, dim: int, std: float = 1.0):
        super().__init__()
        self.num_classes, self.out_dim = num_classes, dim
        self.embed = nn.Embedding(num_classes, dim)
        with torch.no_grad():  # nn.Embedding starts N(0, 1); scaling draws no random numbers
            self.embed.weight.mul_(std)

    def forward(self, y: torch.Tensor | None, n: int) -> torch.Tensor:
        if y is None:
            y = torch.arange(n, device=self.embed.weight.device) % self.num_classes
        if y.dtype.is_floating_point:
            raise TypeError("class-conditional networks take int64 labels, not float tensors")
        return self.embed(y)


class ConditionalGenerator(nn.Module):
    """G(z, y): the DCGAN generator fed with [z, condition(y)]."""

    def __init__(self, latent_dim: int, cond: nn.Module, base: int, channels: int, resolution: int,
                 dropout: float = 0.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.cond = cond
        self.net = DCGANGenerator(latent_dim, base, channels, resolution, dropout,
                                  cond_dim=int(cond.out_dim))  # type: ignore[arg-type]  # an int attribute

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.decode(torch.cat([z, self.cond(cond, z.shape[0])], dim=1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y) -> one logit per image, with the condition joined by concat or projection."""

    def __init__(self, body: ConvBody, cond: nn.Module, mode: str = "concat", sn: bool = False):
        super().__init__()
        self.body, self.cond, self.mode = body, cond, mode
        self.feature_dim = body.feature_dim
        width = body.feature_shape[0]
        if mode == "concat":
            if body.cond_dim != cond.out_dim:
                raise ValueError(f"concat needs a body taking {cond.out_dim} condition maps, not {body.cond_dim}")
            self.head = maybe_sn(nn.Linear(body.feature_dim, 1), sn)
        elif mode == "projection":
            if cond.out_dim != width or body.cond_dim:
                raise ValueError(f"projection needs an unconditional body and a condition of {width} units")
            self.head = maybe_sn(nn.Linear(width, 1), sn)
        else:
            raise ValueError(f"cond_d {mode!r} is not concat or projection")

    def _body(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.body(x, c if self.mode == "concat" else None)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """D's last feature map, flattened (VAE-GAN's reconstruction space); concat mode depends on ``cond``."""
        return self.body(x, self.cond(cond, x.shape[0]) if self.mode == "concat" else None).flatten(1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        c = self.cond(cond, x.shape[0])
        h = self._body(x, c)
        if self.mode == "concat":
            return self.head(h.flatten(1)).squeeze(1)
        pooled = h.sum(dim=(2, 3))
        return self.head(pooled).squeeze(1) + (c * pooled).sum(dim=1)


def class_discriminator(m: ModelConfig, d: DataShape, norm: str = "batch") -> ConditionalDiscriminator:
    """The conditional D for ``d.num_classes`` labels (concat or projection, per ``model.cond_d``)."""
    std = PROJECTION_STD if m.cond_d == "projection" else 1.0
    return joined_discriminator(m, d, lambda dim: LabelEmbedding(d.num_classes, dim, std), m.embed_dim or m.latent_dim,
                                norm)


def joined_discriminator(m: ModelConfig, d: DataShape, make_cond, concat_dim: int,
                         norm: str = "batch") -> ConditionalDiscriminator:
    """A conditional D per ``model.cond_d``; ``make_cond(dim)`` builds its condition module (label or text)."""
    if m.cond_d == "projection":
        body = ConvBody(d.channels, d.resolution, m.hidden_dim, norm, m.dropout_d, m.spectral_norm)
        cond = make_cond(body.feature_shape[0])
    else:
        body = ConvBody(d.channels, d.resolution, m.hidden_dim, norm, m.dropout_d, m.spectral_norm, concat_dim)
        cond = make_cond(concat_dim)
    return ConditionalDiscriminator(body, cond, m.cond_d, m.spectral_norm)


def class_generator(m: ModelConfig, d: DataShape) -> ConditionalGenerator:
    return ConditionalGenerator(m.latent_dim, LabelEmbedding(d.num_classes, m.embed_dim or m.latent_dim),
                                m.hidden_dim, d.channels, d.resolution, m.dropout_g)


def build_cgan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    nets = nn.ModuleDict({"G": class_generator(m, d), "D": class_discriminator(m, d)})
    dcgan_init(nets)
    return nets


register_model(ModelSpec(
    name="cgan",
    description="class-conditional DCGAN: label embedding concatenated to z; D joins labels by concat or "
                "projection (model.cond_d)",
    build=build_cgan,
    objective="cgan",
    conditioning=resolve("class"),
    resolutions=RESOLUTIONS,
))
