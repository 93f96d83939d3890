"""Statistics files that travel: the ``.npz`` files of ``mu`` and ``sigma`` that pytorch-fid, TTUR, clean-fid
and StudioGAN publish and read.

Format (the one those tools share): a NumPy ``.npz`` archive with ``mu``, the (D,) mean of the features, and
``sigma``, their (D, D) covariance (unbiased, divisor N - 1, as ``np.cov`` gives it). ``write_stats`` writes
both in float64 (what pytorch-fid writes) plus two entries the other tools ignore: ``num_images`` (N) and
``genlab`` (a JSON string: extractor, its hash and resize, the reference). Nothing is pickled: the file loads
with ``np.load(allow_pickle=False)``.

``read_stats`` checks a file before any image is processed, and says in one line what does not fit: a missing
key, shapes that disagree, non-finite values, a covariance that is not symmetric, a negative variance, or a
feature size other than the extractor's (Inception's pool features are 2048-d). Its sha256 goes into the
protocol (``reference.stats_sha256``), so results against different files are never summarised together.
A file has no raw feature rows: only the metrics that need the reference's mean and covariance (FID, FD-infinity)
can use it (``check_reference_stats`` refuses the others before any image is processed; ``main_reference_stats``
is what an evaluation compares its main extractor's features with).
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genlab.errors import GenlabError
from genlab.io import atomic_write
from genlab.metrics.features.base import FeatureExtractor
from genlab.metrics.features.weights import file_sha256
from genlab.metrics.reference import Reference
from genlab.metrics.refstats import reference_stats
from genlab.metrics.stats import FeatureStats
from genlab.metrics.suite import METRICS, EvalOptions

#: relative asymmetry |S - S^T| / max|S| tolerated in a covariance read from a file (float32 files round)
SYMMETRY_TOLERANCE = 1e-5


def write_stats(path: str | os.PathLike, stats: FeatureStats, meta: dict[str, Any] | None = None) -> Path:
    """``stats``' mean and covariance -> ``path`` (``.npz``, float64, atomically), with ``num_images`` and
    ``meta`` (JSON-able; stored as the ``genlab`` entry)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise GenlabError(f"{path}: statistics files end in .npz (the format pytorch-fid and clean-fid read)")
    entries = {"mu": np.asarray(stats.mu, dtype=np.float64), "sigma": np.asarray(stats.sigma, dtype=np.float64),
               "num_images": np.asarray(stats.n, dtype=np.int64),
               "genlab": np.asarray(json.dumps(meta or {}, sort_keys=True, default=str))}
    return atomic_write(path, lambda f: np.savez(f, **entries))  # type: ignore[arg-type]  # arrays by name


def read_stats(path: str | os.PathLike, feature_dim: int | None = None) -> tuple[FeatureStats, dict[str, Any]]:
    """The statistics in a ``mu``/``sigma`` ``.npz`` file (checked; see the module docstring), and the
    description the protocol records: ``{"stats_file", "stats_sha256", "num_images", "feature_dim", "genlab"}``.
    ``feature_dim``: the extractor's feature size, which the file must have."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GenlabError(f"--reference-stats {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            missing = [k for k in ("mu", "sigma") if k not in keys]
            if missing:
                held = ", ".join(sorted(keys)) or "nothing"
                raise GenlabError(f"{path} has no {' or '.join(missing)} (it holds {held}); reference statistics "
                                  "files hold mu and sigma, as pytorch-fid writes them")
            mu, sigma = np.asarray(f["mu"]), np.asarray(f["sigma"])
            n = int(f["num_images"]) if "num_images" in keys and f["num_images"].shape == () else None
            meta = json.loads(str(f["genlab"])) if "genlab" in keys and f["genlab"].shape == () else None
    except GenlabError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise GenlabError(f"cannot read {path} as a .npz statistics file: {e}") from None
    _check(path, mu, sigma, feature_dim)
    desc = {"stats_file": str(path), "stats_sha256": file_sha256(path), "num_images": n,
            "feature_dim": int(mu.shape[0])}
    if meta:
        desc["genlab"] = meta
    return FeatureStats(mu=mu.astype(np.float64), sigma=sigma.astype(np.float64), n=n or 0), desc


def _check(path: Path, mu: np.ndarray, sigma: np.ndarray, feature_dim: int | None) -> None:
    if mu.ndim != 1 or sigma.ndim != 2 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise GenlabError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit (mu (D,), sigma (D, D))")
    if not (np.issubdtype(mu.dtype, np.floating) and np.issubdtype(sigma.dtype, np.floating)):
        raise GenlabError(f"{path}: mu and sigma must be floating point, got {mu.dtype} and {sigma.dtype}")
    if feature_dim is not None and mu.shape[0] != feature_dim:
        raise GenlabError(f"{path} holds {mu.shape[0]}-d statistics but the extractor's features are "
                          f"{feature_dim}-d: it was made with other features (Inception's are 2048-d)")
    bad = int((~np.isfinite(mu)).sum() + (~np.isfinite(sigma)).sum())
    if bad:
        raise GenlabError(f"{path}: mu and sigma hold {bad} NaN or infinite value(s)")
    scale = float(np.abs(sigma).max()) or 1.0
    asym = float(np.abs(sigma - sigma.T).max()) / scale
    if asym > SYMMETRY_TOLERANCE:
        raise GenlabError(f"{path}: sigma is not symmetric (|S - S^T| / max|S| = {asym:.1e}); is it a covariance?")
    if float(np.diag(sigma).min()) < -SYMMETRY_TOLERANCE * scale:
        raise GenlabError(f"{path}: sigma has negative variances on its diagonal; is it a covariance?")


def check_reference_stats(names: Sequence[str], options: EvalOptions, reference: Reference | None) -> None:
    """Before any image is processed: a statistics file (``options.reference_stats``) holds a mean and a
    covariance only, so metrics that need the reference's feature rows or classes are refused, in one line."""
    if options.reference_stats is None:
        if reference is None:
            raise GenlabError("nothing to compare against: give a reference (a dataset split or a folder) or a "
                              "statistics file (--reference-stats)")
        return
    bad = [n for n in names if not (METRICS.get(n).moments_only or METRICS.get(n).extractor is not None)]
    if bad:
        raise GenlabError(f"{', '.join(bad)} need(s) the reference's feature rows, which a statistics file "
                          f"({options.reference_stats}) does not hold: use --metrics fid,fid_inf (plus vendi, "
                          "fd_dinov2, cmmd), or compare against the dataset instead")
    own = [n for n in names if METRICS.get(n).extractor is not None]
    if own and reference is None:
        raise GenlabError(f"{', '.join(own)} compute(s) their own reference statistics from the reference images; "
                          "give the dataset or folder too (--against), or leave them out")


def main_reference_stats(reference: Reference | None, extractor: FeatureExtractor, options: EvalOptions,
                         **kwargs: Any) -> tuple[FeatureStats, dict[str, Any]]:
    """The main extractor's reference statistics: from ``options.reference_stats`` when given (checked against
    the extractor's feature size; a genlab-written file must name the same extractor), else
    ``reference_stats(reference, extractor, **kwargs)`` (cached)."""
    if options.reference_stats is None:
        return reference_stats(reference, extractor, **kwargs)  # type: ignore[arg-type]
    stats, desc = read_stats(options.reference_stats, extractor.feature_dim)
    made = (desc.get("genlab") or {}).get("extractor")
    if isinstance(made, dict) and made.get("name") not in (None, extractor.name):
        raise GenlabError(f"{options.reference_stats} holds {made.get('name')} statistics, not {extractor.name}'s: "
                          f"use --features {made.get('name')}, or a file made with {extractor.name}")
    return stats, desc
