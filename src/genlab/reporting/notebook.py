"""What a notebook shows for genlab's objects (IPython's ``_repr_html_`` / ``_repr_markdown_`` protocol):

- a run: what it is (model, data, step, checkpoint), its latest sample grid inline and its last evaluation;
- an evaluation result (:class:`Result`, the dict ``genlab eval`` writes): metrics with their 95% intervals and the
  protocol they were measured under;
- a comparison of runs (:class:`Comparison`): one row per run, the config keys that differ, the metrics and a
  grid of each;
- pictures as ``PIL.Image`` (which Jupyter shows inline): :func:`to_image` for image tensors, :func:`png_image`
  for a rendered figure.

Only strings and pictures are built here; the numbers come from the run folder (``records.run_evaluation``).
"""
from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from genlab.config import to_dict
from genlab.evaluation import describe_protocol, protocol_id, summary_line
from genlab.grids import make_grid, png_bytes
from genlab.reporting.metric_names import flatten, higher_is_better, is_score, pretty
from genlab.reporting.records import Evaluation, intervals_of, run_evaluation
from genlab.rundir import RunDir


def to_image(images: torch.Tensor, nrow: int | None = None, scale: int = 1) -> Image.Image:
    """Images (N, C, H, W) in [-1, 1] -> one grid picture (``nrow`` per row; ``scale``: pixel repeat)."""
    img = Image.fromarray(make_grid(images.detach().cpu(), nrow=nrow))
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def png_image(data: bytes) -> Image.Image:
    """PNG bytes (e.g. ``reporting.plots.figure_bytes`` of a figure) -> a picture Jupyter shows inline, without a
    plotting backend."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _png_tag(data: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" alt="{html.escape(alt)}"{size}>'


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _table_html(header: Sequence[str], rows: Sequence[Sequence[str]], raw: Sequence[int] = ()) -> str:
    """An HTML table; cells of the columns in ``raw`` are HTML already, the others are escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if i in raw else html.escape(c)}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table_markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows])


def metric_rows(numbers: dict[str, float], intervals: dict[str, tuple[float, float]]) -> list[list[str]]:
    """[metric, value, 95% interval, better] rows, in the order of ``numbers``."""
    return [[pretty(k), _fmt(v), (f"{_fmt(intervals[k][0])} - {_fmt(intervals[k][1])}" if k in intervals else ""),
             "higher" if higher_is_better(k) else "lower"] for k, v in numbers.items()]


METRIC_HEADER = ("metric", "value", "95% interval", "better")


class Result(dict):
    """An evaluation result: the dict `genlab eval` writes (metric names, ``protocol``), shown as a table."""

    def numbers(self) -> dict[str, float]:
        """The scores (flattened: ``kid/mean``), without bookkeeping numbers and interval ends."""
        flat = flatten(self)
        return {k: float(v) for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                and is_score(k) and not k.startswith("ci95/")}

    def intervals(self) -> dict[str, tuple[float, float]]:
        """Bootstrap 95% intervals (metric ``ci95``): {"fid": (low, high), ...}."""
        return intervals_of(flatten(self))

    def protocol_line(self) -> str:
        return describe_protocol(protocol_id(self.get("protocol")))

    def summary_line(self) -> str:
        """One human line: FID (which extractor), KID, IS, class coverage... (what `genlab eval` prints last)."""
        return summary_line(self)

    def _repr_html_(self) -> str:
        return (_table_html(METRIC_HEADER, metric_rows(self.numbers(), self.intervals()))
                + f"<p><small>protocol: {html.escape(self.protocol_line())}</small></p>")

    def _repr_markdown_(self) -> str:
        return (_table_markdown(METRIC_HEADER, metric_rows(self.numbers(), self.intervals()))
                + f"\n\nprotocol: {self.protocol_line()}")


def _latest_grid(run: RunDir) -> bytes | None:
    grids = run.sample_grids()
    return grids[-1].read_bytes() if grids else None


def run_facts(run: RunDir, cfg, step: int, epoch: int, checkpoint: Path) -> list[list[str]]:
    return [["folder", str(run.path)], ["model", cfg.model.name], ["data", f"{cfg.data.name} "
            f"{cfg.data.resolution}px/{cfg.data.channels}ch"], ["checkpoint", f"{checkpoint.name} (step {step}, "
            f"epoch {epoch})"]]


def _evaluation_html(ev: Evaluation) -> str:
    if not ev.metrics:
        return "<p><small>not evaluated yet: <code>run.evaluate(...)</code></small></p>"
    return (f"<p><b>last evaluation</b> ({html.escape(ev.source)})</p>"
            + _table_html(METRIC_HEADER, metric_rows(ev.metrics, ev.intervals))
            + f"<p><small>protocol: {html.escape(describe_protocol(ev.protocol))}</small></p>")


def run_html(run: RunDir, cfg, step: int, epoch: int, checkpoint: Path) -> str:
    """A run: its facts, latest fixed-noise grid and last evaluation, as HTML."""
    grid = _latest_grid(run)
    picture = _png_tag(grid, "latest sample grid", 240) if grid else "<p><small>no sample grid yet</small></p>"
    return (f"<div><b>genlab run</b> {html.escape(run.path.name)}"
            + _table_html(("", ""), run_facts(run, cfg, step, epoch, checkpoint)) + picture
            + _evaluation_html(run_evaluation(run.path)) + "</div>")


def run_markdown(run: RunDir, cfg, step: int, epoch: int, checkpoint: Path) -> str:
    ev = run_evaluation(run.path)
    text = f"**genlab run** {run.path.name}\n\n" + _table_markdown(("", ""), run_facts(run, cfg, step, epoch,
                                                                                           checkpoint))
    if ev.metrics:
        text += "\n\n" + _table_markdown(METRIC_HEADER, metric_rows(ev.metrics, ev.intervals))
    return text


def _flat_config(cfg) -> dict[str, Any]:
    return flatten(to_dict(cfg), sep=".")


@dataclass
class Comparison:
    """Runs side by side: the config keys that differ between them, their last evaluations, a grid of each.
    ``runs``: (label, run folder, config, sample grid PNG or None)."""

    runs: list[tuple[str, Path, Any, bytes | None]]
    keys: list[str] = field(init=False)

    def __post_init__(self) -> None:
        flats = [_flat_config(cfg) for _, _, cfg, _ in self.runs]
        names = sorted({k for f in flats for k in f} - {"name", "description"})
        self.keys = [k for k in names if len({repr(f.get(k)) for f in flats}) > 1]

    def evaluations(self) -> list[Evaluation]:
        return [run_evaluation(path) for _, path, _, _ in self.runs]

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows: run, differing config keys, metrics (value [low, high]), protocol."""
        evs = self.evaluations()
        metrics = list(dict.fromkeys(k for ev in evs for k in ev.metrics))
        header = ["run", *self.keys, *(pretty(m) for m in metrics), "protocol"]
        rows = []
        for (label, _, cfg, _), ev in zip(self.runs, evs):
            flat = _flat_config(cfg)
            cells = [label, *(str(flat.get(k)) for k in self.keys)]
            for m in metrics:
                v = ev.metrics.get(m)
                ci = ev.intervals.get(m)
                cells.append("" if v is None else _fmt(v) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
            rows.append([*cells, describe_protocol(ev.protocol) if ev.metrics else "not evaluated"])
        return header, rows

    def _repr_html_(self) -> str:
        header, rows = self.table()
        protocols = {r[-1] for r in rows if r[-1] != "not evaluated"}
        warn = ("<p><small><b>the runs were evaluated under different protocols: their numbers are not "
                "comparable</b></small></p>" if len(protocols) > 1 else "")
        grids = "".join(f"<figure style='display:inline-block;margin:4px'>{_png_tag(png, label, 200)}"
                        f"<figcaption>{html.escape(label)}</figcaption></figure>"
                        for label, _, _, png in self.runs if png)
        return f"<div>{_table_html(header, rows)}{warn}{grids}</div>"

    def _repr_markdown_(self) -> str:
        header, rows = self.table()
        return _table_markdown(header, rows)


def grid_png(images: torch.Tensor, nrow: int | None = None) -> bytes:
    return png_bytes(make_grid(images.detach().cpu(), nrow=nrow))
