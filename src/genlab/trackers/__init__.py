"""Experiment trackers (``log.trackers``): TensorBoard, MLflow, Weights & Biases.

Each is a :class:`~genlab.trackers.base.Tracker` registered in ``TRACKERS``; the :class:`Trackers` callback
(callback.py), which ``genlab.train`` adds to every fit, sends each of them the same things. A new tracker is a
module here with a registered ``Tracker`` subclass (its heavy package imported inside its methods, so
``import genlab`` and ``genlab --help`` stay fast) and an optional extra in pyproject.toml.
"""
from genlab.trackers import mlflow_tracker, tensorboard_tracker, wandb_tracker  # noqa: F401  (they register)
from genlab.trackers.base import TRACKERS, Tracker, TrackerStart, register_tracker
from genlab.trackers.callback import Trackers, chosen_trackers

__all__ = ["TRACKERS", "Tracker", "TrackerStart", "Trackers", "chosen_trackers", "register_tracker"]
