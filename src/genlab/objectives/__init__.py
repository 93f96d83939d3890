"""Losses and penalties: small objects and pure functions, no training loop."""
from genlab.objectives.gan_losses import LOSSES, GANLoss

__all__ = ["LOSSES", "GANLoss"]
