"""The public Python API: train, load, sample, interpolate, evaluate and plot from a notebook or a script.

    import genlab
    run = genlab.train("configs/demo_fashion_mnist_dcgan.yaml", ["train.epochs=1"], run_dir="runs/demo")
    images = run.sample(16, seed=3)                  # float (16, C, H, W) in [-1, 1]
    run = genlab.load_run("runs/demo", checkpoint="best")
    result = genlab.evaluate("runs/demo", metrics="fid", num_samples=2000)

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Union

import torch
from PIL import Image

from genlab.analysis.interpolation import interpolate, seed_latents
from genlab.config import Config, to_dict
from genlab.data import DATASETS
from genlab.data.base import to_uint8
from genlab.errors import ConfigError, GenlabError
from genlab.evaluation import TrainingEval, check_eval_target, choose_features, evaluate_loaded
from genlab.grids import save_grid
from genlab.io import atomic_write_bytes, atomic_write_text
from genlab.metrics import DEFAULT_METRICS, DatasetRef, evaluate_folder
from genlab.metrics.reference import native_ref
from genlab.recipe import load_config
from genlab.resume import resume_config
from genlab.rundir import RunDir
from genlab.sampling import LoadedRun, Truncation, as_truncation, sample_prompt
from genlab.sampling import load_run as _load_run
from genlab.training import distributed
from genlab.training.loop import train as train_loop

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

    def save_grid(self, images: torch.Tensor, path: PathLike, nrow: int | None = None) -> Path:
        """Images in [-1, 1] -> one PNG grid (``nrow`` images per row; default: about square)."""
        save_grid(images, Path(path), nrow=nrow)
        return Path(path)

    def save_images(self, images: torch.Tensor, folder: PathLike, prefix: str = "sample") -> Path:
        """Images in [-1, 1] -> one PNG per image in ``folder`` (e.g. for ``genlab.evaluate(folder, against=...)``)."""
        return save_images(images, folder, prefix)

    # ------------------------------------------------------------------------------------ numbers and plots
    def evaluate(self, metrics: Metrics = DEFAULT_METRICS, num_samples: int = 10_000, *, features: Any = "auto",
                 seed: int = 0, split: str = "test", batch_size: int = 250, inception_weights: str | None = None,
                 out: PathLike | None = None, verify: bool | None = None,
                 truncation: float | Truncation | None = None, truncation_mode: str = "resample",
                 steps: int | None = None, solver: str | None = None,
                 guidance: float | None = None) -> dict[str, Any]:
        """Metrics of this checkpoint's generator against the run's dataset ``split`` (the result `genlab eval`
        prints: top-level keys are the metric names, plus ``protocol``). ``out``: also write it there as JSON
        (the run's ``eval.json`` is left alone unless ``out`` names it; naming it for a checkpoint of another run
        is refused with a RunError, before anything is computed). Under torchrun every rank computes its
        shard and rank 0 writes. ``verify``: refuse reference files whose checksum is not the dataset's
        published one (None: the run's ``data.verify``). ``truncation``: psi > 0 (``truncation_mode`` resample |
        interp), recorded in the protocol. ``steps`` / ``solver`` / ``guidance``: how a flow or diffusion model
        draws (see :meth:`with_sampling`), recorded in the protocol with the network evaluations per image."""
        if num_samples <= 0:
            raise ConfigError(f"num_samples={num_samples} is not allowed: a positive count")
        trunc = as_truncation(truncation, truncation_mode)
        loaded = self.loaded.with_sampling(steps, solver, guidance)
        check_eval_target(loaded, out)
        result = evaluate_loaded(loaded, metrics=metrics, features=features, num_samples=num_samples,
                                 seed=seed, split=split, batch_size=batch_size, inception_weights=inception_weights,
                                 device=str(loaded.device), verify=verify, truncation=trunc)
        if out is not None and distributed.collective().rank == 0:
            loaded.run.write_eval(result, out)
        return result

    def plot_curves(self, path: PathLike | None = None, smoothing: float = 0.9, svg: bool = True) -> list[Path]:
        """The loss curves of `genlab plot curves` -> PNG (+ SVG); default path RUN/analysis/curves.png."""
        # matplotlib is loaded only when a figure is asked for (not a cycle: import speed)
        from genlab.reporting.plots import plot_losses, save_figure
        from genlab.reporting.records import read_records

        fig = plot_losses(read_records(self.path).train, title=self.path.name, smoothing=smoothing)
        return save_figure(fig, Path(path) if path is not None else self.loaded.run.artifact("curves.png"), svg=svg)

    def records(self) -> list[dict]:
        """Every record of metrics.jsonl (training windows and evaluations), in order."""
        return self.loaded.run.read_records()


def save_images(images: torch.Tensor, folder: PathLike, prefix: str = "sample") -> Path:
    """Images (N, C, H, W) in [-1, 1] -> ``folder/<prefix>_000000.png`` ... (grayscale or RGB PNGs)."""
    out = Path(folder)
    arrays = to_uint8(images.cpu()).permute(0, 2, 3, 1).numpy()
    for i, arr in enumerate(arrays):
        buf = io.BytesIO()
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(buf, format="PNG")
        atomic_write_bytes(out / f"{prefix}_{i:06d}.png", buf.getvalue())
    return out


def load_run(path: PathLike, checkpoint: str = "last", device: str = "cpu") -> Run:
    """A run folder and which checkpoint (``last`` | ``best`` | a path) -> a :class:`Run` in eval mode."""
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
          log: Callable[[str], None] = print, device: str = "cpu") -> Run:
    """Train a recipe (a YAML path or a :class:`~genlab.config.Config`) with dotted ``overrides``, as
    `genlab train` does, and return the finished run with its last checkpoint loaded.

    run_dir: the run folder (default: runs/<recipe name>, numbered when taken). overwrite: replace an existing
    folder. resume: continue ``run_dir`` where it stopped (``recipe`` may be None; only keys that keep the resume
    exact may change, e.g. ``train.epochs``). evaluate: run the recipe's ``eval.every`` evaluations (and keep
    best.pt). log: where progress lines go. device: where the returned run is loaded (training uses
    ``train.device``).
    """
    callbacks = (TrainingEval(),) if evaluate else ()
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
    log(f"genlab train {cfg.model.name} on {cfg.data.name} ({cfg.data.resolution}px, {cfg.data.channels}ch) "
        f"-> {target}")
    train_loop(cfg, target, overwrite=overwrite, resume=resume, log=log, callbacks=callbacks)
    return load_run(target, "last", device)


def _reference(against: str | PathLike | DatasetRef, resolution: int | None, channels: int | None,
               root: str | None, verify: bool = True) -> DatasetRef | Path:
    """``"fashion-mnist:test"`` -> a DatasetRef at the dataset's native size (``native_ref``), or at
    ``resolution`` / ``channels`` when given (an explicit decode size); a folder -> its path."""
    if isinstance(against, DatasetRef):
        return against
    if Path(against).is_dir():
        return Path(against)
    name, _, split = str(against).partition(":")
    if name not in DATASETS:
        raise ConfigError(f"the reference {str(against)!r} is neither a folder nor a dataset; use DATASET[:SPLIT] "
                          f"with DATASET one of {', '.join(DATASETS.names())}, or a folder of images")
    ref = native_ref(name, split or "test", root=root, verify=verify)
    if resolution is None and channels is None:
        return ref
    return replace(ref, resolution=int(resolution or ref.resolution), channels=int(channels or ref.channels))


def evaluate(source: PathLike | Run, against: str | PathLike | DatasetRef | None = None, *,
             metrics: Metrics = DEFAULT_METRICS, features: Any = "auto", num_samples: int = 10_000,
             checkpoint: str = "last", split: str = "test", resolution: int | None = None,
             channels: int | None = None, root: str | None = None, seed: int = 0, batch_size: int = 250,
             inception_weights: str | None = None, device: str = "cpu",
             out: PathLike | None = None, verify: bool | None = None,
             truncation: float | Truncation | None = None, truncation_mode: str = "resample",
             steps: int | None = None, solver: str | None = None, guidance: float | None = None) -> dict[str, Any]:
    """Metrics of a run (a run folder or a :class:`Run`: its generator against its dataset's ``split``) or of a
    folder of images (against ``"DATASET[:SPLIT]"``, a DatasetRef or another folder), as `genlab eval` and
    `genlab eval-folder` compute them. ``out``: also write the result there as JSON.

    num_samples, checkpoint and split apply to runs; resolution, channels and root to folders (root: where the
    reference dataset's files are; resolution / channels: an explicit size both sides are decoded at; without
    them a folder is read at its own sizes, a dataset at its native size, and the extractor resizes both).
    ``verify``: refuse dataset files whose checksum is not the published one (None: a run's ``data.verify``,
    True for a folder's reference).
    ``truncation`` / ``truncation_mode`` and ``steps`` / ``solver`` / ``guidance`` (flow and diffusion models):
    runs only (see :meth:`Run.evaluate`).
    """
    if isinstance(source, Run) or RunDir.of(source).exists():
        if against is not None:
            raise ConfigError("a run is evaluated against its own dataset: pass split=, not against=")
        run = source if isinstance(source, Run) else load_run(source, checkpoint, device)
        return run.evaluate(metrics, num_samples, features=features, seed=seed, split=split,
                            batch_size=batch_size, inception_weights=inception_weights, out=out, verify=verify,
                            truncation=truncation, truncation_mode=truncation_mode, steps=steps, solver=solver,
                            guidance=guidance)
    if truncation is not None:
        raise ConfigError("truncation= applies to a run's generator, not to a folder of images")
    if (steps, solver, guidance) != (None, None, None):
        raise ConfigError("steps=, solver= and guidance= apply to a run's sampler, not to a folder of images")
    folder = Path(source)
    if not folder.is_dir():
        raise GenlabError(f"{str(folder)!r} is neither a run folder (no config.yaml) nor a folder of images")
    if against is None:
        raise ConfigError("a folder of images needs against='DATASET[:SPLIT]' (e.g. 'fashion-mnist:test') "
                          "or another folder")
    ref = _reference(against, resolution, channels, root, verify is not False)
    name = choose_features(features, inception_weights) if isinstance(features, str) else features
    if name == "classifier" and isinstance(ref, Path):
        raise ConfigError("the classifier extractor is trained on a labeled dataset: compare against "
                          "DATASET:SPLIT, or use the inception features for folder vs folder")
    result = evaluate_folder(folder, ref, name, metrics, batch_size=batch_size, seed=seed, resolution=resolution,
                             channels=channels, weights=inception_weights, device=device)
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=1, default=float))
    return result
