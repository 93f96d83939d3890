"""The benchmark scripts run end to end at toy sizes and print their tables (the figures themselves are in
docs/benchmarks.md; nothing here asserts a speed)."""
from __future__ import annotations

import json
import math
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


def half_unit(text: str) -> float:
    """Half the last printed digit of a number: the rounding error of ``f"{x:.Nf}"``."""
    return 0.5 * 10 ** -len(text.partition(".")[2])


def assert_quotient(printed: str, a: str, b: str, scale: float = 1.0) -> None:
    """``printed`` is scale * a / b as computed from the unrounded numbers that print as ``a`` and ``b``: it lies
    in the interval the rounding of a, b and of the quotient itself allows."""
    fa, fb, fr = float(a), float(b), float(printed)
    lo = scale * (fa - half_unit(a)) / (fb + half_unit(b))
    hi = scale * (fa + half_unit(a)) / max(fb - half_unit(b), 1e-12)
    assert lo - half_unit(printed) <= fr <= hi + half_unit(printed), f"{printed} is not {a}/{b}"


@pytest.fixture
def tiny_env(classifier_cache_28, tmp_path) -> dict:
    """A cache holding the classifier extractor of the tiny IDX dataset (``--data-root tiny_fmnist``)."""
    cache = tmp_path / "cache"
    shutil.copytree(classifier_cache_28, cache)
    return {"GENLAB_CACHE_DIR": str(cache)}


def test_train_throughput_prints_ratios_and_refuses_unknown_cases():
    # mlp-gan-28, not dcgan-32: bf16 convolutions are ~10x slower than fp32 on CPUs without bf16 units (~75 s)
    out = bench("train_throughput.py", "--models", "mlp-gan-28,vae", "--steps", "1", "--block-seconds", "0",
                "--repeats", "1", "--max-resolution", "32", "--variants", "bf16")
    rows = {line.split()[0]: line for line in out.splitlines() if re.match(r"(mlp-gan-28|vae-28) ", line)}
    assert set(rows) == {"mlp-gan-28", "vae-28"}, out
    bounds = []
    for line in rows.values():  # genlab img/s, plain img/s, ratio genlab/plain, bf16 img/s (bf16/genlab)
        m = re.search(r"\s(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d\d)\s+(\d+\.\d) \((\d+\.\d\d)\)$", line)
        assert m, line
        genlab, plain, ratio, bf16, bf16_ratio = m.groups()
        assert_quotient(ratio, genlab, plain)
        assert_quotient(bf16_ratio, bf16, genlab)
        bounds.append((float(ratio) - half_unit(ratio), float(ratio) + half_unit(ratio)))
    m = re.search(r"geometric mean ratio genlab/plain: (\d+\.\d\d)", out)
    assert m, out
    lo = math.prod(b[0] for b in bounds) ** (1 / len(bounds))
    hi = math.prod(b[1] for b in bounds) ** (1 / len(bounds))
    assert lo - 0.005 <= float(m.group(1)) <= hi + 0.005, (m.group(1), bounds)  # the geometric mean of the rows
    r = subprocess.run([sys.executable, str(BENCH / "train_throughput.py"), "--models", "dcgan-31"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no case dcgan-31; the cases are dcgan-32" in r.stderr


def test_profile_step_reports_the_share_of_peak_and_where_the_time_goes():
    out = bench("profile_step.py", "--models", "mlp-gan-28", "--steps", "1", "--peak-size", "128", "--overhead")
    assert re.search(r"measured float32 peak [\d.]+ GFLOP/s", out), out
    assert re.search(r"GFLOP/step -> [\d.]+ GFLOP/s = \d+% of the measured peak", out), out
    peak = re.search(r"measured float32 peak ([\d.]+) GFLOP/s", out).group(1)
    m = re.search(r"step ([\d.]+) ms .*; ([\d.]+) GFLOP/step -> ([\d.]+) GFLOP/s = (\d+)% of the measured peak", out)
    ms, gflop, rate, pct = m.groups()
    assert_quotient(rate, gflop, ms, scale=1000)  # GFLOP/s = GFLOP per step / seconds per step
    assert_quotient(str(float(pct) / 100), rate, peak)
    wall = re.search(r"profiled step ([\d.]+) ms", out).group(1)
    groups = re.findall(r"^\s{2}\S.*\s([\d]+\.\d\d)\s+([\d]+)%$", out, flags=re.M)
    assert groups, out
    for group_ms, share in groups:  # each share is that group's ms of the profiled step
        assert abs(float(share) - 100 * float(group_ms) / float(wall)) <= 0.5 + 100 * 0.006 / float(wall), out
    assert 90 <= sum(int(share) for _, share in groups) <= 110, out  # the breakdown covers the profiled step
    assert re.search(r"genlab train_step [\d.]+ us/step, .* bare loop [\d.]+ us/step", out), out


def test_eval_throughput_runs_every_section(tiny_fmnist, tiny_env):
    out = bench("eval_throughput.py", "--data-root", str(tiny_fmnist), "--no-verify", "--num-samples", "64",
                "--classifier-images", "64", "--fid-rows", "64", "--skip-inception", env=tiny_env)
    assert re.search(r"^classifier\s+64\s+[\d,.]+\s+trained \(cached\)", out, flags=re.M), out
    # the speed ratio is sqrtm's seconds / eigh's, the two routes agree, and the printed difference is theirs
    eigh = re.search(r"^eigh \(symmetric, genlab\)\s+([\d.]+)\s+([\d.]+)\s*$", out, flags=re.M)
    sqrtm = re.search(r"^scipy\.linalg\.sqrtm\(S1 S2\)\s+([\d.]+)\s+([\d.]+)\s+relative difference (\S+)",
                      out, flags=re.M)
    ratio = re.search(r"^speed ratio\s+([\d.]+)x", out, flags=re.M)
    assert eigh and sqrtm and ratio, out
    assert_quotient(ratio.group(1), sqrtm.group(1), eigh.group(1))
    v_eigh, v_sqrtm, rel = float(eigh.group(2)), float(sqrtm.group(2)), float(sqrtm.group(3))
    assert v_eigh > 0 and abs(v_eigh - v_sqrtm) / v_sqrtm < 1e-6, out
    assert abs(rel - abs(v_eigh - v_sqrtm) / v_sqrtm) <= 0.06 * rel + 2e-6 / v_sqrtm, out
    assert "3. 64 samples" in out and re.search(r"fid [\d.]+, kid", out), out


def test_quality_per_minute_prints_fid_for_both_arms(tiny_fmnist, tiny_env, tmp_path):
    out = bench("quality_per_minute.py", "--data-root", str(tiny_fmnist), "--no-verify", "--minutes", "0.02",
                "--slice-seconds",
                "0.3", "--eval-samples", "64", "--out", str(tmp_path / "q.json"), env=tiny_env)
    assert "(a) DCGAN paper recipe" in out and "(b) genlab fashion_mnist_fast" in out, out
    # one row: the minute the budget ended (0.02, later when a step overshoots it), steps and FID per arm, ratio
    m = re.search(r"^\s+(0\.\d\d)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", out, flags=re.M)
    assert m, out
    minute, steps_a, fid_a, steps_b, fid_b, ratio = m.groups()
    assert float(minute) >= 0.02 and int(steps_a) >= 1 and int(steps_b) >= 1
    assert_quotient(ratio, fid_b, fid_a)  # b/a is the FID ratio of the printed arms
    res = json.loads((tmp_path / "q.json").read_text())
    assert len(res["arms"]) == 2 and len(res["rows"]) == 1, res
    a, b = res["rows"][0]["arms"]
    assert (a["steps"], b["steps"]) == (int(steps_a), int(steps_b))  # the file holds the numbers printed
    assert (f"{a['fid']:.2f}", f"{b['fid']:.2f}") == (fid_a, fid_b) and a["fid"] > 0 and b["fid"] > 0
    for lab, ips in zip("ab", res["images_per_s"], strict=True):
        assert re.search(rf"^\({lab}\) .*: {ips:.0f} images/s$", out, flags=re.M), out


def test_dropout_prints_both_layouts_and_the_speed_up():
    out = bench("dropout.py", "--shape", "8,4,6,6", "--repeats", "1", "--iters", "2")
    for layout in ("contiguous", "channels_last"):  # speed-up = nn.Dropout ms / genlab ms, as printed
        m = re.search(rf"^{layout}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, flags=re.M)
        assert m, out
        reference_ms, genlab_ms, speed_up = m.groups()
        assert_quotient(speed_up, reference_ms, genlab_ms)
