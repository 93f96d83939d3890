"""Objectives beyond the plain GAN, one family per file; importing this package registers them in OBJECTIVES.

adversarial: wgan, wgan-gp, cgan; acgan; text: text-gan, text-wgan-gp; vae; vaegan: vae-gan, cvae-gan.
"""
from genlab.training.families import acgan, adversarial, text, vae, vaegan  # noqa: F401  (register)
