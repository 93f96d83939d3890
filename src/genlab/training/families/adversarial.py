"""Adversarial objectives that differ only in what conditions G and D and how D is kept Lipschitz.

``AdversarialObjective`` (the plain "gan"): a D (critic) phase repeated ``objective.n_critic`` times, then a G
phase, with any registered loss, DiffAugment (``ctx.augment``) on everything D sees, and two switches:
``penalty`` (WGAN-GP: ``objective.grad_penalty`` times the gradient penalty on random interpolates) and ``clip``
(WGAN: clamp D's weights to ``objective.clip_value`` after each D step). Options for small datasets (GANOptions):
``objective.lecam`` (LeCam regularisation) and ``objective.ada_target`` (DiffAugment applied with an adaptive
probability, the ADA heuristic); their running state is the objective's ``state_dict``, kept in checkpoints.
What G and D are conditioned on comes from the model's Conditioning (``from_batch``: class labels, caption bags,
None); fakes are drawn with the same conditions as the real batch, so G sees the data's condition mix.
"""
from __future__ import annotations

from typing import Any

import torch

from genlab.errors import ConfigError
from genlab.objectives.diffaugment import AdaptiveAugment
from genlab.objectives.penalties import LeCamEMA, clip_weights, gradient_penalty, lecam_penalty
from genlab.training import distributed
from genlab.training.phases import OBJECTIVES, Batch, Objective, Phase, StepContext


@OBJECTIVES.register("gan")
class AdversarialObjective(Objective):
    """Unconditional GAN (the "gan" objective) and the base of every adversarial objective."""

    opts: Any  # GANOptions; WGANOptions with clip, WGANGPOptions with penalty (objectives/options.py)
    penalty: bool = False
    clip: bool = False
    lecam_ema: LeCamEMA | None = None  # objective.lecam > 0
    ada: AdaptiveAugment | None = None  # objective.ada_target > 0: ctx.augment

    # ------------------------------------------------------------------ small-data options and their state
    def context(self, nets, device, num_classes) -> StepContext:
        ctx = super().context(nets, device, num_classes)
        o = self.opts
        if getattr(o, "lecam", 0.0) > 0:
            self.lecam_ema = LeCamEMA(o.lecam_decay)
        if getattr(o, "ada_target", 0.0) > 0:
            self.ada = AdaptiveAugment(self.cfg.train.diffaugment, o.ada_target, o.ada_interval, o.ada_images,
                                       deferred=device.type == "cuda")  # no GPU sync per interval
            ctx.augment = self.ada
        return ctx

    def regularise_d(self, d_loss: torch.Tensor, real_logits: torch.Tensor, fake_logits: torch.Tensor,
                     stats: dict) -> torch.Tensor:
        """LeCam's term (against the averages so far, then updated) and ADA's observation of D on the reals."""
        if self.lecam_ema is not None:
            ema = self.lecam_ema
            lc = lecam_penalty(real_logits.float(), fake_logits.float(), ema.real.to(real_logits.device),
                               ema.fake.to(real_logits.device))
            ema.update(real_logits, fake_logits)
            d_loss = d_loss + self.opts.lecam * lc
            stats["lecam"] = lc.detach()
        if self.ada is not None:
            self.ada.observe(real_logits, distributed.mean_over_ranks if distributed.group_enabled() else None)
            # a fill, not new_tensor: a host-to-device copy from pageable memory would wait for the stream
            stats["ada_p"] = torch.full((), self.ada.p, dtype=torch.float32, device=real_logits.device)
        return d_loss

    def state_dict(self) -> dict:
        out = {}
        if self.lecam_ema is not None:
            out["lecam"] = self.lecam_ema.state_dict()
        if self.ada is not None:
            out["ada"] = self.ada.state_dict()
        return out

    def load_state_dict(self, d: dict) -> None:
        if self.lecam_ema is not None and "lecam" in d:
            self.lecam_ema.load_state_dict(d["lecam"])
        if self.ada is not None and "ada" in d:
            self.ada.load_state_dict(d["ada"])

    # ------------------------------------------------------------------ conditioning
    def condition(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """What G and D are conditioned on for this batch (None = unconditional)."""
        return self.conditioning.from_batch(batch, ctx)

    def generate(self, ctx: StepContext, n: int, c: torch.Tensor | None) -> torch.Tensor:
        return ctx.nets["G"](ctx.z(n), c)

    def score(self, ctx: StepContext, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return ctx.nets["D"](x, c)

    # ------------------------------------------------------------------ phases
    def d_phase(self, batch: Batch, ctx: StepContext):
        o, loss = self.opts, ctx.loss
        n = batch.x.shape[0]
        c = self.condition(batch, ctx)
        with torch.no_grad():
            fake = self.generate(ctx, n, c)
        real, fake = ctx.augment(batch.x), ctx.augment(fake)
        if o.merged_batch:  # one forward over real+fake: BatchNorm sees a mixed batch
            logits = self.score(ctx, torch.cat([real, fake]), self.conditioning.doubled(c))
            real_logits, fake_logits = logits[:n], logits[n:]
        else:
            real_logits, fake_logits = self.score(ctx, real, c), self.score(ctx, fake, c)
        d_loss = loss.d_loss(real_logits, fake_logits, o.real_label)
        stats = {"D(x)": loss.score(real_logits.detach()).mean(),
                 "D(G(z))": loss.score(fake_logits.detach()).mean()}
        if not loss.probabilities:  # the critic's estimate of the distance between real and fake
            stats["critic_gap"] = (real_logits.detach().mean() - fake_logits.detach().mean())
        if self.penalty:
            gp = gradient_penalty(lambda x: self.score(ctx, x, c), real, fake, o.grad_penalty, scale=ctx.loss_scale)
            d_loss = d_loss + gp
            stats["gp"] = gp.detach()
        d_loss = self.regularise_d(d_loss, real_logits, fake_logits, stats)
        stats["loss_D"] = d_loss.detach()
        return d_loss, stats

    def g_phase(self, batch: Batch, ctx: StepContext):
        c = self.condition(batch, ctx)
        fake_logits = self.score(ctx, ctx.augment(self.generate(ctx, batch.x.shape[0], c)), c)
        if ctx.loss.paired:  # relativistic: each fake against a real (D is frozen here, reals need no graph)
            with torch.no_grad():
                real_logits = self.score(ctx, ctx.augment(batch.x), c)
            g_loss = ctx.loss.g_loss(fake_logits, real_logits)
        else:
            g_loss = ctx.loss.g_loss(fake_logits)
        return g_loss, {"loss_G": g_loss.detach()}

    def double_backward(self) -> tuple[str, ...]:
        return ("D",) if self.penalty else ()

    def clip_d(self, ctx: StepContext) -> None:
        clip_weights(ctx.nets["D"], self.opts.clip_value)

    def phases(self) -> list[Phase]:
        return [
            Phase("D", "D", ("D",), self.d_phase, repeat=self.opts.n_critic,
                  after=self.clip_d if self.clip else None),
            Phase("G", "G", ("G",), self.g_phase),
        ]


@OBJECTIVES.register("wgan")
class WGANObjective(AdversarialObjective):
    """WGAN (Arjovsky et al.): critic weights clipped to objective.clip_value after every critic step."""

    clip = True


@OBJECTIVES.register("wgan-gp")
class WGANGPObjective(AdversarialObjective):
    """WGAN-GP (Gulrajani et al.): objective.grad_penalty * (||grad D(x_hat)|| - 1)^2 added to the critic loss."""

    penalty = True


def check_labels(data, num_classes: int, model: str) -> None:
    """ConfigError unless ``data`` has labels in 0..num_classes-1 (class-conditional objectives' setup)."""
    if data.labels is None or num_classes <= 0:
        raise ConfigError(f"model {model} is class-conditional but {data.name or 'the dataset'} has no labels; "
                          "use a labeled dataset or an unconditional model")
    if len(data.labels) and int(data.labels.max()) >= num_classes:
        raise ConfigError(f"model.num_classes={num_classes} but {data.name or 'the dataset'} has labels up to "
                          f"{int(data.labels.max())}; set model.num_classes=0 to take the count from the data")


class LabelConditioned:
    """Mixin: the data must have labels (the condition, batch.y, comes from the model's ClassConditioning)."""

    def setup(self, data, ctx: StepContext) -> dict:
        check_labels(data, ctx.num_classes, self.cfg.model.name)
        return {}


@OBJECTIVES.register("cgan")
class ConditionalGANObjective(LabelConditioned, AdversarialObjective):
    """Class-conditional GAN: G(z, y) and D(x, y) with the batch's labels; any loss, n_critic, DiffAugment."""
