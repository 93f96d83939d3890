"""Protocol: no number depends on the batch size. Every registered feature extractor gives the same features
one image at a time as in one batch (mixed input sizes, so the resize is batched too), and every metric
``evaluate`` computes is the same with batches of 1 as with one batch of all images (sampling, generated
and reference features)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genlab.metrics import evaluate, flatten_results
from genlab.metrics.features import FEATURE_EXTRACTORS, get_extractor
from genlab.metrics.suite import METRICS

from .conftest import blob_images
from .test_evaluate import sampler_from


def build_classifier(classifier_cache, random_inception_weights):
    return get_extractor("classifier", weights=classifier_cache)


def build_inception(classifier_cache, random_inception_weights):
    from genlab.metrics.features.inception_fid import InceptionWeightsWarning

    with pytest.warns(InceptionWeightsWarning):
        return get_extractor("inception", weights=random_inception_weights[0])


#: how to build each registered extractor offline (seeded or tiny weights); a new extractor must be added here
BUILDERS = {"classifier": build_classifier, "inception": build_inception}
#: extractors whose batch-size independence (batch 1 vs 2, random weights) is tested next to them: ViT-S/B at
#: 224px on a CPU cost too much to repeat here
COVERED_ELSEWHERE = {
    "dinov2-vits14": "test_dinov2.py::test_strict_load_shapes_determinism_and_batch_independence",
    "dinov2-vitb14": "same architecture as dinov2-vits14 (wider), same code path",
    "dinov2-vitl14": "same architecture as dinov2-vits14 (wider, deeper), same code path",
    "clip-vitl14-336": "a transformer without batch statistics; test_transformers_parity.py compares its tower",
}


def test_every_registered_extractor_is_covered():
    covered = set(BUILDERS) | set(COVERED_ELSEWHERE)
    assert covered == set(FEATURE_EXTRACTORS.names()), "add a builder for the new extractor to BUILDERS"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_extractor_features_do_not_depend_on_the_batch_size(name, classifier_cache, random_inception_weights):
    ext = BUILDERS[name](classifier_cache, random_inception_weights)
    n = 2 if name == "inception" else 12  # 299x299 Inception on a CPU is slow
    sizes = [(20, 1)] if name == "inception" else [(28, 1), (40, 3), (20, 1)]  # native, down + RGB, up
    for res, ch in sizes:
        images = blob_images(n, seed=res, resolution=res, channels=ch)
        ext.batch_size = n
        full, full_logits = ext.features(images)
        ext.batch_size = 1
        single, single_logits = ext.features(images)
        scale = float(full.abs().max())
        torch.testing.assert_close(single, full, rtol=1e-4, atol=1e-5 * scale)
        torch.testing.assert_close(single_logits, full_logits, rtol=1e-4, atol=1e-5 * float(full_logits.abs().max()))
        assert torch.equal(ext.features(images[:1])[0], single[:1])  # deterministic


def test_every_metric_is_independent_of_the_batch_size(real_data, other_real_images, extractor,
                                                      tiny_own_extractors):
    names = [m for m in METRICS.names() if not METRICS.get(m).needs]  # those evaluate computes on its own
    assert {"fid", "kid", "is", "pr", "coverage", "fd_dinov2", "cmmd", "vendi"} <= set(names)
    options = replace(tiny_own_extractors[0], kid_subsets=20, kid_subset_size=100, ci_resamples=50,
                      ci_kid_rows=2000, fid_inf_min=5000)  # the defaults, but the stand-in backbones
    images = other_real_images[:200]
    reference = real_data.subset(200)
    one = evaluate(sampler_from(images), 200, reference, extractor, names, batch_size=200, options=options,
                   cache=False)
    single = evaluate(sampler_from(images), 200, reference, extractor, names, batch_size=1, options=options,
                      cache=False)
    a, b = flatten_results(one), flatten_results(single)
    assert a.keys() == b.keys() and len(a) > 10
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
