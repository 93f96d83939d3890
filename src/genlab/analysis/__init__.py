"""What a trained run learned: interpolation, latent maps, class grids, mode coverage, progress.

Each module takes a ``genlab.sampling.LoadedRun`` (or a run folder) and returns tensors, arrays or small
dataclasses; ``genlab.reporting`` draws them (analysis never imports reporting or sweeps), and
``artifacts`` names what the analysis commands keep in RUN/analysis/.
"""
