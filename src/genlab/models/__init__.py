"""Networks, one family per file; the registry maps names to builders. Networks know nothing of training."""
from genlab.models.registry import MODELS, DataShape, ModelSpec, register_model
from genlab.models import mlp, dcgan  # noqa: F401  (register)
from genlab.models import acgan, conditional, textcond, vae, vaegan, wgan  # noqa: F401,E402  (register)

__all__ = ["MODELS", "DataShape", "ModelSpec", "register_model"]
