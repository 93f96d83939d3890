from __future__ import annotations

import numpy as np
import pytest

from genlab.errors import GenlabError
from genlab.metrics.evaluate import evaluate_features
from genlab.metrics.fid import frechet_distance, frechet_distance_sqrtm
from genlab.metrics.kid import mmd2_unbiased
from genlab.metrics.stats import Features, FeatureStats
from genlab.metrics.suite import EvalOptions, flatten_results
from genlab.metrics.uncertainty import bootstrap_intervals, fid_infinity, fit_counts


def gaussian(d: int, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=d) * 0.3, a @ a.T + 0.1 * np.eye(d)


def draw(mu, sigma, n, seed):
    return np.random.default_rng(seed).multivariate_normal(mu, sigma, size=n)


def test_fit_counts_follow_the_protocol():
    assert fit_counts(50_000) == [int(round(c)) for c in np.linspace(5000, 50_000, 15)]
    assert fit_counts(10_000)[0] == 5000 and fit_counts(10_000)[-1] == 10_000 and len(fit_counts(10_000)) == 15
    assert fit_counts(600) == sorted(set(fit_counts(600))) and fit_counts(600)[0] == 300
    with pytest.raises(GenlabError, match="at least 4"):
        fit_counts(3)


def test_fid_inf_is_the_intercept_of_independently_recomputed_points():
    mu_g, s_g = gaussian(12, 0)
    x = draw(mu_g, s_g, 800, 1)
    mu_r, s_r = gaussian(12, 2)
    r = fid_infinity(x, mu_r, s_r, points=6, min_count=300, seed=3)
    assert r.counts == fit_counts(800, 6, 300)
    perm = np.random.default_rng(3).permutation(800)  # the documented nested, seeded subsets
    expected = [frechet_distance_sqrtm(x[perm[:n]].mean(0), np.cov(x[perm[:n]], rowvar=False), mu_r, s_r)
                for n in r.counts]
    np.testing.assert_allclose(r.fids, expected, rtol=1e-10)
    slope, intercept = np.polyfit(1 / np.array(r.counts), expected, 1)
    assert r.value == pytest.approx(intercept, rel=1e-9) and r.slope == pytest.approx(slope, rel=1e-9)


def test_fid_inf_is_closer_to_the_true_distance_than_fid_at_n():
    # FID's bias grows like c / N: with 32-d features and 500 samples from a model close to the data, FID at N
    # overshoots the true distance (~0.7) by ~0.5; the intercept of the fit removes most of that
    d, n = 32, 500
    mu_r, s_r = gaussian(d, 11)
    mu_g, s_g = mu_r, 1.3 * s_r
    true = frechet_distance(mu_g, s_g, mu_r, s_r)
    errs_n, errs_inf = [], []
    for seed in range(3):
        x = draw(mu_g, s_g, n, 100 + seed)
        fid_n = frechet_distance(x.mean(0), np.cov(x, rowvar=False), mu_r, s_r)
        assert fid_n > true
        r = fid_infinity(x, mu_r, s_r, seed=seed)
        errs_n.append(abs(fid_n - true))
        errs_inf.append(abs(r.value - true))
    assert np.mean(errs_inf) < 0.3 * np.mean(errs_n)
    assert all(e_inf < e_n for e_inf, e_n in zip(errs_inf, errs_n))


def test_bootstrap_spread_matches_the_spread_over_fresh_draws():
    d, n = 8, 400
    mu_g, s_g = gaussian(d, 20)
    mu_r, s_r = gaussian(d, 21)
    ref = draw(mu_r, s_r, n, 22)
    fresh_fid, fresh_kid = [], []
    for seed in range(30):  # what the interval claims to describe: other draws of n samples from the model
        x = draw(mu_g, s_g, n, 1000 + seed)
        fresh_fid.append(frechet_distance(x.mean(0), np.cov(x, rowvar=False), mu_r, s_r))
        fresh_kid.append(mmd2_unbiased(x, ref))
    x = draw(mu_g, s_g, n, 23)
    r = bootstrap_intervals(x, ref, mu_r, s_r, resamples=200, level=0.9, seed=0, kid_rows=n)
    assert r.resamples == 200 and r.level == 0.9 and r.kid_rows == n
    assert 0.5 < r.fid_std / np.std(fresh_fid, ddof=1) < 2.0
    assert 0.5 < r.kid_std / np.std(fresh_kid, ddof=1) < 2.0
    fid = frechet_distance(x.mean(0), np.cov(x, rowvar=False), mu_r, s_r)
    assert r.fid_low < fid < r.fid_high
    # re-centred on the full-sample value (a resample repeats rows, which inflates FID by about c / N)
    assert abs((r.fid_low + r.fid_high) / 2 - fid) < 0.5 * r.fid_std
    assert r.kid_low < mmd2_unbiased(x, ref) < r.kid_high
    again = bootstrap_intervals(x, ref, mu_r, s_r, resamples=200, level=0.9, seed=0, kid_rows=n)
    assert again == r  # seeded
    assert bootstrap_intervals(x, ref, mu_r, s_r, resamples=200, level=0.9, seed=1, kid_rows=n) != r


def test_bad_options_are_refused():
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(GenlabError, match="resamples"):
        bootstrap_intervals(x, x, x.mean(0), np.cov(x, rowvar=False), resamples=1)
    with pytest.raises(GenlabError, match="level"):
        bootstrap_intervals(x, x, x.mean(0), np.cov(x, rowvar=False), level=1.5)


def test_registered_metrics_keys_and_protocol_details():
    rng = np.random.default_rng(5)
    gen = Features(rng.normal(size=(300, 6)) + 0.2)
    ref = FeatureStats.from_features(rng.normal(size=(300, 6)))
    details: dict = {}
    options = EvalOptions(fid_inf_points=5, fid_inf_min=100, ci_resamples=20)
    values, _ = evaluate_features(gen, ref, ["fid", "fid_inf", "ci95"], options, details)
    assert isinstance(values["fid_inf"], float)
    assert details["fid_inf"]["counts"] == fit_counts(300, 5, 100) and len(details["fid_inf"]["fid"]) == 5
    assert details["fid_inf"]["fid"][-1] == pytest.approx(values["fid"], rel=1e-9)  # the last point is all rows
    assert set(values["ci95"]) == {"fid_low", "fid_high", "fid_std", "kid_low", "kid_high", "kid_std",
                                   "resamples", "level", "kid_rows"}
    assert values["ci95"]["resamples"] == 20
    flat = flatten_results(values)
    assert "ci95/fid_low" in flat and "fid_inf" in flat and flat["fid"] == values["fid"]
