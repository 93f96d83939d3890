"""The training objectives, one family per file; importing this package registers them in OBJECTIVES.

adversarial: gan, wgan, wgan-gp, cgan; acgan; r3gan; text: text-gan, text-wgan-gp; vae; vaegan: vae-gan, cvae-gan;
diffusion: flow, edm.
"""
from genlab.config import Config
from genlab.models import MODELS
from genlab.recipe import objective_options
from genlab.training.families import acgan, adversarial, diffusion, r3gan, text, vae, vaegan  # noqa: F401  (register)
from genlab.training.phases import OBJECTIVES, Objective


def build_objective(cfg: Config) -> Objective:
    """The objective of ``cfg``'s model, with the config's objective options."""
    return OBJECTIVES.get(MODELS.get(cfg.model.name).objective)(cfg, objective_options(cfg))
