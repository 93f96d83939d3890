"""The entry points the CLI and the training loop call: ``evaluate`` (a sampler vs a reference) and
``evaluate_folder`` (a folder of images vs a dataset split, an ``ImageData`` or another folder).

Both return ``{<metric name>: value, ..., "protocol": {...}}`` (value shapes in ``genlab.metrics.suite``).
The protocol records what makes numbers comparable: extractor name, hash and details, sample counts, the
reference, seed, metric options, genlab version; plus timings in seconds. Generated images of any size are
accepted: the extractor resizes them to its input (``extractor_info.input``; ``generated.resized`` says
what was done, e.g. "64px/3ch -> 28px/1ch"), and the reference is read at its dataset's native size.
Sampling + features and reference features report progress through ``genlab.metrics.work_progress``.
Metrics take a sampler and never import training: ``sample_fn(n)`` returns n float images in [-1, 1].
``evaluate`` also runs split over processes: pass a ``Collective`` (genlab.metrics.collective).
Conditional metrics (``ifid``, ``class_acc``, ``cas``) read the class of each generated image from the
sampler: ``sample_fn.drawn_labels()`` (what ``genlab.sampling.Sampler`` provides), the classes of every image
it returned so far, in order.
Metrics with features of their own (``fd_dinov2``, ``cmmd``: ``suite.Metric.extractor``) get their extractor run
over the same images (sampled once) and their own reference statistics; the protocol records them under
``extractors``. ``options.reference_stats`` (a mu/sigma ``.npz``) replaces the main extractor's reference
statistics; ``options.resize`` the main extractor's resize (``FeatureExtractor.with_resize``); a published
``options.protocol`` adds ``published_protocol`` (``genlab.metrics.protocols.conformance``) to the protocol.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

import genlab
from genlab import threads
from genlab.data.base import ImageData, to_float
from genlab.errors import GenlabError
from genlab.metrics.class_coverage import COVERAGE
from genlab.metrics.collective import SINGLE_PROCESS, Collective, shard
from genlab.metrics.features.base import FeatureExtractor, as_uint8, get_extractor
from genlab.metrics.inception_score import IS
from genlab.metrics.own_features import companion_extractors, distinct
from genlab.metrics.protocols import BATCH_SIZE, conformance
from genlab.metrics.reference import DatasetRef, Reference, folder_files, iter_folder, load_reference
from genlab.metrics.refstats import compute_all_features, compute_features, iter_batches, reference_stats
from genlab.metrics.seeding import initialised_gpus, seeded
from genlab.metrics.stats import Features, FeatureStats
from genlab.metrics.statsfile import check_reference_stats, main_reference_stats
from genlab.metrics.suite import (
    DEFAULT_METRICS,
    METRICS,
    OPTIONAL_INPUTS,
    RECONSTRUCTION_INPUTS,
    EvalOptions,
    MetricInputs,
    check_metrics,
    needed_inputs,
    split_details,
)

SampleFn = Callable[[int], torch.Tensor]
#: reconstruct_fn(images in [-1, 1] (N, C, H, W), labels (N,) or None) -> the model's reconstructions, same shape
ReconstructFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def resolve_extractor(
    extractor: str | FeatureExtractor,
    dataset: Any | None = None,
    weights: str | None = None,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """An extractor object as is, or the registered one by name (the classifier trains on ``dataset``)."""
    if isinstance(extractor, FeatureExtractor):
        return extractor
    if isinstance(dataset, ImageData):
        return get_extractor(extractor, dataset=dataset.name, weights=weights, device=device)
    return get_extractor(extractor, dataset=dataset, weights=weights, device=device)


#: metrics that read the extractor's logits, with the name their error uses
NEEDS_CLASSIFIER_HEAD = {IS: "IS", COVERAGE: "class coverage"}


def check_extractor_head(extractor: FeatureExtractor, metrics: Sequence[str]) -> None:
    """One clear error, before any image is processed, for a logits metric asked of a head-less extractor."""
    if extractor.num_classes > 0:
        return
    for name in metrics:
        if name in NEEDS_CLASSIFIER_HEAD:
            raise GenlabError(f"{NEEDS_CLASSIFIER_HEAD[name]} needs an extractor with a classifier head; "
                              f"{extractor.name} has none: use --features classifier or inception, "
                              f"or leave {name} out of --metrics")


def _sampled_batches(sample_fn: SampleFn, num_samples: int, batch_size: int) -> Iterator[torch.Tensor]:
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        images = sample_fn(n)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] != n:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise GenlabError(f"sample_fn({n}) must return {n} images as a (N, C, H, W) tensor, got {shape}")
        if not images.is_floating_point():
            raise GenlabError(f"sample_fn must return float images in [-1, 1], got {images.dtype}")
        yield images
        done += n


def sample_features(
    sample_fn: SampleFn, num_samples: int, extractor: FeatureExtractor, batch_size: int = BATCH_SIZE, seed: int = 0
) -> tuple[Features, tuple[int, int]]:
    """Features of ``num_samples`` images from ``sample_fn``, drawn with the CPU's (and every initialised GPU's)
    generator seeded with ``seed`` inside a forked RNG state (the caller's RNG streams are left as they were;
    ``seeding.seeded``). Also returns (resolution, channels)."""
    feats, shape = sample_all_features(sample_fn, num_samples, [extractor], batch_size, seed)
    return feats[0], shape


def sample_all_features(
    sample_fn: SampleFn, num_samples: int, extractors: Sequence[FeatureExtractor], batch_size: int = BATCH_SIZE,
    seed: int = 0,
) -> tuple[list[Features], tuple[int, int]]:
    """``sample_features`` for several extractors: the images are drawn once and go through each."""
    if num_samples < 2:
        raise GenlabError(f"evaluation needs at least 2 samples, got {num_samples}")
    shape: list[tuple[int, int]] = []

    # on a shared CPU, fewer threads while other programs keep cores busy (genlab.threads; never with a GPU at work)
    full = 0 if torch.cuda.is_available() and torch.cuda.is_initialized() else threads.adaptive()
    governor = threads.Governor(full, log=lambda line: None) if full else None

    def batches() -> Iterator[torch.Tensor]:
        for b in _sampled_batches(sample_fn, num_samples, batch_size):
            shape.append((int(b.shape[-1]), int(b.shape[1])))
            yield b
            if governor is not None:  # one tick per batch drawn and passed through the extractors
                governor.tick()

    try:
        with seeded(seed, initialised_gpus()), torch.no_grad():
            feats = compute_all_features(extractors, batches(), task="sampling + features", total=num_samples)
    finally:
        if governor is not None:
            torch.set_num_threads(full)
    return feats, shape[0]


def evaluate_features(
    generated: Features,
    reference: FeatureStats,
    metrics: Sequence[str] = DEFAULT_METRICS,
    options: EvalOptions | None = None,
    details: dict[str, Any] | None = None,
    companions: dict[str, tuple[Features, FeatureStats]] | None = None,
    **optional: Any,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The metric values of ``generated`` features against reference statistics, and per-metric seconds.

    ``details``: a dict that receives the metrics' protocol details (``suite.Detailed``), e.g. fid_inf's fit.
    ``companions``: {metric: (its generated features, its reference statistics)} for the chosen metrics with
    features of their own (``Metric.extractor``).
    ``optional``: the ``MetricInputs`` fields named in ``OPTIONAL_INPUTS`` that the chosen metrics need."""
    names = check_metrics(metrics)
    options = options or EvalOptions()
    if generated.dim != reference.dim:
        raise GenlabError(f"generated features are {generated.dim}-d but the reference's are {reference.dim}-d")
    unknown = set(optional) - set(OPTIONAL_INPUTS)
    if unknown:
        raise TypeError(f"evaluate_features got unknown inputs {sorted(unknown)}; known: {OPTIONAL_INPUTS}")
    for name in names:
        missing = [need for need in METRICS.get(name).needs if optional.get(need) is None]
        if missing:
            raise GenlabError(f"metric {name!r} needs {', '.join(missing)}, which this evaluation does not provide")
    own: dict[str, MetricInputs] = {}
    for name in names:
        if METRICS.get(name).extractor is None:
            continue
        if name not in (companions or {}):
            raise GenlabError(f"metric {name!r} has features of its own, which this evaluation did not compute")
        feats, ref = companions[name]  # type: ignore[index]
        if feats.dim != ref.dim:
            raise GenlabError(f"{name}: generated features are {feats.dim}-d but the reference's are {ref.dim}-d")
        own[name] = MetricInputs(FeatureStats.from_features(feats), feats.logits, ref, options)
    stats = FeatureStats.from_features(generated)
    inputs = MetricInputs(stats, generated.logits, reference, options, **optional, companions=own)
    values: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        values[name] = METRICS.get(name).compute(own.get(name, inputs))
        seconds[name] = round(time.perf_counter() - t0, 3)
    values, found = split_details(values)
    if details is not None:
        details.update(found)
    return values, seconds


def _protocol(
    extractor: FeatureExtractor, n_gen: int, ref: FeatureStats, ref_desc: dict, generated: dict,
    metrics: Sequence[str], options: EvalOptions, seconds: dict, world_size: int = 1,
    details: dict[str, Any] | None = None, companions: dict[str, FeatureExtractor] | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = {"details": details} if details else {}  # metrics' details (fid_inf's fit points)
    if companions:  # the extractors of metrics with features of their own, by metric
        extra["extractors"] = {m: e.describe() for m, e in companions.items()}
    if extractor.variant:  # e.g. the paper protocol's resize: another feature set than the registered extractor's
        extra["variant"] = extractor.variant
    record = {
        "extractor": extractor.name,
        "extractor_hash": extractor.hash,
        "extractor_info": extractor.describe(),
        "num_generated": n_gen,
        "num_reference": ref.n or None,  # None: a statistics file that does not say
        "reference": ref_desc,
        "generated": generated,
        "metrics": list(metrics),
        "seed": options.seed,
        "options": asdict(options),
        "genlab_version": genlab.__version__,
        "world_size": world_size,  # sharded sampling draws other images than one process would
        "seconds": seconds,
        **extra,
    }
    check = conformance(options.protocol, record, options.resize)
    if check is not None:
        record["published_protocol"] = check
    return record


def train_split_of(reference: Reference) -> Reference | None:
    """The training images that go with ``reference`` when none are given: a dataset split's ``train`` split
    (the same size, root and limit); None for an ``ImageData`` or a folder."""
    return replace(reference, split="train") if isinstance(reference, DatasetRef) else None


def _need_train(names: Sequence[str], train: Reference | None) -> None:
    if train is None:
        wanting = [n for n in names if "train" in METRICS.get(n).needs]
        raise GenlabError(f"metric {', '.join(wanting)} compares samples with the training images, which this "
                          "evaluation does not know: compare against a dataset split (its train split is used) "
                          "or pass train=")


def reconstruction_features(
    reconstruct_fn: ReconstructFn, data: ImageData, extractor: FeatureExtractor, batch_size: int = BATCH_SIZE
) -> tuple[FeatureStats, dict[str, Any]]:
    """Statistics of the features of ``data``'s reconstructions, and their mean per-pixel error
    ``{"mse", "mae", "num_images", "units"}`` (pixels in [-1, 1], averaged over images, channels and pixels)."""
    sq = ab = 0.0
    count = 0

    def batches() -> Iterator[torch.Tensor]:
        nonlocal sq, ab, count
        for i in range(0, len(data), batch_size):
            x = to_float(data.images[i:i + batch_size])
            y = data.labels[i:i + batch_size] if data.labels is not None else None
            r = reconstruct_fn(x, y)
            if not isinstance(r, torch.Tensor) or tuple(r.shape) != tuple(x.shape):
                got = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
                raise GenlabError(f"reconstruct_fn must return images shaped like its input {tuple(x.shape)}, "
                                  f"got {got}")
            diff = r.detach().cpu().double() - x.double()
            sq += float((diff * diff).sum())
            ab += float(diff.abs().sum())
            count += diff.numel()
            yield r

    with torch.no_grad():
        feats = compute_features(extractor, batches())
    error = {"mse": sq / count, "mae": ab / count, "num_images": len(data), "units": "per pixel, pixels in [-1, 1]"}
    return FeatureStats.from_features(Features(feats.features), keep=0), error


def _gathered(local: Features, collective: Collective) -> Features:
    """Every rank's feature (and logit) rows in rank order."""
    def rows(a: np.ndarray) -> np.ndarray:
        return collective.gather(torch.from_numpy(np.ascontiguousarray(a))).numpy()

    return Features(rows(local.features), None if local.logits is None else rows(local.logits))


class _KeptImages:
    """``sample_fn`` that also keeps every batch it returns as uint8 (for metrics that train on the images)."""

    def __init__(self, sample_fn: SampleFn):
        self.sample_fn, self.batches = sample_fn, []

    def __call__(self, n: int) -> torch.Tensor:
        images = self.sample_fn(n)
        if isinstance(images, torch.Tensor) and images.ndim == 4:
            self.batches.append(as_uint8(images.detach().cpu()))
        return images


def _drawn_labels(sample_fn: SampleFn, n: int, collective: Collective) -> np.ndarray | None:
    """The classes of the last ``n`` images ``sample_fn`` returned on this rank, gathered over the ranks."""
    report = getattr(sample_fn, "drawn_labels", None)
    labels = report() if callable(report) else None
    if labels is None:
        return None
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) < n:
        raise GenlabError(f"sample_fn.drawn_labels() reports {len(labels)} labels for {n} images")
    return collective.gather(torch.from_numpy(np.ascontiguousarray(labels[-n:]))).numpy()


def evaluate(
    sample_fn: SampleFn,
    num_samples: int,
    reference: Reference | None,
    extractor: str | FeatureExtractor,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    *,
    options: EvalOptions | None = None,
    weights: str | None = None,
    device: str | torch.device = "cpu",
    cache: bool = True,
    collective: Collective = SINGLE_PROCESS,
    train: Reference | None = None,
    reconstruct_fn: ReconstructFn | None = None,
) -> dict[str, Any]:
    """Metrics of ``num_samples`` images from ``sample_fn`` against ``reference``.

    reference: a ``DatasetRef`` (name, split, resolution, channels; ``native_ref`` gives the dataset's one
    yardstick), an ``ImageData``, or a folder of images (read at its own sizes). Its statistics are cached.
    None: only ``options.reference_stats`` (a statistics file) is compared against.
    The generated images may have any size and 1 or 3 channels: the extractor resizes them to its input.
    extractor: a ``FeatureExtractor`` or a ``FEATURE_EXTRACTORS`` name (``weights`` goes to its factory;
    the classifier trains on the reference dataset's train split when not cached).
    collective: the processes that evaluate together (default: this one alone). Every rank calls ``evaluate``;
    rank r draws its share of ``num_samples`` from its own ``sample_fn`` (give each rank different latents)
    under seed ``seed + r``, the features are gathered in rank order and every rank returns the same metrics.
    The extractor and the reference statistics are made (and cached) by rank 0 first; the others then read them.
    train: the training images, for metrics that need them (``copies``); default: a ``DatasetRef``'s train split.
    Its statistics are cached like the reference's (raw rows capped at REFERENCE_ROWS, a seeded subset).
    reconstruct_fn: for ``rfid`` / ``recon`` (models with an encoder): ``(images, labels) -> reconstructions``,
    applied to the whole reference split.
    Returns ``{"fid": float, "kid": {...}, "is": {...}, "pr": {...}, "coverage": {...}, "protocol": {...}}``
    for the chosen metrics.
    """
    names = check_metrics(metrics)
    needs = needed_inputs(names)
    train = train if train is not None else train_split_of(reference)
    if "train" in needs:
        _need_train(names, train)
    options = replace(options or EvalOptions(), seed=seed)
    check_reference_stats(names, options, reference)
    rank, world = collective.rank, collective.world_size
    if world > 1 and num_samples < 2 * world:  # raised by every rank alike, before any collective
        raise GenlabError(f"evaluation on {world} processes needs at least 2 samples each, got {num_samples}")
    dataset = reference if not isinstance(reference, (str, os.PathLike)) else None
    ext = collective.main_first(lambda: resolve_extractor(extractor, dataset, weights, device)).with_resize(
        options.resize)
    check_extractor_head(ext, names)
    own = collective.main_first(lambda: companion_extractors(names, options, ext, device)) \
        if any(METRICS.get(n).extractor for n in names) else {}
    from_file = main_reference_stats(None, ext, options) if options.reference_stats else None  # checked first
    kept = _KeptImages(sample_fn) if "generated_images" in needs else None
    t0 = time.perf_counter()
    local, (resolution, channels) = sample_all_features(kept or sample_fn, shard(num_samples, rank, world)[1],
                                                        distinct(ext, own), batch_size, seed + rank)
    gathered = {id(e): _gathered(f, collective) for e, f in zip(distinct(ext, own), local)}
    generated = gathered[id(ext)]
    optional: dict[str, Any] = {}
    if "generated_labels" in needs:
        optional["generated_labels"] = _drawn_labels(sample_fn, len(local[0]), collective)
    if kept is not None:
        optional["generated_images"] = collective.gather(torch.cat(kept.batches))
    t1 = time.perf_counter()
    ref, ref_desc = from_file or collective.main_first(lambda: reference_stats(
        reference, ext, batch_size=batch_size, cache=cache))  # type: ignore[arg-type]
    companions = {m: (gathered[id(e)], collective.main_first(
        lambda e=e: reference_stats(reference, e, batch_size=batch_size, cache=cache))[0]) for m, e in own.items()}
    if "reference_labels" in needs:
        optional["reference_labels"] = ref.labels
    if "reference_images" in needs:  # CAS tests a classifier trained on generated images: real ones at their size
        real_ref = replace(reference, resolution=resolution, channels=channels) \
            if isinstance(reference, DatasetRef) else reference
        real = load_reference(real_ref, resolution, channels)
        optional["reference_images"] = real if real.labeled else None
    t2 = time.perf_counter()
    more, extra = _optional_inputs(needs, ext, reference, train, reconstruct_fn, resolution, channels,
                                   batch_size, cache, collective)
    optional.update(more)
    details: dict[str, Any] = {}
    values, metric_s = evaluate_features(generated, ref, names, options, details, companions, **optional)
    seconds = {"sampling_and_features": round(t1 - t0, 3), "reference": round(t2 - t1, 3), "metrics": metric_s,
               **extra.pop("seconds")}
    gen_desc = {"sampler": getattr(sample_fn, "__name__", type(sample_fn).__name__),
                "resolution": resolution, "channels": channels, "resized": ext.resizes(resolution, channels)}
    protocol = _protocol(ext, len(generated), ref, ref_desc, gen_desc, names, options, seconds, world, details, own)
    return {**values, "protocol": {**protocol, **extra}}


def _optional_inputs(
    needs: set[str], ext: FeatureExtractor, reference: Reference, train: Reference | None,
    reconstruct_fn: ReconstructFn | None, resolution: int | None, channels: int | None, batch_size: int,
    cache: bool,
    collective: Collective = SINGLE_PROCESS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The optional metric inputs ``needs`` asks for that can be made here, and what goes into the protocol
    about them (``train``: its description and rows searched; ``reconstructed``: images; ``seconds``)."""
    optional: dict[str, Any] = {}
    extra: dict[str, Any] = {"seconds": {}}
    if "train" in needs and train is not None:
        t0 = time.perf_counter()
        stats, desc = collective.main_first(lambda: reference_stats(
            train, ext, resolution=resolution, channels=channels, batch_size=batch_size, cache=cache))
        optional["train"] = stats
        rows = 0 if stats.features is None else len(stats.features)
        extra["train"] = {**desc, "num_train": stats.n, "rows_searched": rows}
        extra["seconds"]["train_reference"] = round(time.perf_counter() - t0, 3)
    if needs & set(RECONSTRUCTION_INPUTS) and reconstruct_fn is not None:
        t0 = time.perf_counter()
        # the model reconstructs images at its own size (the reference may be at the dataset's native size)
        own = replace(reference, resolution=resolution, channels=channels) \
            if isinstance(reference, DatasetRef) else reference
        data = load_reference(own, resolution, channels)
        optional["reconstructed"], optional["reconstruction_error"] = reconstruction_features(
            reconstruct_fn, data, ext, batch_size)
        extra["reconstructed"] = {"images": len(data), "how": "encoder mean -> decoder, the whole reference split"}
        extra["seconds"]["reconstruction"] = round(time.perf_counter() - t0, 3)
    return optional, extra


def evaluate_folder(
    folder: str | os.PathLike,
    against: Reference | None,
    extractor: str | FeatureExtractor,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    options: EvalOptions | None = None,
    weights: str | None = None,
    device: str | torch.device = "cpu",
    cache: bool = True,
    train: Reference | None = None,
) -> dict[str, Any]:
    """Metrics of the images in ``folder`` against a dataset split, an ``ImageData`` or another folder (``against``
    None: against ``options.reference_stats`` alone).

    Without ``resolution`` / ``channels`` each folder is read as it is (every image at its own size, mixed
    sizes included: ``genlab.metrics.reference.iter_folder``) and the extractor resizes everything to its
    input, as ``python -m pytorch_fid A B`` does. With them, folders are decoded at that size first (Pillow,
    LANCZOS; a dataset reference is given at its own size by the caller).
    ``train``: as for :func:`evaluate` (``copies``).
    """
    names = check_metrics(metrics)
    needs = needed_inputs(names)
    train = train if train is not None else (train_split_of(against) if against is not None else None)
    if "train" in needs:
        _need_train(names, train)
    options = replace(options or EvalOptions(), seed=seed)
    check_reference_stats(names, options, against)
    if resolution is None and channels is not None:
        raise GenlabError("channels= decodes the folders at a size: give resolution= too")
    if resolution is not None and channels is None:  # the reference's channels, else RGB
        if isinstance(against, DatasetRef):
            channels = against.channels
        else:
            channels = int(against.images.shape[1]) if isinstance(against, ImageData) else 3
    dataset = against if isinstance(against, (DatasetRef, ImageData)) else None
    ext = resolve_extractor(extractor, dataset, weights, device).with_resize(options.resize)
    check_extractor_head(ext, names)
    own = companion_extractors(names, options, ext, device)
    from_file = main_reference_stats(None, ext, options) if options.reference_stats else None  # checked first
    extractors = distinct(ext, own)
    t0 = time.perf_counter()
    if resolution is None:
        sizes: list[str] = []
        feats = compute_all_features(extractors, iter_folder(folder, batch_size, sizes), task="features",
                                     total=len(folder_files(folder)))
        gen_desc = {"folder": str(folder), "decoded": "as is", "sizes": sizes}
    else:
        data = load_reference(folder, resolution, channels)
        feats = compute_all_features(extractors, iter_batches(data.images, batch_size), task="features",
                                     total=len(data))
        gen_desc = {"folder": str(folder), "resolution": resolution, "channels": channels,
                    "resized": ext.resizes(resolution, channels)}
    by_ext = {id(e): f for e, f in zip(extractors, feats)}
    generated = by_ext[id(ext)]
    t1 = time.perf_counter()
    ref, ref_desc = from_file or reference_stats(against, ext, resolution=resolution, channels=channels,  # type: ignore[arg-type]
                                                 batch_size=batch_size, cache=cache)
    companions = {m: (by_ext[id(e)], reference_stats(against, e, resolution=resolution, channels=channels,  # type: ignore[arg-type]
                                                     batch_size=batch_size, cache=cache)[0]) for m, e in own.items()}
    t2 = time.perf_counter()
    optional, extra = _optional_inputs(needs, ext, against, train, None, resolution, channels, batch_size, cache)
    details: dict[str, Any] = {}
    values, metric_s = evaluate_features(generated, ref, names, options, details, companions, **optional)
    seconds = {"sampling_and_features": round(t1 - t0, 3), "reference": round(t2 - t1, 3), "metrics": metric_s,
               **extra.pop("seconds")}
    protocol = _protocol(ext, len(generated), ref, ref_desc, gen_desc, names, options, seconds, details=details,
                         companions=own)
    return {**values, "protocol": {**protocol, **extra}}
