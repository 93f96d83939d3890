"""The run's budgets (training/budget.py): the bar, its ETA, the final line of `genlab train`, status.json and the
report follow whichever of steps, epochs and minutes ends first."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.training.budget import Budget, clock

EPOCHS_2 = Budget(epochs=2, steps_per_epoch=100)  # 200 steps
MAX_STEPS = Budget(epochs=100, steps_per_epoch=100, max_steps=1250)
MINUTES = Budget(epochs=100, steps_per_epoch=100, minutes=10)  # 10,000 steps or 600 s


def test_progress_is_the_furthest_budget():
    assert EPOCHS_2.steps == 200 and MAX_STEPS.steps == 1250 and MINUTES.steps == 10_000
    assert EPOCHS_2.progress(50, 1e9) == 0.25  # no clock: seconds do not count
    assert MAX_STEPS.progress(625, 0.0) == 0.5
    assert MINUTES.progress(1000, 300.0) == 0.5  # the clock is further along than the steps (0.1)
    assert MINUTES.progress(9000, 60.0) == 0.9  # the steps are further along
    assert MINUTES.progress(1000, 601.0) == 1.0  # clipped at the end


def test_remaining_time_is_the_first_budget_to_end():
    assert EPOCHS_2.remaining_s(50, 10.0, None) is None  # no speed measured yet, no clock
    assert EPOCHS_2.remaining_s(50, 10.0, 0.2) == pytest.approx(30.0)  # 150 steps left at 0.2 s
    assert MINUTES.remaining_s(1000, 100.0, None) == pytest.approx(500.0)
    assert MINUTES.remaining_s(1000, 100.0, 0.1) == pytest.approx(500.0)  # the clock ends before 9000 steps (900 s)
    assert MINUTES.remaining_s(9900, 100.0, 0.1) == pytest.approx(10.0)  # the steps end first
    assert clock(None) == "-:--" and clock(65.4) == "1:05" and clock(3725) == "1:02:05"


def test_which_budget_ended_the_run():
    assert EPOCHS_2.ended_by(200, 2, 55.0) == "train.epochs"
    assert MAX_STEPS.ended_by(1250, 12, 55.0) == "train.max_steps"
    assert MINUTES.ended_by(4521, 45, 600.2) == "train.minutes"
    assert MINUTES.ended_by(4521, 45, 300.0) is None  # stopped before any budget ran out
    assert MINUTES.ended_by(4521, 45, None) == "train.minutes"  # seconds not recorded: the clock
    assert [b.describe(k) for b, k in ((MINUTES, "train.minutes"), (MAX_STEPS, "train.max_steps"),
                                       (EPOCHS_2, "train.epochs"), (EPOCHS_2, None))] == [
        "train.minutes=10", "train.max_steps=1250", "train.epochs=2", None]


def test_minutes_run_bar_reaches_100_percent_and_the_final_line_names_the_clock(tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    # a budget of 4000 steps that the clock (1.8 s of training) ends long before; no grids or checkpoints
    # per epoch, so the command's time is the clock's
    args = [f"data.root={tiny_fmnist}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28",
            "data.limit=128", "model.hidden_dim=8", "train.batch_size=32", "train.channels_last=false",
            "log.tensorboard=false", "train.epochs=1000", "train.minutes=0.03", "log.progress=true",
            "log.sample_every=0", "log.checkpoint_every=1000"]
    r = subprocess.run([str(Path(sys.executable).parent / "genlab"), "train", *args, "--run-dir", str(run)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "220"})
    assert r.returncode == 0, r.stdout + r.stderr
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["ended_by"] == "train.minutes=0.03", status
    assert status["step"] < 4000
    bar = [line for line in r.stdout.splitlines() if line.startswith("epoch ")][-1]
    # the bar's last render: full, with the steps done of the step budget and the clock against train.minutes
    assert " 100% " in bar and f"step {status['step']}/4000" in bar and "of train.minutes=0.03" in bar, bar
    assert re.search(r"ETA 0:00\b", bar), bar
    final = [line for line in r.stdout.splitlines() if line.startswith("finished ")]
    assert final and final[0].startswith(f"finished {status['step']} steps") and \
        "train.minutes=0.03 ran out first" in final[0], r.stdout
