"""The benchmark scripts run end to end at toy sizes and print their tables (the figures themselves are in
docs/benchmarks.md; nothing here asserts a speed)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def bench(script: str, *args: str, env: dict | None = None) -> str:
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.fixture
def tiny_env(classifier_cache_28, tmp_path) -> dict:
    """A cache holding the classifier extractor of the tiny IDX dataset (``--data-root tiny_fmnist``)."""
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)
    return {"GENLAB_CACHE_DIR": str(cache)}


def test_train_throughput_prints_ratios_and_refuses_unknown_cases():
    out = bench("train_throughput.py", "--models", "dcgan-32,vae", "--steps", "1", "--block-seconds", "0",
                "--repeats", "1", "--max-resolution", "32", "--variants", "bf16")
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"(dcgan-32|vae-28) ", line)}
    assert set(rows) == {"dcgan-32", "vae-28"}, out
    assert all(re.search(r"\d+\.\d\d\s+[\d.]+ \(\d+\.\d\d\)$", line) for line in rows.values()), out
    assert re.search(r"geometric mean ratio genlab/plain: \d+\.\d\d", out)
    r = subprocess.run([sys.executable, str(BENCH / "train_throughput.py"), "--models", "dcgan-31"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no case dcgan-31; the cases are dcgan-32" in r.stderr


def test_profile_step_reports_the_share_of_peak_and_where_the_time_goes():
    out = bench("profile_step.py", "--models", "mlp-gan-28", "--steps", "1", "--peak-size", "128", "--overhead")
    assert re.search(r"measured float32 peak [\d.]+ GFLOP/s", out), out
    assert re.search(r"GFLOP/step -> [\d.]+ GFLOP/s = \d+% of the measured peak", out), out
    shares = [int(m) for m in re.findall(r"^\s{2}\S.*\s([\d]+)%$", out, flags=re.M)]
    assert shares and 90 <= sum(shares) <= 110, out  # the breakdown covers the profiled step
    assert re.search(r"genlab train_step [\d.]+ us/step, .* bare loop [\d.]+ us/step", out), out


def test_eval_throughput_runs_every_section(tiny_fmnist, tiny_env):
    out = bench("eval_throughput.py", "--data-root", str(tiny_fmnist), "--no-verify", "--num-samples", "64",
                "--classifier-images", "64", "--fid-rows", "64", "--skip-inception", env=tiny_env)
    assert re.search(r"^classifier\s+64\s+[\d,.]+\s+trained \(cached\)", out, flags=re.M), out
    assert re.search(r"^speed ratio\s+[\d.]+x", out, flags=re.M), out
    assert "3. 64 samples" in out and re.search(r"fid [\d.]+, kid", out), out


def test_quality_per_minute_prints_fid_for_both_arms(tiny_fmnist, tiny_env, tmp_path):
    out = bench("quality_per_minute.py", "--data-root", str(tiny_fmnist), "--no-verify", "--minutes", "0.02",
                "--slice-seconds",
                "0.3", "--eval-samples", "64", "--out", str(tmp_path / "q.json"), env=tiny_env)
    assert "(a) DCGAN paper recipe" in out and "(b) genlab fashion_mnist_fast" in out, out
    # one row: the minute the budget ended (0.02, later when a step overshoots it), steps and FID per arm, ratio
    assert re.search(r"^\s+0\.\d\d\s+\d+\s+[\d.]+\s+\d+\s+[\d.]+\s+[\d.]+$", out, flags=re.M), out
    res = json.loads((tmp_path / "q.json").read_text())
    assert len(res["arms"]) == 2 and res["rows"], res
    assert all(s["fid"] > 0 for row in res["rows"] for s in row["arms"] if s), res


def test_dropout_prints_both_layouts_and_the_speed_up():
    out = bench("dropout.py", "--shape", "8,4,6,6", "--repeats", "1", "--iters", "2")
    assert re.search(r"^contiguous\s+[\d.]+\s+[\d.]+\s+[\d.]+x$", out, flags=re.M), out
    assert re.search(r"^channels_last\s+[\d.]+\s+[\d.]+\s+[\d.]+x$", out, flags=re.M), out
