from __future__ import annotations

import numpy as np
import pytest

from genlab.metrics.class_coverage import class_coverage, class_histogram


def test_uniform_generator_covers_everything():
    real = np.full(10, 1000)
    r = class_coverage(class_histogram(np.arange(5000) % 10, 10), real)
    assert r.entropy == pytest.approx(np.log(10))
    assert r.entropy_normalized == pytest.approx(1.0)
    assert r.kl_to_real == pytest.approx(0.0, abs=1e-6)
    assert r.classes_covered == 10 and r.classes_in_real == 10 and r.num_classes == 10
    assert sum(r.histogram) == 5000


def test_partial_mode_collapse_is_visible():
    real = np.full(10, 1000)
    # 3 classes dominate, 2 more appear rarely (below a tenth of their real share), 5 never
    hist = np.array([3000, 3000, 3000, 20, 20, 0, 0, 0, 0, 0])
    r = class_coverage(hist, real)
    assert r.classes_covered == 3
    assert r.kl_to_real == pytest.approx(np.log(10) - r.entropy, rel=1e-3)
    assert 0 < r.entropy_normalized < 0.5


def test_without_real_histogram_compares_to_uniform():
    # shares 0.65, 0.3, 0.03, 0.02 around a tenth of the uniform 0.25 (0.025): exactly three classes are covered,
    # which pins the reference share between 0.2 and 0.3
    gen = [650, 300, 30, 20]
    r = class_coverage(gen)
    assert r.kl_to_real is None and r.classes_covered == 3 and r.classes_in_real == 4
    # the same as a real histogram that is uniform (the +0.5 smoothing vanishes at this size)...
    assert class_coverage(gen, [10**6] * 4).classes_covered == 3
    # ...and unlike another one: class 3 counts as covered when the real data shows it rarely
    skewed = class_coverage(gen, [970, 10, 10, 10])
    assert skewed.classes_covered == 4 and skewed.classes_in_real == 4
    assert class_coverage([5, 5, 0, 0]).classes_covered == 2


def test_bad_predictions_refused():
    with pytest.raises(ValueError):
        class_histogram([0, 10], 10)
