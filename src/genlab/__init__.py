"""genlab: train, evaluate and compare image generative models (GANs and VAEs)."""

__version__ = "0.1.0"
