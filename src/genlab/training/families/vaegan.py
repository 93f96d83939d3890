"""VAE-GAN (Larsen et al.) and CVAE-GAN: three phases, D then E then G, one optimizer each.

- D: ``loss(D(x), D([x_rec, x_prior]))`` with x_rec = G(E(x)) and x_prior = G(z ~ N(0, I)).
- E: feature reconstruction ``||D.features(x) - D.features(x_rec)||^2`` + ``objective.beta`` * KL.
- G: ``objective.recon_weight`` * the same feature reconstruction + the adversarial G loss on [x_rec, x_prior].

Both the feature term and the KL are per-unit means (over D's feature units and the latent units), so their
balance does not move with image or latent size. The conditional form passes the batch's labels to E, G and D.
E and G use ``train.g_opt``; D uses ``train.d_opt``.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from genlab.objectives.options import VAEGANOptions
from genlab.objectives.vae_losses import kl_divergence, reparameterize
from genlab.training.families.adversarial import LabelConditioned
from genlab.training.families.vae import reconstruction_pairs
from genlab.training.phases import OBJECTIVES, Batch, Objective, Phase, StepContext


def feature_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between D's features of the real images (a fixed target) and reconstructions."""
    return (fake_features - real_features.detach()).pow(2).mean()


@OBJECTIVES.register("vae-gan")
class VAEGANObjective(Objective):
    opts: VAEGANOptions

    def optimizers(self):
        t = self.cfg.train
        return {"D": (("D",), t.d_opt), "E": (("E",), t.g_opt), "G": (("G",), t.g_opt)}

    def condition(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """The batch's labels for CVAE-GAN, None for VAE-GAN (the model's conditioning decides)."""
        return self.conditioning.from_batch(batch, ctx)

    def d_phase(self, batch: Batch, ctx: StepContext):
        E, G, D, loss = ctx.nets["E"], ctx.nets["G"], ctx.nets["D"], ctx.loss
        c = self.condition(batch, ctx)
        with torch.no_grad():
            mu, logvar = E(batch.x, c)
            fakes = torch.cat([G(reparameterize(mu, logvar), c), G(ctx.z(len(mu)), c)])
        real_logits = D(ctx.augment(batch.x), c)
        fake_logits = D(ctx.augment(fakes), self.conditioning.doubled(c))
        d_loss = loss.d_loss(real_logits, fake_logits, self.opts.real_label)
        return d_loss, {"loss_D": d_loss.detach(), "D(x)": loss.score(real_logits.detach()).mean(),
                        "D(G(z))": loss.score(fake_logits.detach()).mean()}

    def e_phase(self, batch: Batch, ctx: StepContext):
        E, G, D = ctx.nets["E"], ctx.nets["G"], ctx.nets["D"]
        c = self.condition(batch, ctx)
        mu, logvar = E(batch.x, c)
        z = reparameterize(mu, logvar)
        ctx.cache["z"] = z.detach()
        with torch.no_grad():
            target = D.features(batch.x, c)
        feat = feature_distance(target, D.features(G(z, c), c))
        kl = kl_divergence(mu, logvar).mean() / mu.shape[1]
        e_loss = feat + self.opts.beta * kl
        ctx.cache["target"] = target
        return e_loss, {"loss_E": e_loss.detach(), "loss_kl": kl.detach(), "loss_feature": feat.detach()}

    def g_phase(self, batch: Batch, ctx: StepContext):
        G, D, loss = ctx.nets["G"], ctx.nets["D"], ctx.loss
        c = self.condition(batch, ctx)
        z = ctx.cache["z"]
        rec = G(z, c)
        prior = G(ctx.z(len(z)), c)
        feat = feature_distance(ctx.cache["target"], D.features(rec, c))
        adv = loss.g_loss(D(ctx.augment(torch.cat([rec, prior])), self.conditioning.doubled(c)))
        g_loss = self.opts.recon_weight * feat + adv
        return g_loss, {"loss_G": g_loss.detach(), "loss_G_adv": adv.detach()}

    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", ("D",), self.d_phase, repeat=self.opts.n_critic),
            Phase("E", "E", ("E",), self.e_phase),
            Phase("G", "G", ("G",), self.g_phase),
        ]

    def sample_images(self, nets: Mapping[str, nn.Module], G: nn.Module, real: Batch) -> dict[str, torch.Tensor]:
        return {"recon": reconstruction_pairs(nets["E"], G, real.x)}


@OBJECTIVES.register("cvae-gan")
class CVAEGANObjective(LabelConditioned, VAEGANObjective):
    """VAE-GAN with the batch's class labels given to E, G and D (Bao et al.'s CVAE-GAN without its classifier)."""

    def sample_images(self, nets: Mapping[str, nn.Module], G: nn.Module, real: Batch) -> dict[str, torch.Tensor]:
        return {"recon": reconstruction_pairs(nets["E"], G, real.x, real.y)}
