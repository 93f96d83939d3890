"""Training: phases (what one step does), the state a checkpoint holds, one loop with callbacks, EMA."""
from genlab.training.callbacks import Callback
from genlab.training.loop import Trainer, fit, train
from genlab.training.phases import OBJECTIVES, Batch, Objective, Phase, StepContext
from genlab.training.state import TrainState
from genlab.training.step import TrainStep

__all__ = ["Callback", "Trainer", "TrainState", "TrainStep", "fit", "train", "OBJECTIVES", "Batch", "Objective",
           "Phase", "StepContext"]
