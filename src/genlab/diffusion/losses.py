"""The training losses of the two processes, as pure functions of a network, a batch and the drawn noise.

The noise, the times and any pairing are arguments, so the losses are deterministic (the objectives in
``genlab.training.families.diffusion`` draw them from the run's RNG) and testable against known answers: a network
that outputs the true velocity of a straight path has zero flow-matching loss.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

from genlab.diffusion.processes import EDMProcess, FlowProcess, Net


def flow_matching_loss(net: Net, process: FlowProcess, x1: torch.Tensor, x0: torch.Tensor,
                       t: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``net(x_t, t)`` and the path's velocity ``x1 - x0`` (conditional flow matching:
    data ``x1``, noise ``x0``, times ``t`` (N,))."""
    xt, velocity = process.path(x0, x1, t)
    pred = net(xt, process.noise_label(t))
    return (pred.float() - velocity.float()).pow(2).mean()


def edm_loss(net: Net, process: EDMProcess, y: torch.Tensor, noise: torch.Tensor,
             sigma: torch.Tensor) -> torch.Tensor:
    """EDM's weighted denoising loss: ``lambda(sigma) ||D(y + sigma n; sigma) - y||^2``, averaged over pixels and
    images (the paper sums over pixels; Adam does not see the constant factor)."""
    x = y + noise * sigma.reshape(-1, *([1] * (y.ndim - 1))).to(y.dtype)
    denoised = process.denoise(net, x, sigma)
    weight = process.loss_weight(sigma.float()).reshape(-1, *([1] * (y.ndim - 1)))
    return (weight * (denoised.float() - y.float()).pow(2)).mean()


def ot_pairing(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Minibatch optimal transport (Tong et al. 2023; Pooladian et al. 2023): the order of the noise ``x0`` that
    minimises the summed squared distance to the data ``x1`` (an exact assignment, scipy's
    ``linear_sum_assignment``), so the straight paths cross less. Returns ``idx`` with ``x0[idx]`` paired to x1."""
    cost = torch.cdist(x1.detach().flatten(1).float(), x0.detach().flatten(1).float()).pow(2)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    order = torch.as_tensor(cols, dtype=torch.long)[torch.as_tensor(rows).argsort()]
    return order.to(x0.device)
