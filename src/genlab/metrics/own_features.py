"""The extractors of the metrics that have features of their own (``suite.Metric.extractor``: ``fd_dinov2``'s
DINOv2, ``cmmd``'s CLIP), built once per evaluation and run on the same sampled images as the main extractor
(``refstats.compute_all_features``)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from genlab.metrics.features.base import FeatureExtractor, get_extractor
from genlab.metrics.suite import EvalOptions, own_extractors


def companion_extractors(names: Sequence[str], options: EvalOptions, main: FeatureExtractor,
                         device: str | torch.device = "cpu") -> dict[str, FeatureExtractor]:
    """{metric: its extractor} for the chosen metrics with features of their own (``Metric.extractor``); the
    main extractor itself where a metric asks for the same one (e.g. ``--features dinov2-vitl14`` with
    ``fd_dinov2``), so its features are computed once."""
    built: dict[tuple[str, str | None], FeatureExtractor] = {}
    out = {}
    for metric, (name, weights) in own_extractors(names, options).items():
        if name == main.name and main.variant == "" and (weights is None or str(weights) == main.info.get("weights")):
            out[metric] = main
            continue
        if (name, weights) not in built:
            built[(name, weights)] = get_extractor(name, weights=weights, device=device)
        out[metric] = built[(name, weights)]
    return out


def distinct(main: FeatureExtractor, companions: dict[str, FeatureExtractor]) -> list[FeatureExtractor]:
    """The main extractor, then each other one once."""
    out = [main]
    for ext in companions.values():
        if all(ext is not e for e in out):
            out.append(ext)
    return out
