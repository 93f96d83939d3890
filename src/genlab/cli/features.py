"""`genlab features ...`: the feature extractors behind the metrics."""
from __future__ import annotations

from pathlib import Path

import typer

from genlab.metrics.protocols import BATCH_SIZE

app = typer.Typer(no_args_is_help=True)


@app.command("train-classifier")
def train_classifier_cmd(
    dataset: str = typer.Argument(..., help="a labeled dataset, e.g. fashion-mnist"),
    resolution: int | None = typer.Option(None, "--resolution", help="the dataset's native size (the default "
                                          "and the only one: generated images are resized to it)"),
    channels: int | None = typer.Option(None, "--channels", help="the dataset's native channels (the default)"),
    root: str | None = typer.Option(None, "--root", help="folder with the dataset's files"),
    retrain: bool = typer.Option(False, "--retrain", help="train again even if a cached one exists"),
    cached_only: bool = typer.Option(False, "--cached-only", help="train nothing: print the cached classifier "
                                     "(exit 0), or say that there is none (exit 1)"),
    width: int | None = typer.Option(None, "--width", help="another base width, to measure it: trained and "
                                     "reported, not cached (the metrics keep the default recipe)"),
    epochs: int | None = typer.Option(None, "--epochs", help="other epochs, to measure them: trained and "
                                      "reported, not cached"),
    no_verify: bool = typer.Option(False, "--no-verify", help="use dataset files whose md5 is not the published"),
) -> None:
    """Train (or find in the cache) genlab's classifier extractor for a dataset, at the dataset's native size
    (one per dataset); print its accuracy and hash. With --width or --epochs: train that variant and print its
    accuracy and time, without caching it."""
    from genlab.cli import console, positive
    from genlab.cli.progress_bars import metric_progress
    from genlab.errors import ConfigError
    from genlab.metrics import train_classifier
    from genlab.metrics.reference import native_size

    positive(resolution, "--resolution", "an image side in pixels", minimum=8)
    positive(width, "--width", "the classifier's base width in channels")
    positive(epochs, "--epochs", "a number of epochs")
    experiment = width is not None or epochs is not None
    if experiment and (cached_only or retrain):
        raise ConfigError("--width/--epochs train a variant to measure it (never cached); drop "
                          f"{'--cached-only' if cached_only else '--retrain'}")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"--channels {channels} is not allowed: 1 (grayscale) or 3 (RGB)")
    res, ch = native_size(dataset)
    if cached_only:
        from genlab.metrics.features.classifier import find_cached_classifier
        from genlab.metrics.reference import dataset_key

        path = find_cached_classifier(dataset_key(dataset, root), res, ch)
        if path is None:
            console.print(f"no cached classifier for {dataset} at {res}px/{ch}ch; `genlab features train-classifier "
                          f"{dataset}` trains it (once)")
            raise typer.Exit(1)
        console.print(str(path))
        return
    with metric_progress(console):
        r = train_classifier(dataset, resolution, channels, root=root, retrain=retrain, width=width, epochs=epochs,
                             cache=not experiment, verify=not no_verify)
    acc = "n/a" if r.test_accuracy is None else f"{r.test_accuracy:.4f}"
    if experiment:
        from genlab.metrics.features.classifier import default_width

        console.print(f"classifier variant for {dataset} at {res}px/{ch}ch, width {width or default_width(ch)}, "
                      f"{epochs or 'the default'} epochs: test accuracy {acc}, trained in {r.train_seconds:.0f}s on "
                      "one thread; not cached")
        return
    console.print(f"classifier for {dataset} at {res}px/{ch}ch: test accuracy {acc}, trained in "
                  f"{r.train_seconds:.0f}s, hash {r.hash[:16]}; cached at {r.path}")


@app.command("list")
def list_extractors() -> None:
    """The registered feature extractors."""
    from genlab.cli import console
    from genlab.metrics import FEATURE_EXTRACTORS

    for name in FEATURE_EXTRACTORS.names():
        console.print(name)


@app.command("stats")
def stats_cmd(
    source: str = typer.Argument(..., help="DATASET[:SPLIT] (e.g. cifar10, cifar10:test), a folder of images, a run "
                                 "or export folder, or an .npz of images"),
    out: Path = typer.Option(..., "-o", "--out", help="the .npz to write (mu, sigma: pytorch-fid's format)"),
    features: str = typer.Option("inception", "--features", help="the extractor (inception: what published "
                                 "statistics use; auto, classifier, dinov2-*, clip-vitl14-336)"),
    split: str = typer.Option("train", "--split", help="a dataset's split when SOURCE names none (published "
                              "statistics are of the training split)"),
    num_samples: int | None = typer.Option(None, "--num-samples", help="images drawn from a run or export "
                                           "(default 50000, the paper protocol's)"),
    resize: str | None = typer.Option(None, "--resize", help="legacy (pytorch-fid's) | clean (clean-fid's); "
                                      "default: the extractor's own"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="a run's checkpoint: last | best | PATH"),
    root: str | None = typer.Option(None, "--root", help="folder with the dataset's files"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(BATCH_SIZE, "--batch-size"),
    weights: str | None = typer.Option(None, "--weights", help="the extractor's weights file"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"),
    no_verify: bool = typer.Option(False, "--no-verify", help="use dataset files whose md5 is not the published"),
) -> None:
    """Write the feature statistics (mu, sigma) of a dataset, a folder or a generator to an .npz that
    pytorch-fid, clean-fid and `genlab eval --reference-stats` read."""
    from genlab.cli import console, on_ctrl_c, output_path, positive
    from genlab.cli.progress_bars import metric_progress
    from genlab.errors import ConfigError
    from genlab.metrics.features.base import RESIZE_MODES
    from genlab.scoring import feature_stats

    positive(num_samples, "--num-samples", "the number of images")
    positive(batch_size, "--batch-size", "images per batch")
    if out.suffix != ".npz":
        raise ConfigError(f"-o {out}: statistics files end in .npz (the format pytorch-fid and clean-fid read)")
    if resize is not None and resize not in RESIZE_MODES:
        raise ConfigError(f"--resize {resize} is not allowed: legacy (pytorch-fid) or clean (clean-fid)")
    output_path(out, "-o", (".npz",))
    with on_ctrl_c("nothing was written"), metric_progress(console):
        path, stats, meta = feature_stats(source, out, features=features, split=split, num_samples=num_samples,
                                          resize=resize, seed=seed, batch_size=batch_size, weights=weights,
                                          device=device, checkpoint=checkpoint, root=root, verify=not no_verify)
    ext = meta["extractor"]
    console.print(f"statistics of {stats.n} images, {ext['name']} features ({stats.dim}-d, {ext['resize']}): "
                  f"wrote {path}")
