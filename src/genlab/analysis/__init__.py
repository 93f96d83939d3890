"""Pictures of what a trained run learned: interpolation, latent maps, class grids, mode coverage, progress.

Each module takes a ``genlab.sampling.LoadedRun`` (or a run folder) and returns tensors/arrays or figures;
nothing here trains or evaluates.
"""
