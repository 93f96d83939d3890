"""VAE-GAN (Larsen et al.) and its class-conditional form CVAE-GAN (report 003, part 3).

Three networks: "E" encoder (image -> (mu, logvar)), "G" decoder/generator (z -> image), "D" discriminator
whose ``features`` measure the reconstruction. The conditional form feeds the label to all three.
"""
from __future__ import annotations

from torch import nn

from genlab.config import ModelConfig
from genlab.models.conditional import LabelEmbedding, class_discriminator, class_generator
from genlab.models.conditioning import resolve
from genlab.models.dcgan import RESOLUTIONS, DCGANDiscriminator, DCGANGenerator
from genlab.models.init import dcgan_init
from genlab.models.registry import DataShape, ModelSpec, register_model
from genlab.models.vae import ConvEncoder


def build_vae_gan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    nets = nn.ModuleDict({
        "E": ConvEncoder(d.channels, d.resolution, m.hidden_dim, m.latent_dim),
        "G": DCGANGenerator(m.latent_dim, m.hidden_dim, d.channels, d.resolution, m.dropout_g),
        "D": DCGANDiscriminator(m.hidden_dim, d.channels, d.resolution, m.dropout_d, m.spectral_norm),
    })
    dcgan_init(nets)
    return nets


def build_cvae_gan(m: ModelConfig, d: DataShape) -> nn.ModuleDict:
    cond = LabelEmbedding(d.num_classes, m.embed_dim or m.latent_dim)
    nets = nn.ModuleDict({
        "E": ConvEncoder(d.channels, d.resolution, m.hidden_dim, m.latent_dim, cond=cond),
        "G": class_generator(m, d),
        "D": class_discriminator(m, d),
    })
    dcgan_init(nets)
    return nets


register_model(ModelSpec(
    name="vae-gan",
    description="VAE-GAN: conv encoder, DCGAN decoder/generator and discriminator; reconstruction measured in "
                "D's feature space",
    build=build_vae_gan,
    objective="vae-gan",
    resolutions=RESOLUTIONS,
))

register_model(ModelSpec(
    name="cvae-gan",
    description="conditional VAE-GAN: the vae-gan networks with a label embedding in E, G and D (concat or "
                "projection)",
    build=build_cvae_gan,
    objective="cvae-gan",
    conditioning=resolve("class"),
    resolutions=RESOLUTIONS,
))
