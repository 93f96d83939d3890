"""The public Python API: train, load, sample, interpolate, evaluate and plot from a notebook or a script.

    import genlab
    run = genlab.train("configs/demo_fashion_mnist_dcgan.yaml", ["train.epochs=1"], run_dir="runs/demo")
    images = run.sample(16, seed=3)                  # float (16, C, H, W) in [-1, 1]
    run = genlab.load_run("runs/demo", checkpoint="best")
    result = genlab.evaluate("runs/demo", metrics="fid", num_samples=2000)
    summary = genlab.search("configs/searches/demo_lr_betas.yaml", out="searches/demo")

Every call goes through the library function the CLI uses (``training.loop.train``, ``sampling.load_run``,
``evaluation.evaluate_loaded``, ``analysis.interpolation``, ``reporting.plots``), so a notebook and the
command line give the same numbers. ``import genlab`` stays cheap: this module is imported on first use of
one of its names (``genlab.__getattr__``).
"""
from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch
from PIL import Image

from genlab.analysis.interpolation import interpolate, seed_latents
from genlab.config import Config, to_dict
from genlab.data.base import to_uint8
from genlab.device import resolve_device
from genlab.errors import ConfigError, GenlabError
from genlab.evaluation import (
    EvalRequest,
    TrainingEval,
    check_eval_target,
    evaluate_loaded,
)
from genlab.grids import save_grid
from genlab.io import atomic_write_bytes, atomic_write_text
from genlab.memory import check_fits
from genlab.metrics import DatasetRef
from genlab.objectives import LOSSES
from genlab.recipe import load_config
from genlab.reporting.notebook import Comparison, Result, grid_png, png_image, run_html, run_markdown, to_image
from genlab.resume import resume_config
from genlab.rundir import RunDir, check_output_file
from genlab.sampling import LoadedRun, Truncation, as_truncation, sample_prompt
from genlab.sampling import load_run as _load_run
from genlab.scoring import is_export, score
from genlab.trackers import Trackers
from genlab.training import distributed
from genlab.training.callbacks import Callback
from genlab.training.loop import train as train_loop

if TYPE_CHECKING:  # annotations only: the search module loads Optuna's helpers on first use
    from genlab.sweeps.search import SearchSummary

PathLike = Union[str, Path]
#: metrics: names (``"fid"``), a comma-separated string (``"fid,kid"``) or a sequence of names
Metrics = Union[str, Sequence[str]]


@dataclass
class Run:
    """A trained run folder with one checkpoint loaded: what ``genlab.train`` and ``genlab.load_run`` return."""

    loaded: LoadedRun  # the sampler every genlab command shares (networks, config, checkpoint step)

    # ------------------------------------------------------------------------------------ what it is
    @property
    def path(self) -> Path:
        return self.loaded.run.path

    @property
    def cfg(self) -> Config:
        return self.loaded.cfg

    @property
    def step(self) -> int:
        return self.loaded.step

    @property
    def epoch(self) -> int:
        return self.loaded.epoch

    @property
    def checkpoint(self) -> Path:
        return self.loaded.checkpoint

    @property
    def generator(self) -> torch.nn.Module:
        """The network that draws images: the EMA copy when the run kept one, else G."""
        return self.loaded.generator

    @property
    def num_classes(self) -> int:
        return self.loaded.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.loaded.class_names

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, model={self.cfg.model.name!r}, step={self.step}, epoch={self.epoch}, "
                f"checkpoint={self.checkpoint.name!r})")

    # in a notebook: what it is, its latest grid and its last evaluation (genlab.reporting.notebook)
    def _repr_html_(self) -> str:
        return run_html(self.loaded.run, self.cfg, self.step, self.epoch, self.checkpoint)

    def _repr_markdown_(self) -> str:
        return run_markdown(self.loaded.run, self.cfg, self.step, self.epoch, self.checkpoint)
    def with_sampling(self, steps: int | None = None, solver: str | None = None,
                      guidance: float | None = None) -> Run:
        """This run drawing with another number of ODE steps, solver (euler | heun) or classifier-free guidance
        scale (flow and diffusion models; None keeps the run's default, ``objective.steps`` etc.). Every image,
        evaluation and interpolation of the returned run uses it; a GAN or VAE refuses (a ConfigError)."""
        return Run(self.loaded.with_sampling(steps, solver, guidance))

    # ------------------------------------------------------------------------------------ images
    def sample(self, n: int = 64, seed: int = 0, labels: Sequence[int] | None = None,
               prompt: str | None = None, batch_size: int = 256,
               log: Callable[[str], None] = print, truncation: float | Truncation | None = None,
               truncation_mode: str = "resample", steps: int | None = None, solver: str | None = None,
               guidance: float | None = None) -> torch.Tensor:
        """``n`` images (float, (n, C, H, W), in [-1, 1]) from seeded latents: the images `genlab sample`
        draws. ``labels`` (class-conditional models) are cycled; ``prompt`` is a caption for text models
        (``log`` names the words of it the model does not know). ``truncation``: psi > 0, latents kept inside
        it (``truncation_mode`` resample | interp; see ``genlab.sampling``). ``steps`` / ``solver`` /
        ``guidance``: flow and diffusion models (see :meth:`with_sampling`)."""
        if n <= 0:
            raise ConfigError(f"n={n} is not allowed: a positive number of images")
        d = self.cfg.data
        check_fits(8 * n * d.channels * d.resolution ** 2, f"{n:,} images of {d.resolution}px",
                   "draw fewer at a time (-n)")
        trunc = as_truncation(truncation, truncation_mode)
        loaded = self.loaded.with_sampling(steps, solver, guidance)
        if prompt is not None:
            return sample_prompt(loaded, prompt, n, seed, log=log, truncation=trunc)
        return loaded.sample(n, seed=seed, labels=list(labels) if labels else None, batch_size=batch_size,
                             truncation=trunc)

    def interpolate(self, seeds: Sequence[int] = (0, 1), steps: int = 10, method: str = "slerp",
                    label: int | None = None) -> torch.Tensor:
        """Images along a path through the latents of ``seeds`` (``slerp`` or ``lerp``), ends included:
        ``1 + (len(seeds) - 1) * (steps - 1)`` frames, as `genlab interpolate --seeds` draws them."""
        return interpolate(self.loaded, seed_latents(self.loaded, seeds), steps=steps, method=method, label=label)

    def grid(self, n: int = 64, seed: int = 0, nrow: int | None = None, **sample_options: Any) -> Image.Image:
        """The images of ``sample(n, seed, ...)`` as one picture (a notebook shows it inline)."""
        return to_image(self.sample(n, seed=seed, **sample_options), nrow=nrow)

    def save_grid(self, images: torch.Tensor, path: PathLike, nrow: int | None = None) -> Path:
        """Images in [-1, 1] -> one grid image (.png, .jpg/.jpeg or .webp; ``nrow`` images per row; default:
        about square)."""
        check_output_file(path, (".png", ".jpg", ".jpeg", ".webp"), "path")
        save_grid(images, Path(path), nrow=nrow)
        return Path(path)

    def save_images(self, images: torch.Tensor, folder: PathLike, prefix: str = "sample") -> Path:
        """Images in [-1, 1] -> one PNG per image in ``folder`` (e.g. for ``genlab.evaluate(folder, against=...)``)."""
        return save_images(images, folder, prefix)

    # ------------------------------------------------------------------------------------ numbers and plots
    def metrics_for(self, request: EvalRequest) -> tuple[str, ...]:
        """The metrics ``evaluate(request=request)`` measures: the request's, else the run's defaults; checked
        (conditional metrics of a run that draws no classes are refused with one line, before any work)."""
        return request.metrics_for(self.loaded)

    def evaluate(self, metrics: Metrics | None = None, num_samples: int | None = None, *,
                 request: EvalRequest | None = None, **fields: Any) -> Result:
        """Metrics of this checkpoint's generator against the run's dataset split (the result `genlab eval`
        prints: top-level keys are the metric names, plus ``protocol``), as ``request`` asks, else
        ``EvalRequest.of(metrics, num_samples, **fields)``: ``features``, ``split``, ``seed``, ``batch_size``,
        ``inception_weights`` (the extractor's weights file), ``verify``, ``truncation`` / ``truncation_mode``,
        ``protocol``, ``reference_stats``, ``options`` (``EvalOptions``), ``steps`` / ``solver`` / ``guidance`` and
        ``out`` (see :class:`genlab.evaluation.EvalRequest`).

        ``metrics`` None: the run's defaults, those `genlab eval` measures (``evaluation.run_default_metrics``:
        ``DEFAULT_METRICS`` and ``copies``, plus ``rfid`` and ``recon`` for the VAE family; those a statistics file
        allows with ``reference_stats``). ``features``, ``num_samples``, ``split`` None: the ``protocol``'s
        (``genlab``: auto, 10,000, test; ``paper``: inception, 50,000, train, the legacy resize). ``out``: also
        write the result there as JSON (the run's ``eval.json`` is left alone unless ``out`` names it; naming it for
        a checkpoint of another run is refused with a RunError, before anything is computed). Under torchrun every
        rank computes its shard and rank 0 writes."""
        if request is None:
            request = EvalRequest.of(metrics, num_samples, **fields)
        elif metrics is not None or num_samples is not None or fields:
            raise ConfigError("give the evaluation as request= or as arguments, not both")
        check_eval_target(self.loaded, request.out)
        result = evaluate_loaded(self.loaded, request)
        if request.out is not None and distributed.collective().rank == 0:
            self.loaded.run.write_eval(result, request.out)
        return Result(result)  # a dict that a notebook shows as a table

    def plot_curves(self, path: PathLike | None = None, smoothing: float = 0.9, svg: bool = True) -> list[Path]:
        """The loss curves of `genlab plot curves` -> PNG (+ SVG); default path RUN/analysis/curves.png."""
        # matplotlib is loaded only when a figure is asked for (not a cycle: import speed)
        from genlab.reporting.plots import plot_losses, save_figure
        from genlab.reporting.records import read_records

        if path is not None:
            check_output_file(path, (".png",), "path")
            if svg:
                check_output_file(Path(path).with_suffix(".svg"), (".svg",), "path")
        fig = plot_losses(read_records(self.path).train, title=self.path.name, smoothing=smoothing,
                          d_probabilities=LOSSES.get(self.loaded.cfg.train.loss).probabilities)
        return save_figure(fig, Path(path) if path is not None else self.loaded.run.artifact("curves.png"), svg=svg)

    def curves(self, smoothing: float = 0.9) -> Image.Image:
        """The loss curves of `genlab plot curves` as a picture (a notebook shows it inline; nothing is written)."""
        from genlab.reporting.plots import figure_bytes, plot_losses  # matplotlib only when a figure is asked for
        from genlab.reporting.records import read_records

        fig = plot_losses(read_records(self.path).train, title=self.path.name, smoothing=smoothing)
        return png_image(figure_bytes(fig, "png", dpi=100))

    def records(self) -> list[dict]:
        """Every record of metrics.jsonl (training windows and evaluations), in order."""
        return self.loaded.run.read_records()


def save_images(images: torch.Tensor, folder: PathLike, prefix: str = "sample") -> Path:
    """Images (N, C, H, W) in [-1, 1] -> ``folder/<prefix>_000000.png`` ... (grayscale or RGB PNGs)."""
    out = Path(folder)
    check_output_file(out / f"{prefix}_000000.png", (".png",), "folder")
    arrays = to_uint8(images.cpu()).permute(0, 2, 3, 1).numpy()
    for i, arr in enumerate(arrays):
        buf = io.BytesIO()
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(buf, format="PNG")
        atomic_write_bytes(out / f"{prefix}_{i:06d}.png", buf.getvalue())
    return out


def compare(*runs: Run | PathLike, n: int = 16, seed: int = 0) -> Comparison:
    """Runs (Run objects or run folders) side by side: the config keys that differ, their last evaluations
    (eval.json, else the last evaluation record; with intervals and protocol) and ``n`` samples of each from
    latent ``seed``. A notebook shows it as a table and grids."""
    if not runs:
        raise ConfigError("compare() needs at least one run")
    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    return Comparison([(r.path.name, r.path, r.cfg, grid_png(r.sample(n, seed=seed))) for r in loaded])


def load_run(path: PathLike, checkpoint: str = "last", device: str = "auto") -> Run:
    """A run folder and which checkpoint (``last`` | ``best`` | a path) -> a :class:`Run` in eval mode on ``device``
    (``auto``: CUDA, then MPS, then the CPU)."""
    return Run(_load_run(path, checkpoint, device))


def _config_of(recipe: PathLike | Config | None, overrides: Sequence[str]) -> Config:
    if isinstance(recipe, Config):
        return load_config(None, list(overrides), base=to_dict(recipe))  # validated again with the overrides
    return load_config(recipe, list(overrides))


def default_run_dir(cfg: Config, recipe: PathLike | Config | None) -> Path:
    """runs/<recipe name> (the name, else the recipe file's stem), numbered -1, -2, ... when it exists."""
    stem = cfg.name or (Path(recipe).stem if recipe is not None and not isinstance(recipe, Config) else "run")
    base = Path("runs") / (re.sub(r"[^A-Za-z0-9_.-]+", "-", stem) or "run")
    candidate, i = base, 0
    while candidate.exists():
        i += 1
        candidate = base.parent / f"{base.name}-{i}"
    return candidate


def train(recipe: PathLike | Config | None, overrides: Sequence[str] = (), run_dir: PathLike | None = None,
          *, overwrite: bool = False, resume: bool = False, evaluate: bool = True,
          log: Callable[[str], None] = print, device: str = "auto", callbacks: Sequence[Callback] = ()) -> Run:
    """Train a recipe (a YAML path or a :class:`~genlab.config.Config`) with dotted ``overrides``, as
    `genlab train` does, and return the finished run with its last checkpoint loaded.

    run_dir: the run folder (default: runs/<recipe name>, numbered when taken). overwrite: replace an existing
    folder. resume: continue ``run_dir`` where it stopped (``recipe`` may be None; only keys that keep the resume
    exact may change, e.g. ``train.epochs``). evaluate: run the recipe's ``eval.every`` evaluations (and keep
    best.pt). log: where progress lines go. device: where the returned run is loaded (training uses
    ``train.device``). callbacks: your own :class:`genlab.Callback` objects (``on_record``, ``on_image``,
    ``on_fit_end``, ...: see ``genlab.training.callbacks``), run after the standard ones, the trackers of
    ``log.trackers`` and the evaluations.
    """
    if resume:
        if run_dir is None:
            raise ConfigError("resume=True needs run_dir: the run folder to continue")
        if isinstance(recipe, Config):
            raise ConfigError("resume=True takes the run's saved config plus overrides; pass recipe=None")
        cfg = resume_config(RunDir.of(run_dir), list(overrides), str(recipe) if recipe is not None else None)
        target = Path(run_dir)
    else:
        cfg = _config_of(recipe, overrides)
        target = Path(run_dir) if run_dir is not None else default_run_dir(cfg, recipe)
    trackers = Trackers.of(cfg)  # a tracker whose package is missing is refused here, before any work
    log(f"genlab train {cfg.model.name} on {cfg.data.name} ({cfg.data.resolution}px, {cfg.data.channels}ch) "
        f"-> {target}")
    extra = (trackers, *((TrainingEval(),) if evaluate else ()), *callbacks)
    train_loop(cfg, target, overwrite=overwrite, resume=resume, log=log, callbacks=extra)
    return load_run(target, "last", device)


def evaluate(source: Any, against: str | PathLike | DatasetRef | None = None, *, checkpoint: str = "last",
             resolution: int | None = None, channels: int | None = None, root: str | None = None,
             latent_dim: int | None = None, device: str = "auto", request: EvalRequest | None = None,
             **fields: Any) -> Result:
    """Metrics of any generator or set of images (``genlab.scoring``): a run folder or :class:`Run` (its
    generator against its dataset's ``split``), an export folder (the same), a folder or ``.npz`` of images, a
    (N, C, H, W) tensor, a ``torch.nn.Module`` (``latent_dim``: its latent size when it has no ``latent_dim``
    attribute) or a callable ``f(n, seed) -> images``, the last five against ``against``: ``"DATASET[:SPLIT]"``,
    a DatasetRef, another folder or a ``mu``/``sigma`` ``.npz``.

    What is measured is ``request``, else ``EvalRequest.of(**fields)``: ``metrics``, ``num_samples``,
    ``features``, ``split``, ``seed``, ``batch_size``, ``inception_weights``, ``verify``, ``protocol``,
    ``reference_stats``, ``options``, ``out``; and for runs ``truncation`` / ``truncation_mode`` and ``steps`` /
    ``solver`` / ``guidance`` (see :class:`genlab.evaluation.EvalRequest` and :meth:`Run.evaluate`).
    ``metrics`` None: ``DEFAULT_METRICS`` (with a statistics file: those it allows). ``protocol``: ``genlab`` or
    ``paper`` (``genlab.metrics.protocols``): the defaults of ``features``, ``num_samples`` and ``split`` and the
    published settings the result is checked against (``protocol.published_protocol``). ``checkpoint`` applies
    to runs; ``resolution``, ``channels`` and ``root`` to folders (root: where the reference dataset's files are;
    resolution / channels: an explicit size both sides are decoded at; without them a folder is read at its own
    sizes, a dataset at its native size, and the extractor resizes both). ``verify`` None: a run's
    ``data.verify``, True for a folder's reference. ``out``: also write the result there as JSON.
    """
    req = request if request is not None else EvalRequest.of(**fields)
    if isinstance(source, Run) or (isinstance(source, (str, Path)) and RunDir.of(source).exists()):
        if against is not None:
            raise ConfigError("a run is evaluated against its own dataset: pass split=, not against=")
        run = source if isinstance(source, Run) else load_run(source, checkpoint, device)
        return run.evaluate(request=req)
    if req.truncation is not None:
        raise ConfigError("truncation= applies to a run's generator, not to other sources")
    if (req.steps, req.solver, req.guidance) != (None, None, None):
        raise ConfigError("steps=, solver= and guidance= apply to a run's sampler, not to other sources")
    if isinstance(source, (str, Path)) and not Path(source).exists():
        raise GenlabError(f"{str(source)!r} is neither a run folder (no config.yaml) nor an export, a folder or an "
                          ".npz of images")
    if against is None and req.options.reference_stats is None and not is_export(source):
        raise ConfigError("these images need a reference: against='DATASET[:SPLIT]' (e.g. 'fashion-mnist:test'), a "
                          "folder of images, or a mu/sigma .npz statistics file")
    result = score(source, against, req, resolution=resolution, channels=channels, root=root,
                   device=str(resolve_device(device)), latent_dim=latent_dim)
    if req.out is not None and distributed.collective().rank == 0:
        atomic_write_text(req.out, json.dumps(result, indent=1, default=float))
    return Result(result)


def search(search_file: PathLike | dict, out: PathLike | None = None, *, storage: str | None = None,
           workers: int = 1, executor: str = "local", log: Callable[[str], None] = print) -> SearchSummary:
    """Run (or continue) a search, as `genlab search` does, and return the study's summary (trial counts per
    state, the best trial's number, value, parameters, run folder and recipe).

    search_file: a search YAML or the same mapping as a dict (relative ``base`` paths from the working folder).
    out: the search folder (default searches/<name>). storage: the study database, any SQLAlchemy URL Optuna
    supports (default a SQLite file in ``out``). workers > 1 starts worker processes on this machine
    (executor="ray": Ray tasks) sharing the study; 1 trains in this process.
    """
    from genlab.sweeps.runner import make_executor
    from genlab.sweeps.search import run_search
    from genlab.sweeps.search_file import load_search, parse_search, validate

    spec = validate(parse_search(search_file)) if isinstance(search_file, dict) else load_search(search_file)
    target = Path(out) if out is not None else Path("searches") / spec.name
    ex = make_executor(executor, workers=workers) if workers > 1 or executor != "local" else None
    return run_search(spec, target, storage, workers=workers, executor=ex, log=log)
