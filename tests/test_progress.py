"""genlab's bars print their line every few seconds where Rich cannot draw (a log file, CI, nohup): long work is
never a silent minute there either; on a terminal they are Rich's bars."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

from genlab.errors import ConfigError
from genlab.progress import ENV, LOG_EVERY_S, Progress, env_log_every_s

from .conftest import tiny_overrides


def run_bar(console: Console, steps: int, pause: float, every: float) -> list[str]:
    with Progress(TextColumn("work"), BarColumn(), MofNCompleteColumn(), console=console, log_every_s=every,
                  refresh_per_second=50, transient=True) as bar:
        task = bar.add_task("work", total=steps)
        for _ in range(steps):
            time.sleep(pause)
            bar.advance(task)
    return [line for line in console.file.getvalue().splitlines() if line.strip()]


def test_a_bar_in_a_log_file_prints_its_line_every_few_seconds():
    console = Console(file=io.StringIO(), width=80)  # a file: not a terminal
    lines = run_bar(console, steps=12, pause=0.1, every=0.25)
    assert 2 <= len(lines) <= 12, lines  # 1.2 s of work, a line every 0.25 s
    done = [int(re.fullmatch(r"work\s+(\d+)/12", line).group(1)) for line in lines]
    assert done == sorted(done) and done[-1] >= 6, lines  # the count goes up, as the work did


def test_short_work_and_terminals_stay_as_rich_draws_them():
    quiet = Console(file=io.StringIO(), width=80)
    assert run_bar(quiet, steps=3, pause=0.01, every=5.0) == []  # done before the first line is due
    terminal = Console(file=io.StringIO(), width=80, force_terminal=True)
    assert Progress(console=terminal).draws and not Progress(console=quiet).draws


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert env_log_every_s() == LOG_EVERY_S == 30.0
    monkeypatch.setenv(ENV, "2.5")
    assert env_log_every_s() == 2.5 and Progress().log_every_s == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ConfigError, match=rf"^{ENV}='{bad}': the seconds between two progress lines"):
            env_log_every_s()


def test_genlab_train_into_a_log_shows_its_progress_before_the_end(tiny_fmnist, tmp_path):
    """The real executable, its output a pipe (as under nohup or a batch scheduler): bar lines come while it trains."""
    args = [a for a in tiny_overrides(tiny_fmnist, "model.name=dcgan", "train.epochs=40") if a != "log.progress=false"]
    env = {**os.environ, ENV: "0.5", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "genlab", "train", *args, "--run-dir", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    bar_lines = re.findall(r"^epoch (\d+)/40 .* step \d+/160", r.stdout, flags=re.M)
    assert len(bar_lines) >= 2, r.stdout  # more than the final line: it spoke while it trained
    epochs = [int(e) for e in bar_lines]
    assert epochs == sorted(epochs) and epochs[0] < 40, r.stdout
