"""A run's budgets and which one ends it: steps (``train.epochs`` x steps per epoch, or ``train.max_steps`` when
smaller) and the clock (``train.minutes`` of training time, counted over resumes). The progress bar, its ETA,
the final line of `genlab train`, status.json (``ended_by``) and the report read them here, so they all follow
whichever budget ends first."""
from __future__ import annotations

from dataclasses import dataclass

from genlab.config import TrainConfig
from genlab.training.schedule import budget_steps


@dataclass(frozen=True)
class Budget:
    epochs: int  # train.epochs
    steps_per_epoch: int
    max_steps: int | None = None  # train.max_steps
    minutes: float = 0.0  # train.minutes (0 = no clock)

    @classmethod
    def of(cls, train: TrainConfig, steps_per_epoch: int) -> Budget:
        return cls(train.epochs, steps_per_epoch, train.max_steps, train.minutes)

    @property
    def steps(self) -> int:
        """The step budget: epochs x steps per epoch, or max_steps when smaller."""
        return budget_steps(self.epochs, self.steps_per_epoch, self.max_steps)

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    def progress(self, step: int, seconds: float) -> float:
        """The fraction done, in [0, 1]: of the steps or of the clock, whichever is further along."""
        done = step / max(1, self.steps)
        if self.seconds:
            done = max(done, seconds / self.seconds)
        return min(1.0, max(0.0, done))

    def remaining_s(self, step: int, seconds: float, seconds_per_step: float | None) -> float | None:
        """Training seconds left until the first budget ends: the steps left at ``seconds_per_step`` (None: not
        measured yet), or the clock's rest when that comes first. None when neither can be told."""
        left = [max(0.0, self.seconds - seconds)] if self.seconds else []
        if seconds_per_step is not None:
            left.append(max(0, self.steps - step) * seconds_per_step)
        return min(left) if left else None

    def ended_by(self, step: int, epoch: int, seconds: float | None) -> str | None:
        """The budget that ended a run at ``step`` / ``epoch`` (finished epochs) / ``seconds`` trained, as its
        config key (``train.minutes``, ``train.max_steps`` or ``train.epochs``); None when none is used up (a
        run stopped or interrupted). ``seconds`` None (not recorded): the clock when no other budget is used up."""
        if self.seconds and seconds is not None and seconds >= self.seconds:
            return "train.minutes"
        if self.max_steps and step >= self.max_steps:
            return "train.max_steps"
        if epoch >= self.epochs:
            return "train.epochs"
        if self.seconds and seconds is None:
            return "train.minutes"
        return None

    def describe(self, key: str | None) -> str | None:
        """``train.minutes=10`` for a key of :meth:`ended_by` (its value from this budget); None for None."""
        values = {"train.minutes": f"{self.minutes:g}", "train.max_steps": str(self.max_steps),
                  "train.epochs": str(self.epochs)}
        return f"{key}={values[key]}" if key in values else None


def clock(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03`` for a number of seconds; ``-:--`` when unknown."""
    if seconds is None:
        return "-:--"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"
