"""Networks, one family per file; the registry maps names to builders. Networks know nothing of training."""
from genlab.models import acgan, conditional, dcgan, mlp, resnet, textcond, unet, vae, vaegan, wgan  # noqa: F401  (register)  # noqa: F401,E402  (register)
from genlab.models.registry import MODELS, DataShape, ModelSpec, register_model

__all__ = ["MODELS", "DataShape", "ModelSpec", "register_model"]
