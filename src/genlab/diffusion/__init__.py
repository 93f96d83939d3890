"""Flow matching and diffusion maths, apart from any network: noise processes, ODE solvers, samplers and losses.

- ``processes``: rectified flow (``flow``) and EDM (``edm``): how training noises a batch, and the ODE that carries
  noise to images (its time grid, start and derivative);
- ``solvers``: Euler and Heun on a time grid (``SOLVERS``);
- ``sampler``: ``ODESampler`` (a process, a solver, a step count and a guidance scale) and ``OneStep`` (a GAN's or
  VAE's generator: one call), both ``sampler(net, z, cond, uncond) -> images``;
- ``losses``: the flow-matching and EDM losses and minibatch optimal-transport pairing.

Networks reach this package only as callables; it imports no model, no training and no run folder (diffusers'
split of models, schedulers and pipelines). ``genlab.recipe.image_sampler`` composes a config's sampler.
"""
from genlab.diffusion.processes import PROCESSES, EDMProcess, FlowProcess, Process
from genlab.diffusion.sampler import ImageSampler, ODESampler, OneStep
from genlab.diffusion.solvers import SOLVERS, Solver

__all__ = ["PROCESSES", "SOLVERS", "EDMProcess", "FlowProcess", "ImageSampler", "ODESampler", "OneStep", "Process",
           "Solver"]
