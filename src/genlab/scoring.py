"""Score any generator: what ``genlab.evaluate(source)`` accepts besides a run folder, and how it draws images.

- a run folder or a ``genlab.Run``: its generator from seeded latents (``evaluation.evaluate_loaded``);
- an export folder (``genlab export``): the exported generator, drawn exactly as its run draws;
- a ``torch.nn.Module``: ``module(z)`` for z ~ N(0, I) of its ``latent_dim`` (or ``z_dim``, ``nz``; else pass
  ``latent_dim=``), in eval mode;
- a callable ``f(n, seed) -> images``: ``f(batch, seed + k)`` for the k-th batch of a rank;
- a tensor (N, C, H, W): its N images in order;
- an ``.npz`` of images: ``arr_0`` (guided-diffusion's sample files), ``images`` or ``samples``, (N, H, W, C) or
  (N, C, H, W);
- a folder of images: read as they are (``metrics.evaluate_folder``).

Images are float in [-1, 1] or uint8 in [0, 255] (uint8 ones are mapped to [-1, 1] exactly, ``to_float``).
Runs and exports are compared with their own dataset's split; every other source with ``against``: a dataset
(``"cifar10"``, ``"fashion-mnist:test"``, a ``DatasetRef``), a folder, or a ``mu``/``sigma`` ``.npz`` statistics
file (read as ``EvalOptions.reference_stats``). Under torchrun a module or a callable is sharded like a run (rank
r draws with seed + ``RANK_SEED_STRIDE`` r) and a tensor or an ``.npz`` is split into contiguous shards.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab import __version__
from genlab.data import DATASETS
from genlab.data.base import to_float
from genlab.device import resolve_device
from genlab.errors import ConfigError, GenlabError
from genlab.evaluation import (
    NOT_COMPARABLE,
    RANK_SEED_STRIDE,
    EvalRequest,
    auto_features,
    default_metrics,
    evaluate_loaded,
)
from genlab.export import META_FILE, load_generator
from genlab.metrics import DatasetRef, evaluate, evaluate_folder
from genlab.metrics.collective import shard
from genlab.metrics.evaluate import resolve_extractor, sample_features
from genlab.metrics.features.base import FeatureExtractor
from genlab.metrics.protocols import BATCH_SIZE, resolve
from genlab.metrics.reference import native_ref
from genlab.metrics.refstats import reference_stats
from genlab.metrics.stats import FeatureStats
from genlab.metrics.statsfile import write_stats
from genlab.rundir import RunDir
from genlab.sampling import load_run
from genlab.training import distributed

SampleFn = Callable[[int], torch.Tensor]
#: the keys of an ``.npz`` of images, in the order they are looked for
IMAGE_KEYS = ("arr_0", "images", "samples")
#: module attributes that give a generator's latent size, in the order they are looked for
LATENT_ATTRS = ("latent_dim", "z_dim", "nz")


def is_export(source: Any) -> bool:
    return isinstance(source, (str, os.PathLike)) and (Path(source) / META_FILE).is_file()


def is_stats_file(path: Any) -> bool:
    """A ``.npz`` holding ``mu`` and ``sigma`` (a statistics file, not images)."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).endswith(".npz") or not Path(path).is_file():
        return False
    with np.load(path, allow_pickle=False) as f:
        return {"mu", "sigma"} <= set(f.files)


def reference_of(against: Any, resolution: int | None = None, channels: int | None = None,
                 root: str | None = None, verify: bool = True) -> DatasetRef | Path:
    """``"fashion-mnist:test"`` -> a DatasetRef at the dataset's native size (``native_ref``), or at
    ``resolution`` / ``channels`` when given (an explicit decode size); a folder -> its path."""
    if isinstance(against, DatasetRef):
        return against
    if Path(against).is_dir():
        return Path(against)
    name, _, split = str(against).partition(":")
    if name not in DATASETS:
        raise ConfigError(f"the reference {str(against)!r} is neither a folder nor a dataset (nor a statistics "
                          f"file); use DATASET[:SPLIT] with DATASET one of {', '.join(DATASETS.names())}, a folder "
                          "of images, or a mu/sigma .npz")
    ref = native_ref(name, split or "test", root=root, verify=verify)
    if resolution is None and channels is None:
        return ref
    return replace(ref, resolution=int(resolution or ref.resolution), channels=int(channels or ref.channels))


def as_images(images: Any, what: str) -> torch.Tensor:
    """A (N, C, H, W) tensor of float images in [-1, 1] from float or uint8 images (numpy or torch)."""
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise GenlabError(f"{what} must be images shaped (N, C, H, W), got {got}")
    if x.dtype == torch.uint8:
        return to_float(x)
    if not x.is_floating_point():
        raise GenlabError(f"{what} must be float images in [-1, 1] or uint8 ones, got {x.dtype}")
    return x.float()


def load_image_array(path: str | os.PathLike) -> torch.Tensor:
    """The images of an ``.npz`` (``IMAGE_KEYS``), channels last (N, H, W, C) as guided-diffusion writes them
    or first (N, C, H, W), as uint8 (N, C, H, W)."""
    with np.load(path, allow_pickle=False) as f:
        key = next((k for k in IMAGE_KEYS if k in f.files), None)
        if key is None:
            raise GenlabError(f"{path} holds no images under {', '.join(IMAGE_KEYS)} (it has {', '.join(f.files)})")
        a = np.asarray(f[key])
    if a.ndim == 4 and a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    if a.dtype != np.uint8 and not np.issubdtype(a.dtype, np.floating):
        raise GenlabError(f"{path}: images must be uint8 or float in [-1, 1], got {a.dtype}")
    return torch.from_numpy(np.ascontiguousarray(a))


class ImageSampler:
    """``sample_fn(n)``: the next n images of a fixed set, in order (a tensor, an ``.npz``)."""

    def __init__(self, images: torch.Tensor):
        self.images, self.done = images, 0
        self.__name__ = "images"

    def __call__(self, n: int) -> torch.Tensor:
        if self.done + n > len(self.images):
            raise GenlabError(f"asked for {self.done + n} images of a set of {len(self.images)}")
        out = self.images[self.done:self.done + n]
        self.done += n
        return as_images(out, "the images")


def module_sampler(module: nn.Module, latent_dim: int | None, seed: int,
                   device: str | torch.device = "cpu") -> Callable[[int], torch.Tensor]:
    """``sample_fn(n) = module(z)`` for fresh z ~ N(0, I) (a seeded generator), in eval mode without gradients."""
    dim = latent_dim or next((int(getattr(module, a)) for a in LATENT_ATTRS if hasattr(module, a)), None)
    if dim is None:
        raise ConfigError(f"cannot tell the latent size of {type(module).__name__}: it has none of "
                          f"{', '.join(LATENT_ATTRS)}; pass latent_dim=")
    g = torch.Generator().manual_seed(seed)
    module = module.to(device).eval()

    def sample(n: int) -> torch.Tensor:
        z = torch.randn(n, dim, generator=g).to(device)
        with torch.no_grad():
            return as_images(module(z), f"{type(module).__name__}(z)").cpu()

    sample.__name__ = type(module).__name__
    return sample


def callable_sampler(fn: Callable[[int, int], Any], seed: int) -> Callable[[int], torch.Tensor]:
    """``sample_fn(n) = fn(n, seed + k)`` for the k-th call."""
    calls = 0

    def sample(n: int) -> torch.Tensor:
        nonlocal calls
        images = as_images(fn(n, seed + calls), "f(n, seed)")
        calls += 1
        return images

    sample.__name__ = getattr(fn, "__name__", type(fn).__name__)
    return sample


def score(source: Any, against: Any = None, request: EvalRequest | None = None, *, resolution: int | None = None,
          channels: int | None = None, root: str | None = None, device: str = "cpu",
          latent_dim: int | None = None) -> dict[str, Any]:
    """Metrics of any source in the module docstring's table except a run (``genlab.evaluate`` calls runs'
    own path), against ``against`` (an export: its dataset's ``request.split``), as ``request`` asks (default
    ``EvalRequest()``). ``device`` auto: CUDA, MPS, the CPU."""
    req = request or EvalRequest()
    options, features, seed, batch_size = req.options, req.features, req.seed, req.batch_size
    device = str(resolve_device(device))
    if is_export(source):
        if against is not None:
            raise ConfigError("an exported generator is evaluated against its own dataset: pass split=, not against=")
        loaded = load_generator(source, device).loaded
        return evaluate_loaded(loaded, req)
    if is_stats_file(against):
        if options.reference_stats is not None:
            raise ConfigError("two statistics files: pass the reference as against= or reference_stats=, not both")
        options, against = replace(options, reference_stats=str(against)), None
    settings = resolve(options.protocol, features=features if isinstance(features, str) else None,
                       num_samples=req.num_samples, resize=options.resize)
    options = replace(options, resize=settings.resize)
    names = req.metrics if req.metrics is not None else default_metrics(options)
    ref = None if against is None else reference_of(against, resolution, channels, root, req.verify is not False)
    name, why = (features, None) if isinstance(features, FeatureExtractor) else \
        auto_features(settings.features, req.weights)
    if name == "classifier" and not isinstance(ref, DatasetRef):
        raise ConfigError("the classifier extractor is trained on a labeled dataset: compare against "
                          "DATASET:SPLIT, or use --features inception (folders, statistics files)")
    common = {"batch_size": batch_size, "seed": seed, "options": options, "weights": req.weights, "device": device}
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return _noted(evaluate_folder(source, ref, name, names, resolution=resolution, channels=channels, **common),
                      why)
    ranks = distributed.collective()
    if isinstance(source, nn.Module):
        sample_fn = module_sampler(source, latent_dim, seed + RANK_SEED_STRIDE * ranks.rank, device)
    elif callable(source):
        sample_fn = callable_sampler(source, seed + RANK_SEED_STRIDE * ranks.rank)
    else:
        images = load_image_array(source) if isinstance(source, (str, os.PathLike)) else source
        if not isinstance(images, (torch.Tensor, np.ndarray)):
            raise GenlabError(f"cannot score a {type(source).__name__}: give a run or export folder, a folder or "
                              ".npz of images, a (N, C, H, W) tensor, a torch.nn.Module or a callable f(n, seed)")
        images = torch.as_tensor(images)
        total = req.num_samples or len(images)
        if total > len(images):
            raise GenlabError(f"{total} samples asked of a set of {len(images)} images")
        start, count = shard(total, ranks.rank, ranks.world_size)
        sample_fn = ImageSampler(images[start:start + count])
        return _noted(evaluate(sample_fn, total, ref, name, names, collective=ranks, **common), why)
    return _noted(evaluate(sample_fn, settings.num_samples, ref, name, names, collective=ranks, **common), why)


def _noted(result: dict[str, Any], why: str | None) -> dict[str, Any]:
    """The result, with why ``auto`` fell back to the classifier in its protocol (as ``evaluate_loaded`` does)."""
    if why is not None:
        result["protocol"]["features_note"] = f"auto fell back to genlab's classifier ({why}): FID {NOT_COMPARABLE}"
    return result


#: generated images behind the statistics of a generator by default (the paper protocol's count)
STATS_SAMPLES = 50_000


def generator_sampler(source: Any, seed: int, batch_size: int, device: str, checkpoint: str = "last",
                      latent_dim: int | None = None) -> tuple[SampleFn, dict[str, Any], int | None, Any]:
    """(sample_fn, what it is, its number of images when fixed, its dataset when it has one: a run's or an
    export's, for the classifier extractor) for any source but a folder or a dataset."""
    if isinstance(source, (str, os.PathLike)) and (RunDir.of(source).exists() or is_export(source)):
        if is_export(source):
            gen = load_generator(source, device)
            run, what = gen.loaded, {"export": str(source), "step": gen.info.step}
        else:
            run = load_run(source, checkpoint, device)
            what = {"run": str(source), "checkpoint": str(run.checkpoint), "step": run.step}
        dataset = native_ref(run.cfg.data.name, "train", root=run.cfg.data.root, verify=run.cfg.data.verify)
        return run.sampler(seed=seed, batch_size=batch_size), what, None, dataset
    if isinstance(source, nn.Module):
        return module_sampler(source, latent_dim, seed, device), {"module": type(source).__name__}, None, None
    if callable(source):
        return callable_sampler(source, seed), {"callable": getattr(source, "__name__", "f")}, None, None
    images = load_image_array(source) if isinstance(source, (str, os.PathLike)) else torch.as_tensor(source)
    what = {"images": str(source)} if isinstance(source, (str, os.PathLike)) else {"images": "a tensor"}
    return ImageSampler(images), what, len(images), None


def feature_stats(source: Any, out: str | os.PathLike, *, features: str = "inception", split: str = "train",
                  num_samples: int | None = None, resize: str | None = None, seed: int = 0,
                  batch_size: int = BATCH_SIZE, weights: str | None = None, device: str = "cpu",
                  checkpoint: str = "last", root: str | None = None, verify: bool = True,
                  latent_dim: int | None = None) -> tuple[Path, FeatureStats, dict[str, Any]]:
    """Write the ``mu``/``sigma`` statistics file (``metrics.statsfile``) of ``source`` under ``features``:
    a dataset (``"cifar10"``, ``"cifar10:test"``; default split ``split``, at its native size), a folder of images
    (read as they are), or anything ``score`` samples (a run, an export, an ``.npz`` of images...; ``num_samples``
    images, default ``STATS_SAMPLES`` or all of a fixed set). ``resize``: the extractor's resize (``legacy`` /
    ``clean`` for statistics compatible with pytorch-fid / clean-fid). Returns (path, statistics, meta)."""
    t0 = time.perf_counter()
    device = str(resolve_device(device))
    is_data = isinstance(source, (str, os.PathLike)) and not RunDir.of(source).exists() and not is_export(source) \
        and (Path(source).is_dir() or str(source).partition(":")[0] in DATASETS)
    name = auto_features(features, weights)[0]
    if is_data:
        ref = reference_of(source if ":" in str(source) or Path(source).is_dir() else f"{source}:{split}",
                           root=root, verify=verify)
        ext = resolve_extractor(name, ref if isinstance(ref, DatasetRef) else None, weights, device)
        ext = ext.with_resize(resize)
        stats, desc = reference_stats(ref, ext, batch_size=batch_size)
    else:
        sample_fn, desc, fixed, dataset = generator_sampler(source, seed, batch_size, device, checkpoint, latent_dim)
        ext = resolve_extractor(name, dataset, weights, device).with_resize(resize)
        n = num_samples or fixed or STATS_SAMPLES
        feats, _ = sample_features(sample_fn, n, ext, batch_size, seed)
        stats = FeatureStats.from_features(feats, keep=0)
    meta = {"extractor": ext.describe(), "variant": ext.variant, "source": desc, "num_images": stats.n,
            "seed": seed, "genlab_version": __version__, "seconds": round(time.perf_counter() - t0, 3)}
    return write_stats(out, stats, meta), stats, meta
