"""evaluate / evaluate_folder end to end with a small fixed random conv extractor on synthetic images."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import genlab
from genlab.data.base import ImageData, to_float
from genlab.errors import ConfigError, GenlabError
from genlab.metrics import DatasetRef, EvalOptions, evaluate, evaluate_folder, flatten_results

from .conftest import noise_images

FAST = EvalOptions(kid_subsets=10, kid_subset_size=200)


def sampler_from(images: torch.Tensor):
    """A sampler that walks through fixed uint8 images, returned as float in [-1, 1] like a generator's."""
    pos = [0]

    def sample(n: int) -> torch.Tensor:
        out = images[pos[0] : pos[0] + n]
        pos[0] += n
        return to_float(out)

    return sample


def mixed(real: torch.Tensor, fraction: float, seed: int = 9) -> torch.Tensor:
    k = int(round(fraction * len(real)))
    out = real.clone()
    out[:k] = noise_images(k, seed)
    return out


def test_result_keys_and_protocol(real_data, other_real_images, extractor):
    r = evaluate(sampler_from(other_real_images), 600, real_data, extractor, batch_size=128, seed=3, options=FAST)
    assert set(r) == {"fid", "kid", "is", "pr", "coverage", "protocol"}
    assert isinstance(r["fid"], float) and set(r["kid"]) >= {"mean", "std"} and set(r["is"]) >= {"mean", "std"}
    assert set(r["pr"]) >= {"precision", "recall", "density", "coverage"}
    assert r["coverage"]["num_classes"] == 10 and sum(r["coverage"]["histogram"]) == 600
    p = r["protocol"]
    assert p["extractor"] == "randconv" and p["extractor_hash"] == extractor.hash
    assert p["num_generated"] == 600 and p["num_reference"] == 600 and p["seed"] == 3
    assert p["genlab_version"] == genlab.__version__ and p["reference"]["dataset"] == "blobs"
    json.dumps(r)  # JSON-able as is
    flat = flatten_results(r)
    assert flat["fid"] == r["fid"] and flat["kid/mean"] == r["kid"]["mean"] and "protocol" not in flat


def test_fid_near_zero_for_itself_and_large_for_noise(real_data, real_images, extractor):
    same = evaluate(sampler_from(real_images), 600, real_data, extractor, metrics="fid,pr", options=FAST)
    noise = evaluate(sampler_from(noise_images(600, 1)), 600, real_data, extractor, metrics=["fid"], options=FAST)
    assert same["fid"] < 1e-6 * noise["fid"] and noise["fid"] > 0
    assert same["pr"]["precision"] == 1.0 and same["pr"]["recall"] == 1.0 and same["pr"]["coverage"] == 1.0


def test_fid_and_kid_rise_monotonically_with_noise(real_data, other_real_images, extractor):
    fids, kids = [], []
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        r = evaluate(sampler_from(mixed(other_real_images, fraction)), 600, real_data, extractor,
                     metrics=("fid", "kid"), options=FAST)
        fids.append(r["fid"])
        kids.append(r["kid"]["mean"])
    assert fids == sorted(fids) and len(set(fids)) == 5, fids
    assert kids == sorted(kids), kids
    assert fids[-1] > 20 * fids[0]


def test_seeded_and_leaves_the_callers_rng_alone(real_data, extractor):
    def sampler(n):
        return torch.rand(n, 1, 16, 16) * 2 - 1

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = evaluate(sampler, 300, real_data, extractor, metrics="fid,kid", seed=5, options=FAST)
    assert torch.equal(torch.rand(1), expected_next)
    b = evaluate(sampler, 300, real_data, extractor, metrics="fid,kid", seed=5, options=FAST)
    c = evaluate(sampler, 300, real_data, extractor, metrics="fid,kid", seed=6, options=FAST)
    assert a["fid"] == b["fid"] and a["kid"] == b["kid"] and a["fid"] != c["fid"]


def test_bad_inputs(real_data, extractor):
    def nan_sampler(n):
        x = torch.zeros(n, 1, 16, 16)
        x[0, 0, 0, 0] = float("nan")
        return x

    with pytest.raises(GenlabError, match="NaN"):
        evaluate(nan_sampler, 50, real_data, extractor, metrics="fid")
    with pytest.raises(ConfigError, match="choose one of"):
        evaluate(nan_sampler, 50, real_data, extractor, metrics="fid,sharpness")
    with pytest.raises(GenlabError, match="must return 50 images"):
        evaluate(lambda n: torch.zeros(3, 1, 16, 16), 50, real_data, extractor, metrics="fid")
    with pytest.raises(GenlabError, match="float images"):
        evaluate(lambda n: torch.zeros(n, 1, 16, 16, dtype=torch.uint8), 50, real_data, extractor)
    with pytest.raises(GenlabError, match="1- or 3-channel"):
        evaluate(lambda n: torch.zeros(n, 2, 16, 16), 50, real_data, extractor)


def test_few_samples_warn_about_singular_covariance(real_data, extractor):
    from genlab.metrics.stats import FeatureWarning

    with pytest.warns(FeatureWarning, match="at least 33 samples"):
        evaluate(sampler_from(real_data.images), 20, real_data, extractor, metrics="fid")


def test_evaluate_folder_against_data_and_folder(tmp_path, real_data, other_real_images, extractor):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for i in range(200):
        Image.fromarray(other_real_images[i, 0].numpy()).save(gen / f"{i:04d}.png")
        Image.fromarray(real_data.images[i, 0].numpy()).save(ref / f"{i:04d}.png")
    vs_data = evaluate_folder(gen, ImageData(images=real_data.images[:200], name="blobs"), extractor,
                              metrics="fid,kid", options=FAST)
    vs_folder = evaluate_folder(gen, ref, extractor, metrics="fid,kid", options=FAST)
    assert vs_data["fid"] == pytest.approx(vs_folder["fid"], rel=1e-9)  # PNG round trip is lossless
    assert vs_folder["protocol"]["num_generated"] == 200 and vs_folder["protocol"]["generated"]["folder"] == str(gen)
    direct = evaluate(sampler_from(other_real_images[:200]), 200, ImageData(images=real_data.images[:200]),
                      extractor, metrics="fid", options=FAST)
    assert direct["fid"] == pytest.approx(vs_data["fid"], rel=1e-9)


@pytest.mark.filterwarnings("ignore:64 samples of 128-d features")  # tiny data: singular covariance, known
def test_classifier_by_name_on_a_dataset(tiny_fmnist, classifier_cache):
    from genlab.metrics.reference import load_split

    # classifier found in the cache
    ref = DatasetRef("fashion-mnist", "test", 28, 1, root=str(tiny_fmnist), verify=False)

    test = load_split(ref)
    r = evaluate(sampler_from(test.images), 64, ref, "classifier", batch_size=32, options=EvalOptions(
        kid_subsets=5, kid_subset_size=32, is_splits=4))
    assert r["protocol"]["extractor"] == "classifier" and r["fid"] < 1e-6
    cov = r["coverage"]
    assert cov["classes_covered"] == cov["classes_in_real"] >= 8
    assert cov["kl_to_real"] < 0.05  # only the +0.5 smoothing of 64 real counts
    assert r["is"]["mean"] > 2  # confident, varied predictions on the easy bars (1 = uninformative)
