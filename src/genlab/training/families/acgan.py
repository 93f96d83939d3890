"""ACGAN (Odena et al.): the adversarial loss plus the class cross-entropy on real and fake, for D and for G."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.training.families.adversarial import AdversarialObjective, LabelConditioned
from genlab.training.phases import OBJECTIVES, Batch, StepContext


@OBJECTIVES.register("acgan")
class ACGANObjective(LabelConditioned, AdversarialObjective):
    """D: adv(real, fake) + CE(class(real), y); G: adv_G(fake) + CE(class(fake), y).

    D's class head is unconditional (D.heads(x) -> validity, class logits); G is conditioned on the labels.
    Unlike Odena et al., D's class head learns from real images only: trained on fakes with the labels they
    were drawn for, it learns whatever mapping G has at the time (while G still ignores y, or draws classes
    swapped) and then holds G to it - on a two-class toy 2 of 6 seeds ended with swapped or ignored classes.
    """

    def d_phase(self, batch: Batch, ctx: StepContext):
        D, loss = ctx.nets["D"], ctx.loss
        y = self.condition(batch, ctx)
        with torch.no_grad():
            fake = self.generate(ctx, batch.x.shape[0], y)
        v_real, c_real = D.heads(ctx.augment(batch.x))
        v_fake, c_fake = D.heads(ctx.augment(fake))
        adv = loss.d_loss(v_real, v_fake, self.opts.real_label)
        aux = F.cross_entropy(c_real, y)
        d_loss = adv + aux
        return d_loss, {
            "loss_D": d_loss.detach(), "loss_D_class": aux.detach(),
            "D(x)": loss.score(v_real.detach()).mean(), "D(G(z))": loss.score(v_fake.detach()).mean(),
            "acc_real": (c_real.detach().argmax(1) == y).float().mean(),
        }

    def g_phase(self, batch: Batch, ctx: StepContext):
        D, loss = ctx.nets["D"], ctx.loss
        y = self.condition(batch, ctx)
        v_fake, c_fake = D.heads(ctx.augment(self.generate(ctx, batch.x.shape[0], y)))
        aux = F.cross_entropy(c_fake, y)
        g_loss = loss.g_loss(v_fake) + aux
        return g_loss, {"loss_G": g_loss.detach(), "loss_G_class": aux.detach(),
                        "acc_fake": (c_fake.detach().argmax(1) == y).float().mean()}
