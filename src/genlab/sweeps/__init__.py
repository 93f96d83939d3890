"""Sweeps: a grid of config values x seeds -> one run folder per combination, run N at a time (local processes
or Ray tasks), then one results table per cell (best / mean / std over seeds).

    from genlab.sweeps import load_sweep, run_sweep, write_results
"""
from genlab.sweeps.grid import Sweep, load_sweep, parse_sweep
from genlab.sweeps.results import write_results
from genlab.sweeps.runner import EXECUTORS, make_executor, run_sweep

__all__ = ["EXECUTORS", "Sweep", "load_sweep", "make_executor", "parse_sweep", "run_sweep", "write_results"]
