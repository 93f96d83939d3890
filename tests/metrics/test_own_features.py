"""Metrics with features of their own (fd_dinov2, cmmd) and the Vendi score in everything metrics do: one
sampling pass feeds every extractor, their own reference statistics, the protocol record and its id, ci95's
intervals, sharded evaluation (two fake ranks), a statistics file for the main extractor, and the paper protocol's
settings and conformance record. The backbones are small registered stand-ins (tests/metrics/conftest.py)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from genlab.data.base import ImageData
from genlab.evaluation import protocol_id, summary_line
from genlab.metrics import EvalOptions, evaluate, get_extractor
from genlab.metrics.cmmd import mmd2_rbf
from genlab.metrics.collective import shard
from genlab.metrics.refstats import reference_stats
from genlab.metrics.stats import FeatureStats
from genlab.metrics.statsfile import write_stats
from genlab.metrics.vendi import vendi_score

from .conftest import blob_images, make_random_extractor
from .test_collective import run_ranks, values
from .test_evaluate import sampler_from

NAMES = ["fid", "fd_dinov2", "cmmd", "vendi", "ci95"]


@pytest.fixture
def images():
    return blob_images(240, seed=4)


@pytest.fixture
def reference(real_images):
    return ImageData(images=real_images[:300], name="blobs", split="test")


def counted(images):
    sample = sampler_from(images)
    drawn = []

    def fn(n):
        drawn.append(n)
        return sample(n)

    return fn, drawn


def test_one_sampling_pass_feeds_every_extractor(images, reference, tiny_own_extractors):
    options, built = tiny_own_extractors
    sample_fn, drawn = counted(images)
    main = make_random_extractor(seed=0)
    r = evaluate(sample_fn, 240, reference, main, NAMES, batch_size=80, options=options, cache=False)
    assert sum(drawn) == 240 and built == {"dinov2-tiny": 1, "clip-tiny": 1}
    dino, clip = get_extractor("dinov2-tiny"), get_extractor("clip-tiny")
    # fd_dinov2 is the FID of the dinov2 extractor's features; cmmd the MMD of the clip extractor's
    alone = evaluate(sampler_from(images), 240, reference, dino, ["fid"], options=options, cache=False)
    assert r["fd_dinov2"] == pytest.approx(alone["fid"], rel=1e-12) and r["fd_dinov2"] != pytest.approx(r["fid"])
    gen_clip = clip.features(images)[0].numpy()
    ref_clip = reference_stats(reference, clip, cache=False)[0].features
    assert r["cmmd"] == pytest.approx(mmd2_rbf(gen_clip, ref_clip), rel=1e-9) and r["cmmd"] > 0
    gen_main = main.features(images)[0].numpy()
    assert r["vendi"]["score"] == pytest.approx(vendi_score(gen_main), rel=1e-9)
    assert r["vendi"]["num_generated"] == 240 and r["vendi"]["real_score"] > 1
    ci = r["ci95"]
    for name in ("fid", "fd_dinov2", "cmmd"):
        assert ci[f"{name}_low"] < ci[f"{name}_high"] and ci[f"{name}_std"] > 0, name
    p = r["protocol"]
    assert set(p["extractors"]) == {"fd_dinov2", "cmmd"} and p["extractors"]["cmmd"]["name"] == "clip-tiny"
    pid = protocol_id(p)
    assert pid["extractors"] == {"fd_dinov2": f"dinov2-tiny {dino.hash[:12]}", "cmmd": f"clip-tiny {clip.hash[:12]}"}
    line = summary_line(r)
    assert "FD_DINOv2" in line and "CMMD" in line and "Vendi" in line
    # another cmmd backbone is another protocol
    other = replace(options, cmmd_features="dinov2-tiny")
    r2 = evaluate(sampler_from(images), 240, reference, main, ["cmmd"], options=other, cache=False)
    assert protocol_id(r2["protocol"])["extractors"] != pid["extractors"]


def test_the_main_extractor_is_reused_when_a_metric_asks_for_it(images, reference, tiny_own_extractors):
    options, built = tiny_own_extractors
    main = get_extractor("dinov2-tiny")
    r = evaluate(sampler_from(images), 240, reference, main, ["fid", "fd_dinov2"], options=options, cache=False)
    assert r["fd_dinov2"] == r["fid"] and built["dinov2-tiny"] == 1  # built once: the main one


def test_two_ranks_give_the_numbers_of_one_process(images, reference, tiny_own_extractors):
    options, _ = tiny_own_extractors
    n = len(images)
    one = evaluate(sampler_from(images), n, reference, make_random_extractor(), NAMES, batch_size=60, options=options)

    def job(collective):
        start, count = shard(n, collective.rank, collective.world_size)
        return evaluate(sampler_from(images[start:start + count]), n, reference, make_random_extractor(), NAMES,
                        batch_size=60, options=options, collective=collective)

    (rank0, rank1), _ = run_ranks(2, job)
    assert values(rank0) == values(rank1) == values(one)
    assert rank0["protocol"]["world_size"] == 2


def test_a_statistics_file_serves_the_main_extractor_and_the_dataset_the_others(tmp_path, images, reference,
                                                                                  tiny_own_extractors, extractor):
    options, _ = tiny_own_extractors
    stats = reference_stats(reference, extractor, cache=False)[0]
    path = write_stats(tmp_path / "ref.npz", FeatureStats(stats.mu, stats.sigma, stats.n))
    names = ["fid", "fid_inf", "fd_dinov2", "vendi"]
    direct = evaluate(sampler_from(images), 240, reference, extractor, names, options=options, cache=False)
    from_file = evaluate(sampler_from(images), 240, reference, extractor, names, cache=False,
                         options=replace(options, reference_stats=str(path)))
    assert from_file["fid"] == pytest.approx(direct["fid"], rel=1e-12)
    assert from_file["fd_dinov2"] == direct["fd_dinov2"] and from_file["vendi"]["real_score"] is None
    assert from_file["protocol"]["reference"]["stats_file"] == str(path)
    assert protocol_id(from_file["protocol"]) != protocol_id(direct["protocol"])  # never summarised together


def test_the_paper_protocol_settings_and_its_record(reference, extractor):
    """A published protocol resizes as the compared table did, keys the reference cache by that variant and
    says in the protocol (and the result line) what differs from the published settings."""
    images = blob_images(240, seed=4, resolution=40)  # shrunk to the extractor's 16 px: the resizes differ
    options = EvalOptions(protocol="paper", resize="legacy")
    r = evaluate(sampler_from(images), 240, reference, extractor, ["fid"], options=options)
    check = r["protocol"]["published_protocol"]
    assert check["protocol"] == "paper" and check["resize"] == "legacy" and not check["matches"]
    assert any("features randconv" in d for d in check["differences"])
    assert any("240 generated images (the protocol: 50000)" in d for d in check["differences"])
    assert r["protocol"]["variant"] == "resize-legacy"
    assert r["protocol"]["extractor_info"]["resize"].startswith("legacy")
    assert protocol_id(r["protocol"])["variant"] == "resize-legacy"
    assert "NOT comparable with published tables" in summary_line(r)
    plain = evaluate(sampler_from(images), 240, reference, extractor, ["fid"])
    assert "published_protocol" not in plain["protocol"] and plain["fid"] != pytest.approx(r["fid"], rel=1e-3)
    record = {**r["protocol"], "extractor": "inception", "num_generated": 50_000,
              "extractor_info": {"published_weights": True, "resize": "legacy: pytorch-fid's bilinear"},
              "reference": {"dataset": "cifar10", "split": "train"}}
    from genlab.metrics.protocols import conformance

    ok = conformance("paper", record, "legacy")
    assert ok["matches"] and ok["differences"] == [] and "pytorch-fid" in ok["tables"]
    assert not conformance("paper", {**record, "reference": {"dataset": "cifar10", "split": "test"}}, "legacy")[
        "matches"]
    assert np.isfinite(r["fid"])


def test_tables_know_the_new_metrics():
    """Sweep tables and the report rank by direction and show intervals next to the number they bound."""
    from genlab.reporting.metric_names import higher_is_better, is_score
    from genlab.reporting.records import intervals_of

    assert higher_is_better("vendi/score") and not higher_is_better("cmmd") and not higher_is_better("fd_dinov2")
    assert is_score("vendi/score") and not is_score("vendi/real_score") and not is_score("vendi/q")
    flat = {"ci95/cmmd_low": 0.1, "ci95/cmmd_high": 0.3, "ci95/fd_dinov2_low": 5.0, "ci95/fd_dinov2_high": 7.0}
    assert intervals_of(flat) == {"cmmd": (0.1, 0.3), "fd_dinov2": (5.0, 7.0)}
