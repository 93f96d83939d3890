"""R3GAN (Huang et al. 2024, "The GAN is dead; long live the GAN!"): the relativistic pairing loss with
zero-centred gradient penalties on the reals (R1) and on the fakes (R2).

D's phase: ``softplus(-(D(x) - D(G(z))))`` (``train.loss=relativistic``) plus, on every ``objective.reg_every``-th
step (lazy regularisation, StyleGAN2), ``reg_every * gamma / 2 * (R1 + R2)`` on the images D saw (after
DiffAugment). With ``n_critic`` > 1 the penalties come with the first D update of such a step. G's phase is the
adversarial one with the loss paired against the real batch. The records' ``r1`` and ``r2`` are ``reg_every``
times the penalties on regularised steps and 0 on the others, so a window's mean estimates E[R1] and E[R2].
"""
from __future__ import annotations

import torch

from genlab.objectives.penalties import zero_centered_penalty
from genlab.training.families.adversarial import AdversarialObjective
from genlab.training.phases import OBJECTIVES, Batch, StepContext


@OBJECTIVES.register("r3gan")
class R3GANObjective(AdversarialObjective):
    """Relativistic pairing loss + lazy R1 and R2 (options: R3GANOptions)."""

    def regularises(self, ctx: StepContext) -> bool:
        """Whether this D update carries the penalties: the first one of every ``reg_every``-th step."""
        o = self.opts
        if o.gamma == 0 or ctx.step % o.reg_every or ctx.cache.get("r3gan_regularised"):
            return False
        ctx.cache["r3gan_regularised"] = True
        return True

    def double_backward(self) -> tuple[str, ...]:
        return ("D",) if self.opts.gamma else ()  # R1 and R2 differentiate D's input gradients

    def d_phase(self, batch: Batch, ctx: StepContext):
        o, loss = self.opts, ctx.loss
        assert loss is not None, "R3GAN trains with a GAN loss"
        n = batch.x.shape[0]
        c = self.condition(batch, ctx)
        reg = self.regularises(ctx)
        with torch.no_grad():
            fake = self.generate(ctx, n, c)
        real = ctx.augment(batch.x).detach().requires_grad_(reg)
        fake = ctx.augment(fake).detach().requires_grad_(reg)
        real_logits, fake_logits = self.score(ctx, real, c), self.score(ctx, fake, c)
        d_loss = loss.d_loss(real_logits, fake_logits)
        stats = {"D(x)": real_logits.detach().mean(), "D(G(z))": fake_logits.detach().mean(),
                 "critic_gap": real_logits.detach().mean() - fake_logits.detach().mean()}
        if reg:
            r1 = zero_centered_penalty(real_logits, real, ctx.loss_scale)
            r2 = zero_centered_penalty(fake_logits, fake, ctx.loss_scale)
            d_loss = d_loss + (o.reg_every * o.gamma / 2) * (r1 + r2)
            ctx.cache["r3gan_r1"], ctx.cache["r3gan_r2"] = r1.detach() * o.reg_every, r2.detach() * o.reg_every
        # every D update reports the same keys (the step's, also after its regularised update); 0 on steps without
        zero = real_logits.new_zeros((), dtype=torch.float32)
        stats["r1"], stats["r2"] = ctx.cache.get("r3gan_r1", zero), ctx.cache.get("r3gan_r2", zero)
        d_loss = self.regularise_d(d_loss, real_logits, fake_logits, stats)
        stats["loss_D"] = d_loss.detach()
        return d_loss, stats
