"""VAE objective: one phase that trains encoder and decoder together on the negative ELBO.

Logs ``loss_recon`` (objective.recon_loss: bce | mse, summed over pixels), ``loss_kl`` (summed over latent units)
and ``loss_total = loss_recon + objective.beta * loss_kl``, each averaged over the batch. At every sample epoch it
also writes reconstructions of a fixed real batch (``samples/recon_epoch_XXXX.png``: real, reconstruction,
real, reconstruction, ...).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from genlab.objectives.options import VAEOptions
from genlab.objectives.vae_losses import negative_elbo, reparameterize
from genlab.training.phases import OBJECTIVES, Batch, Objective, Phase, StepContext


@torch.no_grad()
def reconstruction_pairs(E: nn.Module, G: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Real images ``x`` (float in [-1, 1]) interleaved with their reconstructions (decoded means); ``y``: labels
    for conditional models."""
    modes = E.training, G.training
    E.eval()
    G.eval()
    try:
        mu, _ = E(x, y)
        rec = G(mu, y)
    finally:
        E.train(modes[0])
        G.train(modes[1])
    return torch.stack([x, rec.to(x.dtype)], dim=1).flatten(0, 1).cpu()


@OBJECTIVES.register("vae")
class VAEObjective(Objective):
    """Kingma & Welling: encode -> reparameterise -> decode; minimise recon + beta * KL."""

    opts: VAEOptions

    def optimizers(self):
        return {"G": (("E", "G"), self.cfg.train.g_opt)}

    def step(self, batch: Batch, ctx: StepContext):
        o = self.opts
        mu, logvar = ctx.nets["E"](batch.x)
        z = reparameterize(mu, logvar)
        elbo = negative_elbo(ctx.nets["G"].pre_tanh(z), batch.x,  # type: ignore[operator]  # a method of G
                             mu, logvar, o.beta, o.recon_loss)
        return elbo.total, {"loss_total": elbo.total.detach(), "loss_recon": elbo.recon.detach(),
                            "loss_kl": elbo.kl.detach()}

    def phases(self) -> list[Phase]:
        return [Phase("VAE", "G", ("E", "G"), self.step)]

    def sample_images(self, nets: Mapping[str, nn.Module], G: nn.Module, real: Batch) -> dict[str, torch.Tensor]:
        """Extra grids at sample epochs: ``real`` is the first log.num_samples / 2 training images."""
        return {"recon": reconstruction_pairs(nets["E"], G, real.x)}
