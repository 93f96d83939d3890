"""Rich progress bars that also speak in a log file.

On a console that is not a terminal (output sent to a file, a CI job, a SLURM or nohup log) Rich draws nothing
until a bar stops, so a ten-minute training or a half-hour evaluation would be ten or thirty silent minutes there.
:class:`Progress` is Rich's bar, plus this: on such a console it prints the bar's current line as plain text
every ``log_every_s`` seconds (``$GENLAB_PROGRESS_EVERY``, else :data:`LOG_EVERY_S`). On a terminal or in a
notebook it is Rich's bar, unchanged. Every genlab bar (training, evaluation, sweeps and searches, downloads)
is one of these.
"""
from __future__ import annotations

import os
import time
from typing import Any

from rich.console import RenderableType
from rich.progress import Progress as RichProgress
from rich.text import Text

from genlab.errors import ConfigError

#: seconds between two lines of a bar on a console that is not a terminal (``$GENLAB_PROGRESS_EVERY`` changes it)
LOG_EVERY_S = 30.0
ENV = "GENLAB_PROGRESS_EVERY"


def env_log_every_s() -> float:
    """``$GENLAB_PROGRESS_EVERY`` seconds, else :data:`LOG_EVERY_S`; a value that is not a number > 0 is refused."""
    raw = os.environ.get(ENV)
    if raw is None or not raw.strip():
        return LOG_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{ENV}={raw!r}: the seconds between two progress lines in a log, a number > 0; unset it "
                          f"for the default ({LOG_EVERY_S:g})")
    return value


class Progress(RichProgress):
    """``rich.progress.Progress`` that prints its line every ``log_every_s`` seconds where it cannot draw."""

    def __init__(self, *columns: Any, log_every_s: float | None = None, **kwargs: Any):
        self.log_every_s = env_log_every_s() if log_every_s is None else log_every_s
        self._logged_at: float | None = None
        super().__init__(*columns, **kwargs)  # Rich's Live calls get_renderable once while it is built

    @property
    def draws(self) -> bool:
        """Whether Rich draws the bar live here (a terminal that is not dumb, or a notebook)."""
        console = self.console
        return console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal)

    def log_text(self) -> str:
        """The bar as plain text, a line per visible task: its columns' text without the bar itself, whole (a log
        has no right edge, so nothing is cut to the console's 80 columns)."""
        lines = []
        for task in self.tasks:
            if not task.visible:
                continue
            parts = [column.format(task=task) if isinstance(column, str) else column(task) for column in self.columns]
            text = (part.plain if isinstance(part, Text) else part for part in parts if isinstance(part, (str, Text)))
            lines.append("  ".join(t.strip() for t in text if t.strip()))
        return "\n".join(lines)

    def get_renderable(self) -> RenderableType:
        # Rich's refresh thread calls this a few times a second while the bar is started, drawn or not
        renderable = super().get_renderable()
        live = getattr(self, "live", None)
        if live is not None and live.is_started and not self.draws:
            now = time.monotonic()
            if self._logged_at is None:
                self._logged_at = now  # the first line after log_every_s: short work stays quiet
            elif now - self._logged_at >= self.log_every_s:
                self._logged_at = now
                self.console.print(self.log_text(), markup=False, highlight=False, soft_wrap=True)
        return renderable

    def stop(self) -> None:
        """Rich's stop; where it cannot draw, the last line is this class's whole line (not Rich's render cut to
        the console's width, then an empty line), and nothing for a transient bar, as Rich."""
        if self.draws or not self.live.is_started or self.live.transient:
            super().stop()
            return
        self.live.transient = True  # Rich would print its own last render
        try:
            self.live.stop()
        finally:
            self.live.transient = False
        self.console.print(self.log_text(), markup=False, highlight=False, soft_wrap=True)
