"""Why a fit stops (loop.stop_reason): the one decision, reason by reason, and what DDP ranks may decide alone."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from genlab.training.loop import stop_reason


def trainer(minutes=0.0, max_steps=None, step=10, stop_requested=False):
    return SimpleNamespace(cfg=SimpleNamespace(train=SimpleNamespace(minutes=minutes, max_steps=max_steps)),
                           state=SimpleNamespace(step=step), stop_requested=stop_requested)


@pytest.mark.parametrize("t, signalled, seconds, expected", [
    (trainer(), False, 1e9, None),  # no budget but epochs: go on (the epoch loop ends the run)
    (trainer(), True, 0.0, "interrupted"),
    (trainer(minutes=1.0), False, 59.9, None),
    (trainer(minutes=1.0), False, 60.0, "out of time"),
    (trainer(minutes=1.0, max_steps=10), True, 60.0, "interrupted"),  # a signal first: checkpoint and exit 130
    (trainer(minutes=1.0, max_steps=10), False, 60.0, "out of time"),  # then the clock (the final epoch end)
    (trainer(max_steps=10, stop_requested=True), False, 0.0, "stopped"),
    (trainer(max_steps=10), False, 0.0, "max steps"),
    (trainer(max_steps=11), False, 0.0, None),
])
def test_each_reason_in_its_order(t, signalled, seconds, expected):
    assert stop_reason(t, signalled, seconds) == expected


def test_between_ddp_windows_only_what_every_rank_sees_counts():
    t = trainer(minutes=1.0, max_steps=10)
    assert stop_reason(t, True, 120.0, decided=False) == "max steps"  # the signal and clock wait for the window
    assert stop_reason(trainer(minutes=1.0), True, 120.0, decided=False) is None
    assert stop_reason(trainer(stop_requested=True), True, 0.0, decided=False) == "stopped"
