"""evaluate / evaluate_folder end to end with a small fixed random conv extractor on synthetic images."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.data.base import ImageData, to_float
from genlab.errors import ConfigError, GenlabError
from genlab.metrics import DatasetRef, EvalOptions, evaluate, evaluate_folder, flatten_results
from genlab.metrics.uncertainty import fit_counts

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
    assert set(r) == {"fid", "kid", "is", "pr", "coverage", "fid_inf", "ci95", "protocol"}
    assert isinstance(r["fid"], float) and set(r["kid"]) >= {"mean", "std"} and set(r["is"]) >= {"mean", "std"}
    assert set(r["pr"]) >= {"precision", "recall", "density", "coverage"}
    assert r["coverage"]["num_classes"] == 10 and sum(r["coverage"]["histogram"]) == 600
    p = r["protocol"]
    assert p["extractor"] == "randconv" and p["extractor_hash"] == extractor.hash
    assert p["num_generated"] == 600 and p["num_reference"] == 600 and p["seed"] == 3
    assert p["genlab_version"] == genlab.__version__ and p["reference"]["dataset"] == "blobs"
    # fid_inf is a float; its fit points go into the protocol (the last point: all 600 samples, i.e. fid)
    assert isinstance(r["fid_inf"], float) and p["details"]["fid_inf"]["counts"] == fit_counts(600)
    assert p["details"]["fid_inf"]["fid"][-1] == pytest.approx(r["fid"], rel=1e-9)
    assert r["ci95"]["fid_low"] <= r["fid"] <= r["ci95"]["fid_high"] and p["options"]["ci_resamples"] == 50
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


@pytest.mark.filterwarnings("ignore::genlab.metrics.stats.FeatureWarning")  # 128 samples of 128-d features
def test_one_yardstick_the_same_generator_at_two_resolutions(tiny_fmnist, classifier_cache):
    """A deterministic "generator" of real training images, drawn at the native 28px and at 64px RGB (exactly
    the images a 64px RGB run of the dataset trains on: the data layer's LANCZOS), is judged by the same
    28px/1ch classifier against the same reference statistics: the same FID to within noise (the spread
    between two disjoint halves of its images at 28px; measured 1.32 at 28px, 1.55 at 64px, halves 1.32/3.39)."""
    from genlab.metrics.reference import load_split, native_ref

    ref = native_ref("fashion-mnist", "test", root=str(tiny_fmnist), verify=False)
    assert (ref.resolution, ref.channels) == (28, 1)
    train28 = load_split(native_ref("fashion-mnist", "train", root=str(tiny_fmnist), verify=False)).images
    train64 = load_split(DatasetRef("fashion-mnist", "train", 64, 3, root=str(tiny_fmnist), verify=False)).images
    assert train64.shape[1:] == (3, 64, 64)
    at28, at64, other_half = (evaluate(sampler_from(images), 128, ref, "classifier", metrics="fid")
                              for images in (train28[:128], train64[:128], train28[128:]))
    noise = abs(at28["fid"] - other_half["fid"])
    assert abs(at64["fid"] - at28["fid"]) < 0.5 * noise, (at28["fid"], at64["fid"], other_half["fid"])
    for r in (at28, at64):
        p = r["protocol"]
        assert p["extractor_info"]["input"] == "28px/1ch" and p["extractor_hash"] == at28["protocol"]["extractor_hash"]
        assert p["extractor_info"]["resize"] == "bicubic, antialiased"
        assert p["reference"]["resolution"] == 28 and p["reference"]["channels"] == 1
    assert at28["protocol"]["generated"]["resized"] is None
    assert at64["protocol"]["generated"]["resized"] == "64px/3ch -> 28px/1ch"


def write_pngs(folder, images: torch.Tensor, prefix: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        a = im.permute(1, 2, 0).numpy()
        Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(folder / f"{prefix}{i:04d}.png")


@pytest.mark.filterwarnings("ignore::genlab.metrics.stats.FeatureWarning")
def test_folder_vs_folder_of_mixed_sizes_needs_no_size(tmp_path, real_images, other_real_images, extractor):
    """Folders are read as they are (16px grey next to 40px RGB) and the 16px/1ch extractor resizes each
    image: the FID equals features of the same images as tensors, resized by the extractor, computed here."""
    from genlab.metrics import FeatureStats, compute_features, fid_from_stats

    small = other_real_images[:60]
    big = torch.nn.functional.interpolate(other_real_images[60:120].float(), size=40, mode="bilinear")
    big = big.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1)
    write_pngs(tmp_path / "gen", small, "a")
    write_pngs(tmp_path / "gen", big, "b")
    write_pngs(tmp_path / "ref", real_images[:100])
    r = evaluate_folder(tmp_path / "gen", tmp_path / "ref", extractor, metrics="fid,kid", options=FAST)
    p = r["protocol"]
    assert p["num_generated"] == 120 and p["generated"]["sizes"] == ["16px/1ch", "40px/3ch"]
    assert p["generated"]["decoded"] == "as is" and p["reference"]["decoded"] == "as is"
    direct = FeatureStats.from_features(compute_features(extractor, [small, big]))
    ref = FeatureStats.from_features(compute_features(extractor, [real_images[:100]]))
    assert r["fid"] == pytest.approx(fid_from_stats(direct, ref), rel=1e-9)
    # an explicit decode size still works: both folders decoded at 16px/1ch first (LANCZOS), no resize left
    sized = evaluate_folder(tmp_path / "gen", tmp_path / "ref", extractor, metrics="fid", resolution=16, channels=1)
    assert sized["protocol"]["generated"]["resolution"] == 16 and sized["protocol"]["generated"]["resized"] is None
    assert sized["fid"] > 0


def test_progress_of_sampling_and_features(real_data, other_real_images, extractor):
    from genlab.metrics.work_progress import progress_to

    calls = []
    with progress_to(lambda task, done, total, note="": calls.append((task, done, total))):
        evaluate(sampler_from(other_real_images), 600, real_data, extractor, metrics="fid", batch_size=250)
    sampled = [c for c in calls if c[0] == "sampling + features"]
    # a report after every extractor batch (64 images), not only every sampled batch of 250: a long evaluation
    # (50k Inception images) shows its rate and time left within seconds
    expected, done = [], 0
    for batch in (250, 250, 100):
        for start in range(0, batch, extractor.batch_size):
            done += min(extractor.batch_size, batch - start)
            expected.append(done)
    assert extractor.batch_size == 64 and expected[:3] == [64, 128, 192]
    assert [c[1] for c in sampled] == expected and {c[2] for c in sampled} == {600}
    assert [c[1:] for c in calls if c[0] == "reference features"][-1] == (600, 600)


EXE = Path(sys.executable).with_name("genlab")


@pytest.mark.filterwarnings("ignore::genlab.metrics.stats.FeatureWarning")
def test_cli_eval_folder_vs_folder_with_inception_and_no_size_flags(tmp_path, real_images, other_real_images,
                                                                    random_inception_weights):
    """`genlab eval-folder A --against B --features inception`, what `python -m pytorch_fid A B` does: no size
    flags, folders of mixed sizes; Inception with seeded random weights in the published layout (299px inputs
    on a CPU are slow: 2 + 2 images, and KID: FID's 2048-d matrix square root costs more than the rest)."""
    weights, _ = random_inception_weights
    big = torch.nn.functional.interpolate(other_real_images[1:2].float(), size=36, mode="bilinear")
    write_pngs(tmp_path / "A", other_real_images[:1], "a")
    write_pngs(tmp_path / "A", big.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1), "b")
    write_pngs(tmp_path / "B", real_images[:2])
    out = tmp_path / "r.json"
    r = subprocess.run([str(EXE), "eval-folder", str(tmp_path / "A"), "--against", str(tmp_path / "B"), "--features",
                        "inception", "--inception-weights", str(weights), "--metrics", "kid", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(out.read_text())
    p = result["protocol"]
    assert np.isfinite(result["kid"]["mean"]) and p["num_generated"] == 2 and p["num_reference"] == 2
    assert p["extractor_info"]["input"] == "299px/3ch" and p["generated"]["sizes"] == ["16px/1ch", "36px/3ch"]
    assert "features" in r.stdout and "KID" in r.stdout
