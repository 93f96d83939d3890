"""``classifier``: a compact CNN that genlab trains itself on any labeled dataset; works offline.

Its 128-d penultimate layer (the batch-normalised embedding, before the ReLU, so no dimension is dead)
feeds FID/KID/PR; its softmax feeds IS and the class histogram. Numbers are comparable only between
results with the same extractor hash (which every result records).

One yardstick per dataset: trained once per dataset (and ``root``), at the dataset's native size
(``genlab.metrics.reference.native_size``: Fashion-MNIST/MNIST 28px/1ch, CIFAR-10 32px/3ch, Flowers-102 and
image folders 64px/3ch), on the train split, whatever size the models evaluated with it generate: their
images are resized and recoloured to it by the extractor (``base.to_input``), so a 32px and a 64px model of
one dataset are judged by the same network against the same reference statistics. Cached at
``cache_dir()/extractors/classifier-<dataset>-<res>-<ch>-<weights hash>.pt`` (res/ch: the native size;
weights + config, loaded with ``weights_only=True``). The weights hash is ``weights_hash`` of the network
and is re-checked on load. Training reports progress (steps, running train accuracy, then the test
accuracy) through ``genlab.metrics.work_progress``; the CLI shows it as a Rich bar.
Default recipe: width 16 for grey datasets and 24 for colour ones (``default_width``), 3 epochs (more on small
datasets: at least 1000 steps), Adam with a one-cycle schedule, batch 128, random shifts of up to 2 pixels, one
torch thread. On Fashion-MNIST 28x28 width 16 reaches 91.3% test accuracy in 3 epochs, width 24 91.5% with 1.7x the
time (223 s vs 132 s on an AVX2 2-core CPU, where it is the longest part of a first evaluation); the width is part
of the cache name, so a classifier of another width is never reused. ``genlab features train-classifier
fashion-mnist --width 24`` (or ``--epochs 2``) trains and measures such a variant without caching it.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import genlab
from genlab.data.base import ImageData, to_float
from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, cache_dir
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, weights_hash
from genlab.metrics.reference import DatasetRef, dataset_key, load_split, native_size, safe_name
from genlab.metrics.seeding import seeded
from genlab.metrics.stats import FeatureWarning
from genlab.metrics.work_progress import report

log = logging.getLogger("genlab.metrics")

FEATURE_DIM = 128
# With epochs=None, train at least this many epochs and at least MIN_STEPS optimiser steps (small datasets).
MIN_EPOCHS = 3
MIN_STEPS = 1000
# Optimiser steps between two progress reports (each reads the running accuracy back from the device).
REPORT_EVERY = 20


def default_width(channels: int) -> int:
    """The classifier's base width: 16 for grey images (measured on Fashion-MNIST: 91.3% vs 91.5% for 24, in 0.6x
    the time), 24 for colour ones (CIFAR-10 and the 64px datasets, not re-measured here)."""
    return 16 if channels == 1 else 24


class CompactClassifier(nn.Module):
    """conv(width) then stride-2 convs (doubling width up to 4x) until the grid is <= 8x8, then
    flatten -> linear -> BatchNorm1d (the features) -> ReLU -> linear (the logits)."""

    def __init__(
        self, channels: int, resolution: int, num_classes: int, width: int | None = None,
        feature_dim: int = FEATURE_DIM,
    ):
        super().__init__()
        width = width or default_width(channels)
        self.config = dict(channels=channels, resolution=resolution, num_classes=num_classes,
                           width=width, feature_dim=feature_dim)
        layers: list[nn.Module] = [*_conv_bn_relu(channels, width, 1)]
        size, w = resolution, width
        while size > 8:
            w_next = min(2 * w, 4 * width)
            layers += _conv_bn_relu(w, w_next, 2)
            size, w = math.ceil(size / 2), w_next
        self.body = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(w * size * size, feature_dim, bias=False),
                                   nn.BatchNorm1d(feature_dim))
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.embed(self.body(x))
        return f, self.head(F.relu(f))


def _conv_bn_relu(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@dataclass(frozen=True)
class TrainedClassifier:
    path: Path | None  # None: trained to be measured (another width or epochs), not cached
    hash: str
    test_accuracy: float | None
    train_seconds: float


def _shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2, groups: int = 4) -> torch.Tensor:
    """Random translations of up to ``max_shift`` pixels (edge pixels repeated), one per group of rows."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    out = torch.empty_like(x)
    for rows in torch.arange(n).chunk(groups):
        dy, dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
        out[rows] = padded[rows, :, dy : dy + h, dx : dx + w]
    return out


@torch.inference_mode()
def accuracy(model: nn.Module, data: ImageData, batch_size: int = 500, device: str | torch.device = "cpu") -> float:
    model.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        _, logits = model(to_float(data.images[i : i + batch_size].to(device)))
        correct += int((logits.argmax(1).cpu() == data.labels[i : i + batch_size]).sum())
    return correct / max(len(data), 1)


def auto_epochs(n: int, batch_size: int) -> int:
    return max(MIN_EPOCHS, math.ceil(MIN_STEPS / max(n // batch_size, 1)))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch threads (None: unchanged), restoring the previous count afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_classifier(
    train: ImageData,
    *,
    epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 4e-3,
    seed: int = 0,
    augment: bool = True,
    device: str | torch.device = "cpu",
    threads: int | None = 1,
    width: int | None = None,
) -> CompactClassifier:
    """Train a ``CompactClassifier`` on labeled uint8 ``train`` data; seeded, leaves global RNG untouched.

    ``epochs=None``: ``MIN_EPOCHS`` (3) epochs, more on small datasets so that at least ``MIN_STEPS`` steps run.
    ``threads``: torch threads while training, restored afterwards (None: torch's setting). One by default:
    this net's small ops gain little from a second core on an idle 2-core CPU, while on a shared, loaded one
    two threads stall at every OpenMP barrier (Fashion-MNIST measured under a load average of ~8:
    176 s with one thread, 763 s with two).
    """
    with torch_threads(threads):
        return _fit(train, epochs, batch_size, lr, seed, augment, device, width)


def _fit(train: ImageData, epochs: int | None, batch_size: int, lr: float, seed: int, augment: bool,
         device: str | torch.device, width: int | None = None) -> CompactClassifier:
    if not train.labeled:
        raise GenlabError(
            f"the classifier extractor needs a labeled dataset; {train.name or 'this data'} has no labels"
        )
    n, c, h, w = train.images.shape
    if h != w:
        raise GenlabError(f"the classifier extractor needs square images, got {h}x{w}")
    gen = torch.Generator().manual_seed(seed)
    with seeded(seed):  # the CPU's stream only: the weights are drawn there, then moved
        # channels-last: ~1.2x faster training through oneDNN convolutions on CPU
        model = CompactClassifier(c, h, train.num_classes, width=width).to(device).to(
            memory_format=torch.channels_last)
    steps_per_epoch = max(n // batch_size, 1)
    epochs = epochs or auto_epochs(n, batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr / 10)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
    model.train()
    total = epochs * steps_per_epoch
    task = progress_task(train.name, h, c)
    report(task, 0, total, f"epoch 1/{epochs}")
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size : (step + 1) * batch_size]
            x = to_float(train.images[idx])
            if augment:
                x = _shift(x, gen)
            y = train.labels[idx].to(device)
            _, logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(idx)
            done = epoch * steps_per_epoch + step + 1
            if done % REPORT_EVERY == 0 or step == steps_per_epoch - 1:
                report(task, done, total, f"epoch {epoch + 1}/{epochs} loss {loss.item():.3f} "
                                          f"train acc {int(correct) / seen:.1%}")
        log.info("classifier epoch %d/%d: loss %.3f, train accuracy %.4f", epoch + 1, epochs, loss.item(),
                 int(correct) / max(seen, 1))
    return model.eval()


def progress_task(dataset: str, resolution: int, channels: int) -> str:
    """The progress task name of training the classifier of ``dataset``."""
    return f"classifier {dataset or 'dataset'} {resolution}px/{channels}ch"


def extractor_dir() -> Path:
    return cache_dir() / "extractors"


def _stem(dataset: str, resolution: int, channels: int, width: int | None = None) -> str:
    return f"classifier-{safe_name(dataset)}-{resolution}-{channels}-w{width or default_width(channels)}"


def find_cached_classifier(dataset: str, resolution: int, channels: int) -> Path | None:
    """The newest cached classifier for (dataset, resolution, channels) that loads and fits, or None. A cached
    file that does not (damaged, weights that differ from their hash, non-finite weights, another size) is set
    aside as ``<name>.pt.corrupt`` with a warning, so the classifier is trained again."""
    found = sorted(extractor_dir().glob(_stem(dataset, resolution, channels) + "-*.pt"),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found:
        try:
            _, meta = load_classifier(path)
            cfg = meta["config"]
            if (cfg["resolution"], cfg["channels"]) != (resolution, channels):
                raise GenlabError(f"it is a {cfg['resolution']}px/{cfg['channels']}ch classifier")
        except (GenlabError, KeyError, TypeError) as e:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            warnings.warn(f"the cached classifier extractor {path} does not fit ({e}); set aside as {aside.name}, "
                          "training it again", FeatureWarning, stacklevel=2)
            continue
        return path
    return None


def save_classifier(model: CompactClassifier, dataset: str, meta: dict[str, Any]) -> tuple[Path, str]:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    h = weights_hash(state)
    cfg = model.config
    path = extractor_dir() / f"{_stem(dataset, cfg['resolution'], cfg['channels'], cfg['width'])}-{h}.pt"
    payload = {"state_dict": state, "config": dict(cfg), "dataset": dataset, "hash": h,
               "genlab_version": genlab.__version__, **meta}
    atomic_torch_save(payload, path)
    return path, h


def load_classifier(path: str | Path) -> tuple[CompactClassifier, dict[str, Any]]:
    """The network and its checkpoint metadata; the weights hash is checked against the stored one."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        model = CompactClassifier(**payload["config"])
        model.load_state_dict(payload["state_dict"], strict=True)
    except Exception as e:
        raise GenlabError(f"cannot load the classifier extractor {path}: {e}; delete it to retrain") from None
    h = weights_hash(model.state_dict())
    if h != payload.get("hash"):
        raise GenlabError(f"classifier extractor {path}: weights hash {h} does not match the stored "
                          f"{payload.get('hash')}; delete the file to retrain")
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise GenlabError(f"classifier extractor {path}: non-finite weights in {bad[0]}; delete the file to retrain")
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.eval(), meta


def train_classifier(
    dataset_name: str,
    resolution: int | None = None,
    channels: int | None = None,
    *,
    root: str | None = None,
    epochs: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
    retrain: bool = False,
    threads: int | None = 1,
    verify: bool = True,
    width: int | None = None,
    cache: bool = True,
) -> TrainedClassifier:
    """Train (or reuse the cached) classifier for ``dataset_name``, at the dataset's native size.

    ``width``: the base width (None: ``default_width``). ``cache=False``: train and measure only, no cached
    file is read or written (``path`` is None): for trying other widths or epochs without the metrics' yardstick
    changing (``genlab features train-classifier --width/--epochs``).

    ``resolution`` / ``channels``: None, or the native size itself (other sizes are refused: there is one
    classifier per dataset). Trains on the whole ``train`` split and reports accuracy on the ``test`` split
    when the dataset has one. The cache holds one classifier per (dataset, root); ``retrain`` replaces its
    use (the newest file wins). ``verify``: data.verify of the dataset's raw files.
    """
    native = native_size(dataset_name)
    asked = (resolution or native[0], channels or native[1])
    if asked != native:
        raise GenlabError(f"the classifier extractor of {dataset_name} is trained at the dataset's native size "
                          f"{native[0]}px/{native[1]}ch, not {asked[0]}px/{asked[1]}ch: images of any size are "
                          "resized to it, so leave the size out")
    resolution, channels = native
    ref = DatasetRef(dataset_name, "train", resolution, channels, root=root, verify=verify)
    key = dataset_key(dataset_name, root)
    cached = None if retrain or not cache else find_cached_classifier(key, resolution, channels)
    if cached is not None:
        _, meta = load_classifier(cached)
        seconds = float(meta.get("train_seconds", 0.0))
        return TrainedClassifier(cached, meta["hash"], meta.get("test_accuracy"), seconds)
    train = load_split(ref)
    epochs = epochs or auto_epochs(len(train), batch_size)
    t0 = time.perf_counter()
    model = fit_classifier(train, epochs=epochs, batch_size=batch_size, seed=seed, device=device, threads=threads,
                           width=width)
    seconds = time.perf_counter() - t0
    acc = None
    try:
        test = load_split(DatasetRef(dataset_name, "test", resolution, channels, root=root, verify=verify))
        acc = accuracy(model, test, device=device)
    except GenlabError as e:
        log.warning("no test split to measure the classifier on (%s)", e)
    if acc is not None:
        log.info("classifier for %s: test accuracy %.4f after %.0f s", dataset_name, acc, seconds)
        steps = epochs * max(len(train) // batch_size, 1)
        report(progress_task(train.name, resolution, channels), steps, steps, f"test acc {acc:.1%}")
    if not cache:
        return TrainedClassifier(None, weights_hash(model.state_dict()), acc, seconds)
    path, h = save_classifier(model.cpu(), key, {
        "class_names": list(train.class_names), "test_accuracy": acc, "train_seconds": seconds,
        "epochs": epochs, "train_images": len(train), "seed": seed,
    })
    return TrainedClassifier(path, h, acc, seconds)


def _dataset_fields(dataset: Any) -> tuple[str, str | None, bool]:
    if dataset is None:
        raise GenlabError("the classifier extractor needs a labeled dataset to train on (dataset=...)")
    name = dataset if isinstance(dataset, str) else getattr(dataset, "name", None)
    if not name:
        raise GenlabError(f"cannot tell which dataset {dataset!r} is; pass its name")
    return name, getattr(dataset, "root", None), bool(getattr(dataset, "verify", True))


@FEATURE_EXTRACTORS.register("classifier")
def classifier_extractor(
    dataset: Any | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    train: bool = True,
    batch_size: int = 500,
) -> FeatureExtractor:
    """The classifier extractor from ``weights`` (a saved checkpoint), else the cache, else trained now.

    ``dataset`` is a dataset name or any object with ``name`` (and ``root``, ``verify``). The classifier is the
    dataset's one, at its native size; ``resolution`` / ``channels`` (the generated images' size) are unused:
    images of any size are resized to the classifier's input.
    """
    if weights is not None:
        path = Path(weights).expanduser()
    else:
        name, root, verify = _dataset_fields(dataset)
        res, ch = native_size(name)
        path = find_cached_classifier(dataset_key(name, root), res, ch)
        if path is None:
            if not train:
                raise GenlabError(f"no cached classifier extractor for {name} ({res}px/{ch}ch); train one first: "
                                  f"genlab features train-classifier {name}")
            log.info("training the classifier extractor for %s at %dpx/%dch (once; cached)", name, res, ch)
            path = train_classifier(name, root=root, verify=verify).path
    model, meta = load_classifier(path)
    cfg = meta["config"]
    return FeatureExtractor(
        model,
        name="classifier",
        hash=meta["hash"],
        feature_dim=cfg["feature_dim"],
        num_classes=cfg["num_classes"],
        resolution=cfg["resolution"],
        channels=cfg["channels"],
        batch_size=batch_size,
        device=device,
        info={"dataset": meta.get("dataset"), "test_accuracy": meta.get("test_accuracy"), "weights": str(path)},
    )
