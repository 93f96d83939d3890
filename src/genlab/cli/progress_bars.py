"""Rich progress bars for the metrics package's long work (``genlab.metrics.work_progress``): one bar per task
(training the classifier extractor, sampling + features, reference features), shown while a command runs."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from genlab.metrics.work_progress import progress_to
from genlab.progress import Progress


@contextlib.contextmanager
def metric_progress(console: Console, enabled: bool = True) -> Iterator[None]:
    """Inside the block, metric work reports to Rich bars on ``console`` (nothing when not ``enabled``, e.g.
    on ranks other than 0). A bar appears on its task's first report and stays once done."""
    if not enabled:
        yield
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), TextColumn("{task.fields[note]}"), console=console, transient=False,
                    refresh_per_second=4)
    tasks: dict[str, TaskID] = {}

    def show(task: str, done: int, total: int, note: str = "") -> None:
        if not tasks:  # started on the first report: a command that fails early prints no empty bar area
            bars.start()
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=total or None, note=note)
        bars.update(tasks[task], completed=done, total=total or None, note=note)

    try:
        with progress_to(show):
            yield
    finally:
        if tasks:
            bars.stop()
