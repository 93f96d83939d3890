"""Evaluation speed on this machine: extractor throughput, Frechet distance routes, a 10k-sample evaluation,
and the newer metrics (CMMD, FD_DINOv2, Vendi) against FID at equal samples.

    python benchmarks/eval_throughput.py [--num-samples 10000] [--dataset fashion-mnist] [--skip-inception]
    python benchmarks/eval_throughput.py --device cuda --skip frechet evaluation   # extractors on a GPU

On a shared, loaded machine multi-threaded BLAS/OpenMP can stall at every barrier (measured: eigh of a
2048x2048 matrix 10-16 s with 2 threads vs 1.8 s with 1 under a load of ~8); compare with
``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/eval_throughput.py``.

Prints three tables; nothing is asserted (targets are printed next to the figures):
1. images/s through each registered feature extractor (random weights where the real ones are absent --
   said so in the table; speed does not depend on the weights' values);
2. Frechet distance on 2048-d statistics (``--fid-dim``): genlab's route (a Cholesky factor, LAPACK sygst and
   eigenvalues only) vs scipy's sqrtm route (target: >= 10x faster), and how far apart their values are;
3. sampling + evaluation of N samples from a random small generator with the classifier extractor against
   the dataset's test split, with every default metric (``DEFAULT_METRICS``) plus ``EXTRA_METRICS``, one row
   per metric with its seconds (target: the whole default evaluation of 10k samples under 20 s after the
   first run). The first run trains the classifier (once, cached) and computes reference statistics (once,
   cached); both are reported separately from the evaluation.
4. the metrics at equal samples, from their features (random rows of each metric's own feature size): FID on
   2048-d Inception-like rows, FD_DINOv2 on 1024-d (ViT-L/14), CMMD on 768-d unit rows (CLIP ViT-L/14@336), the
   Vendi score on 2048-d; seconds of each for N generated against N reference rows. Table 1 gives the
   extractors' images/s (ViT-L/14 DINOv2 and CLIP ViT-L/14@336 with random weights: the speed is the
   architecture's, ``--vit-images`` per extractor; ``--device cuda`` times them on a GPU).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.metrics import DEFAULT_METRICS, evaluate, frechet_distance, frechet_distance_sqrtm
from genlab.metrics.cmmd import mmd2_rbf
from genlab.metrics.features import FEATURE_EXTRACTORS, FeatureExtractor, get_extractor, train_classifier
from genlab.metrics.features.base import weights_hash
from genlab.metrics.features.classifier import CompactClassifier, find_cached_classifier
from genlab.metrics.features.clip import CLIPFeatures
from genlab.metrics.features.dinov2 import DINOv2Features
from genlab.metrics.features.dinov2_net import ARCHS
from genlab.metrics.features.inception_fid import InceptionWeightsWarning, find_inception_weights
from genlab.metrics.features.inception_net import FIDInceptionV3
from genlab.metrics.reference import dataset_key, native_ref, native_size
from genlab.metrics.vendi import vendi_score

#: metrics timed in table 3 beyond DEFAULT_METRICS: ``copies`` is in `genlab eval`'s default for every run (its
#: training rows: the dataset's train split, cached like the reference). The conditional scores need a conditional
#: sampler and rfid/recon a model with an encoder, which the random generator here is not.
EXTRA_METRICS: tuple[str, ...] = ("copies",)
#: the whole default evaluation of 10k samples (sampling, features and every metric, reference cached)
DEFAULT_EVAL_BUDGET_S = 20.0


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print(line)
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))


def classifier_for_speed(args) -> tuple[FeatureExtractor, str]:
    path = find_cached_classifier(dataset_key(args.dataset, args.data_root), *native_size(args.dataset))
    if path is not None:
        return get_extractor("classifier", weights=path), "trained (cached)"
    torch.manual_seed(0)
    net = CompactClassifier(args.channels, args.resolution, 10)
    ext = FeatureExtractor(net, name="classifier", hash=weights_hash(net.state_dict()), feature_dim=128,
                           num_classes=10, resolution=args.resolution, channels=args.channels, batch_size=500)
    return ext, "RANDOM weights (no cached classifier yet)"


def inception_for_speed() -> tuple[FeatureExtractor, str]:
    try:
        return get_extractor("inception", weights=find_inception_weights(download=False)), "published weights"
    except GenlabError:
        # Random weights in the published layout, loaded through the real (strict) path.
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "random-inception.pth"
            torch.save(FIDInceptionV3().state_dict(), path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InceptionWeightsWarning)
                ext = get_extractor("inception", weights=path)
        return ext, "RANDOM weights (real file absent; FID values would be meaningless, speed is not)"


def vit_for_speed(name: str, device: str) -> tuple[FeatureExtractor, str]:
    """A DINOv2 or CLIP extractor with random weights (the real ones cannot be assumed here; speed does not
    depend on their values), built as the registered one is, on ``device``."""
    torch.manual_seed(0)
    if name.startswith("dinov2-"):
        arch = name.split("-", 1)[1]
        net, dim = DINOv2Features(arch), ARCHS[arch].embed_dim
    else:
        net = CLIPFeatures()
        dim = net.tower.cfg.embed_dim
    ext = FeatureExtractor(net, name=name, hash="random", feature_dim=dim, num_classes=0, batch_size=16,
                           device=device)
    return ext, "RANDOM weights (the architecture's speed)"


def time_extractor(ext: FeatureExtractor, n: int, resolution: int, channels: int) -> float:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    ext.features(images[: min(4, n)])  # warm-up
    if ext.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ext.features(images)
    if ext.device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def bench_extractors(args) -> None:
    rows = []
    builders = {"classifier": lambda: classifier_for_speed(args), "inception": inception_for_speed}
    for name, _ in FEATURE_EXTRACTORS.items():
        vit = name.startswith(("dinov2-", "clip-"))
        if name == "inception" and args.skip_inception:
            rows.append([name, "-", "-", "skipped (--skip-inception)"])
            continue
        if vit and args.skip_vits:
            rows.append([name, "-", "-", "skipped (--skip-vits)"])
            continue
        ext, weights = vit_for_speed(name, args.device) if vit else builders[name]()
        if not vit:
            ext.net.to(args.device)
            ext.device = torch.device(args.device)
        n = args.vit_images if vit else args.inception_images if name == "inception" else args.classifier_images
        ips = time_extractor(ext, n, args.resolution, args.channels)
        rows.append([name, f"{n}", f"{ips:,.2f}", weights])
        del ext
    where = f"{torch.get_num_threads()} torch threads" if args.device == "cpu" else args.device
    table(f"1. feature extractors on {args.resolution}x{args.resolution}x{args.channels} uint8 images ({where})",
          ["extractor", "images", "images/s", "weights"], rows)


def relu_rows(rng: np.random.Generator, n: int, d: int, shift: float = 0.0, unit: bool = False) -> np.ndarray:
    """(n, d) float32 ReLU-like feature rows (as pool features are); ``unit``: L2-normalised (as CLIP's)."""
    x = np.maximum(rng.normal(size=(n, d)) + shift, 0).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True) if unit else x


def timed(fn, *args) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - t0, value


def fd_of_rows(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def bench_modern_metrics(args) -> None:
    """Seconds of each metric from features, N generated vs N reference rows, in each metric's feature size."""
    rows = []
    for n in args.metric_rows:
        rng = np.random.default_rng(n)
        timings = {
            "FID (2048-d)": timed(fd_of_rows, relu_rows(rng, n, 2048), relu_rows(rng, n, 2048, 0.1)),
            "FD_DINOv2 (1024-d)": timed(fd_of_rows, relu_rows(rng, n, 1024), relu_rows(rng, n, 1024, 0.1)),
            "CMMD (768-d, unbiased)": timed(mmd2_rbf, relu_rows(rng, n, 768, unit=True),
                                            relu_rows(rng, n, 768, 0.1, unit=True)),
            "Vendi (2048-d)": timed(vendi_score, relu_rows(rng, n, 2048)),
        }
        base = timings["FID (2048-d)"][0]
        for name, (sec, value) in timings.items():
            rows.append([f"{n}", name, f"{sec:.2f}", f"{sec / base:.2f}x", f"{value:.4g}"])
    table("4. metrics from features at equal samples (N generated vs N reference rows; FID's and FD's seconds "
          "include their covariances)", ["N", "metric", "seconds", "vs FID", "value (random rows)"], rows)


def random_stats(d: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ (rng.normal(size=(d, d)) / np.sqrt(d)) + rng.normal(size=d)
    x = np.maximum(x, 0)  # ReLU-like, as pool features are
    return x.mean(0), np.cov(x, rowvar=False)


def bench_frechet(args) -> None:
    d = args.fid_dim
    mu1, s1 = random_stats(d, args.fid_rows, 0)
    mu2, s2 = random_stats(d, args.fid_rows, 1)
    t_eigh = math.inf
    for _ in range(3):  # best of three: genlab's route is short, so one scheduler hiccup would dominate it
        t0 = time.perf_counter()
        ours = frechet_distance(mu1, s1, mu2, s2)
        t_eigh = min(t_eigh, time.perf_counter() - t0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        textbook = frechet_distance_sqrtm(mu1, s1, mu2, s2)
    t_sqrtm = time.perf_counter() - t0
    table(f"2. Frechet distance, {d}-d statistics from {args.fid_rows} rows (float64; genlab: best of 3)",
          ["route", "seconds", "value", "note"],
          [["Cholesky + eigvalsh (genlab)", f"{t_eigh:.2f}", f"{ours:.6f}", ""],
           ["scipy.linalg.sqrtm(S1 S2)", f"{t_sqrtm:.2f}", f"{textbook:.6f}",
            f"relative difference {abs(ours - textbook) / abs(textbook):.1e}"],
           ["speed ratio", f"{t_sqrtm / t_eigh:.1f}x", "", "target >= 10x"]])


def small_generator(channels: int, resolution: int, z_dim: int = 64) -> nn.Module:
    s = resolution // 4
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(z_dim, 128 * s * s), nn.Unflatten(1, (128, s, s)), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, channels, 4, 2, 1), nn.Tanh(),
    ).eval()


def bench_evaluation(args) -> None:
    rows = []
    t0 = time.perf_counter()
    trained = train_classifier(args.dataset, root=args.data_root, verify=not args.no_verify)  # at its native size
    t_train = time.perf_counter() - t0
    fresh = t_train > 5
    rows.append(["classifier training" + ("" if fresh else f" (cached; took {trained.train_seconds:.0f} s)"),
                 f"{t_train:.1f}",
                 f"test accuracy {trained.test_accuracy:.4f}" if trained.test_accuracy is not None else "",
                 "once per dataset; target < 300 s"])
    g = small_generator(args.channels, args.resolution)

    def sample(n: int) -> torch.Tensor:
        with torch.no_grad():
            return g(torch.randn(n, 64))

    # one yardstick: the split at the dataset's native size, whatever size the generator draws
    ref = native_ref(args.dataset, "test", root=args.data_root, verify=not args.no_verify)
    metrics = tuple(dict.fromkeys(DEFAULT_METRICS + EXTRA_METRICS))
    for attempt in ("first", "second"):
        t0 = time.perf_counter()
        r = evaluate(sample, args.num_samples, ref, "classifier", metrics, batch_size=500, seed=0)
        total = time.perf_counter() - t0
        s = r["protocol"]["seconds"]
        metric_s = ", ".join(f"{k} {v:.1f}" for k, v in s["metrics"].items())
        cached = r["protocol"]["reference"].get("cached")
        rows.append([f"evaluate, {attempt} call", f"{total:.1f}",
                     f"sampling+features {s['sampling_and_features']:.1f}, reference {s['reference']:.1f} "
                     f"({'cached' if cached else 'computed'}), metrics: {metric_s}",
                     f"sampling+eval {total - s['reference']:.1f} s; target < {DEFAULT_EVAL_BUDGET_S:.0f} s"])
    for name, sec in s["metrics"].items():  # the last (second) call's cost of each metric
        rows.append([f"  metric {name}", f"{sec:.2f}", "", "default" if name in DEFAULT_METRICS else "extra"])
    ci = r.get("ci95", {})
    rows.append(["results (random generator)", "", f"fid {r['fid']:.1f}, kid {r['kid']['mean']:.3f}, "
                 f"is {r['is']['mean']:.2f}, precision {r['pr']['precision']:.3f}, "
                 f"classes covered {r['coverage']['classes_covered']}/10"
                 + (f", fid_inf {r['fid_inf']:.1f}" if "fid_inf" in r else "")
                 + (f", fid 95% [{ci['fid_low']:.1f}, {ci['fid_high']:.1f}]" if ci else "")
                 + (f", copies {r['copies']['copy_rate']:.1%} (real {r['copies']['real_rate']:.1%})"
                    if "copies" in r else ""), ""])
    table(f"3. {args.num_samples} samples from a random small generator vs {args.dataset} test, classifier features",
          ["stage", "seconds", "breakdown", "note"], rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist", help="labeled dataset for the classifier extractor")
    p.add_argument("--data-root", default=None, help="folder with the dataset's files (default: genlab's usual "
                   "search: $GENLAB_DATA_DIR, system packages, the download cache)")
    p.add_argument("--no-verify", action="store_true", help="use data files whose md5 is not the published one")
    p.add_argument("--resolution", type=int, default=28, help="image side in pixels")
    p.add_argument("--channels", type=int, default=1, help="1 (grey) or 3 (RGB)")
    p.add_argument("--num-samples", type=int, default=10_000, help="samples in the evaluation benchmark")
    p.add_argument("--classifier-images", type=int, default=5000, help="images timed through the classifier")
    p.add_argument("--inception-images", type=int, default=32, help="images timed through Inception (slow on CPU)")
    p.add_argument("--fid-rows", type=int, default=4096, help="feature rows behind the statistics of table 2")
    p.add_argument("--fid-dim", type=int, default=2048, help="feature size of table 2 (Inception's pool: 2048)")
    p.add_argument("--skip-inception", action="store_true", help="leave Inception out of table 1")
    p.add_argument("--skip-vits", action="store_true", help="leave the DINOv2 and CLIP ViTs out of table 1")
    p.add_argument("--vit-images", type=int, default=8, help="images timed through each ViT (slow on CPU)")
    p.add_argument("--device", default="cpu", help="where table 1 runs its extractors (cpu, cuda)")
    p.add_argument("--metric-rows", type=int, nargs="*", default=[2000, 10_000],
                   help="N of table 4 (generated = reference rows)")
    p.add_argument("--skip", nargs="*", default=[], choices=["extractors", "frechet", "evaluation", "metrics"],
                   help="sections to leave out")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="  [%(name)s] %(message)s")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs, "
          f"load average {load} (figures are slower on a shared, loaded machine){', ' + env if env else ''}")
    if "extractors" not in args.skip:
        bench_extractors(args)
    if "frechet" not in args.skip:
        bench_frechet(args)
    if "evaluation" not in args.skip:
        bench_evaluation(args)
    if "metrics" not in args.skip:
        bench_modern_metrics(args)


if __name__ == "__main__":
    main()
