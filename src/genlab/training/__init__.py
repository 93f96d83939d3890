"""Training: phases (what one step does), one loop, checkpoints, EMA, reporting."""
from genlab.training.loop import Trainer, train
from genlab.training.phases import OBJECTIVES, Batch, Objective, Phase, StepContext

__all__ = ["Trainer", "train", "OBJECTIVES", "Batch", "Objective", "Phase", "StepContext"]
