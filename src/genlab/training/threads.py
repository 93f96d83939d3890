"""The thread governor of a training run: :class:`genlab.threads.Governor` driven by the loop's events, with each
change noted in the next record (``threads``, ``threads_changed``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from genlab.threads import Governor
from genlab.training.callbacks import Callback

if TYPE_CHECKING:
    from genlab.training.loop import Trainer


class ThreadGovernor(Governor, Callback):
    """Fewer CPU threads while other programs keep cores busy, every core again once they are free."""

    # ------------------------------------------------------------------------------------- events
    def on_fit_start(self, trainer: Trainer) -> None:
        self.last = None

    def on_step_end(self, trainer: Trainer) -> None:
        self.tick()

    def on_record(self, trainer: Trainer, record: dict) -> None:
        if "time/images_per_s" in record:
            record["threads"] = self.threads
            if self.changes:
                record["threads_changed"] = "; ".join(self.changes)
                self.changes = []
