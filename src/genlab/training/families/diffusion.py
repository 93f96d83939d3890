"""Flow matching and EDM diffusion: one phase each, which trains the U-Net G on a denoising loss.

``flow`` (rectified flow / conditional flow matching): noise ``x_0 ~ N(0, I)`` (with ``objective.ot_pairing``,
reordered by minibatch optimal transport to the batch), times ``t`` (``objective.time_sampling``), the loss
``||G(x_t, t) - (x_1 - x_0)||^2`` (``genlab.diffusion.losses.flow_matching_loss``).
``edm`` (Karras et al. 2022): noise levels ``ln(sigma) ~ N(p_mean, p_std^2)``, the preconditioned denoiser and
the loss weight of the paper (``edm_loss``).

Both log ``loss`` (the curves and the divergence check read it). Class-conditional models replace each label by
"no label" with probability ``objective.label_dropout`` (classifier-free guidance). Every random draw comes from
the run's RNG, so a resumed run draws the same noise. How the trained G draws images is not the objective's
business: ``genlab.recipe.image_sampler`` composes the ODE sampler.
"""
from __future__ import annotations

import torch

from genlab.diffusion import PROCESSES
from genlab.diffusion.losses import edm_loss, flow_matching_loss, ot_pairing
from genlab.diffusion.processes import EDMProcess, FlowProcess
from genlab.objectives.options import DenoisingOptions, FlowOptions
from genlab.training.families.adversarial import check_labels
from genlab.training.phases import OBJECTIVES, Batch, Objective, Phase, StepContext


class DenoisingObjective(Objective):
    """The part flow matching and EDM share: G alone, its optimizer, the conditions with label dropout."""

    opts: DenoisingOptions
    process_name = ""

    def __init__(self, cfg, opts):
        super().__init__(cfg, opts)
        self.process = PROCESSES.get(self.process_name).from_options(vars(opts))

    def optimizers(self):
        return {"G": (("G",), self.cfg.train.g_opt)}

    def setup(self, data, ctx: StepContext) -> dict:
        if self.conditioning.takes_labels:
            check_labels(data, ctx.num_classes, self.cfg.model.name)
        return {}

    def condition(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """The batch's conditions, each dropped (-> "no condition") with probability objective.label_dropout."""
        c = self.conditioning.from_batch(batch, ctx)
        p = self.opts.label_dropout
        if c is None or p <= 0:
            return c
        return self.conditioning.without(c, torch.rand(len(c), device=c.device) < p)

    def loss(self, batch: Batch, ctx: StepContext, net) -> torch.Tensor:
        raise NotImplementedError

    def step(self, batch: Batch, ctx: StepContext):
        G = ctx.nets["G"]
        c = self.condition(batch, ctx)
        loss = self.loss(batch, ctx, lambda x, s: G(x, s, c))
        return loss, {"loss": loss.detach()}

    def phases(self) -> list[Phase]:
        return [Phase("G", "G", ("G",), self.step)]


@OBJECTIVES.register("flow")
class FlowObjective(DenoisingObjective):
    """Conditional flow matching on straight paths (options: FlowOptions)."""

    process: FlowProcess
    opts: FlowOptions
    process_name = "flow"

    def loss(self, batch: Batch, ctx: StepContext, net) -> torch.Tensor:
        x1 = batch.x
        x0 = torch.randn_like(x1)
        if self.opts.ot_pairing:
            x0 = x0[ot_pairing(x0, x1)]
        t = self.process.sample_time(len(x1), x1.device)
        return flow_matching_loss(net, self.process, x1, x0, t)


@OBJECTIVES.register("edm")
class EDMObjective(DenoisingObjective):
    """EDM's preconditioned denoiser, log-normal noise levels and loss weighting (options: EDMOptions)."""

    process: EDMProcess
    process_name = "edm"

    def loss(self, batch: Batch, ctx: StepContext, net) -> torch.Tensor:
        y = batch.x
        sigma = self.process.sample_sigma(len(y), y.device)
        return edm_loss(net, self.process, y, torch.randn_like(y), sigma)
