"""The benchmark scripts run end to end at toy sizes and print their tables (the figures themselves are in
docs/benchmarks.md; nothing here asserts a speed)."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def run_bench(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def bench(script: str, *args: str, env: dict | None = None) -> str:
    return run_bench(script, *args, env=env).stdout


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


def assert_share(share: str, part: str, total: str, total_err: float | None = None) -> None:
    """``share`` (a rounded percentage) is 100 * part / total for some unrounded part and total that print as given."""
    dp, dt = half_unit(part), half_unit(total) if total_err is None else total_err
    lo = 100 * (float(part) - dp) / (float(total) + dt)
    hi = 100 * (float(part) + dp) / max(float(total) - dt, 1e-12)
    assert lo - 0.5 <= float(share) <= hi + 0.5, f"{share}% is not {part} / {total}"


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
    for group_ms, share in groups:  # each share is that group's ms of the profiled step (both printed rounded)
        assert_share(share, group_ms, wall)
    assert 90 <= sum(int(share) for _, share in groups) <= 110, out  # the breakdown covers the profiled step
    assert re.search(r"genlab train_step [\d.]+ us/step, .* bare loop [\d.]+ us/step", out), out


def test_profile_step_times_each_layer_and_genlabs_layers_against_pytorchs():
    """The DCGAN's layers one by one; genlab's own layers (models.layers) also as PyTorch's, whole step and alone."""
    out = bench("profile_step.py", "--models", "demo_fashion_mnist_dcgan", "--steps", "1", "--peak-size", "128",
                "--layers")
    m = re.search(r"with PyTorch's layers in place of genlab's \(LatentProjection, FullConv2d\)"
                  r": ([\d.]+) ms/step vs ([\d.]+) ms/step \(([\d.]+)x\)", out)
    assert m, out
    assert_quotient(m.group(3), m.group(1), m.group(2))
    rows = re.findall(r"^  ([GD]\.\S+)\s+(\w+)\s+(\d+x\d+x\d+x\d+)(?: NHWC)?\s+([\d.]+)\s+([\d.]+)\s+(\d+)%(.*)$",
                      out, flags=re.M)
    kinds = {name: kind for name, kind, *_ in rows}
    assert kinds == {"G.net.0": "LatentProjection", "G.net.3": "ConvTranspose2d", "G.net.6": "ConvTranspose2d",
                     "D.body.0": "Conv2d", "D.body.2": "Conv2d", "D.head": "FullConv2d"}, out
    shapes = {name: shape for name, _, shape, *_ in rows}
    assert shapes["G.net.0"] == "64x128x1x1" and shapes["D.body.0"] == "64x1x28x28", out  # batch 64, latent 128
    total = repr(sum(float(r[3]) for r in rows))  # a sum of n rounded figures: n times their rounding error
    for name, kind, _shape, ms, _rate, share, extra in rows:  # each share is that layer's ms of all layers'
        assert_share(share, ms, total, total_err=0.005 * len(rows))
        base = re.fullmatch(r"  ([\d.]+) ms -> ([\d.]+)x", extra)
        assert bool(base) == (kind in ("LatentProjection", "FullConv2d")), (name, out)
        if base:
            assert_quotient(base.group(2), base.group(1), next(r[3] for r in rows if r[0] == name))


def test_eval_throughput_runs_every_section(tiny_fmnist, tiny_env):
    out = bench("eval_throughput.py", "--data-root", str(tiny_fmnist), "--no-verify", "--num-samples", "64",
                "--classifier-images", "64", "--fid-rows", "64", "--fid-dim", "256", "--skip-inception", "--skip-vits",
                "--metric-rows", "64", env=tiny_env)
    assert re.search(r"^classifier\s+64\s+[\d,.]+\s+trained \(cached\)", out, flags=re.M), out
    for name in ("dinov2-vitl14", "clip-vitl14-336"):  # a row each (ViT-L on a CPU: minutes, left to the lead)
        assert re.search(rf"^{name}\s+-\s+-\s+skipped \(--skip-vits\)", out, flags=re.M), out
    for name in ("FID \\(2048-d\\)", "FD_DINOv2 \\(1024-d\\)", "CMMD \\(768-d, unbiased\\)", "Vendi \\(2048-d\\)"):
        assert re.search(rf"^64\s+{name}\s+[\d.]+\s+[\d.]+x\s+\S+", out, flags=re.M), (name, out)
    # the speed ratio is sqrtm's seconds / genlab's, the two routes agree, and the printed difference is theirs
    eigh = re.search(r"^Cholesky \+ eigvalsh \(genlab\)\s+([\d.]+)\s+([\d.]+)\s*$", out, flags=re.M)
    sqrtm = re.search(r"^scipy\.linalg\.sqrtm\(S1 S2\)\s+([\d.]+)\s+([\d.]+)\s+relative difference (\S+)",
                      out, flags=re.M)
    ratio = re.search(r"^speed ratio\s+([\d.]+)x", out, flags=re.M)
    assert eigh and sqrtm and ratio, out
    assert_quotient(ratio.group(1), sqrtm.group(1), eigh.group(1))
    v_eigh, v_sqrtm, rel = float(eigh.group(2)), float(sqrtm.group(2)), float(sqrtm.group(3))
    assert v_eigh > 0 and abs(v_eigh - v_sqrtm) / v_sqrtm < 1e-6, out
    assert abs(rel - abs(v_eigh - v_sqrtm) / v_sqrtm) <= 0.06 * rel + 2e-6 / v_sqrtm, out
    assert "3. 64 samples" in out and re.search(r"fid [\d.]+, kid", out), out
    # a row per metric of the default evaluation, the new ones included
    for name in ("fid", "kid", "is", "pr", "coverage", "fid_inf", "ci95"):
        assert re.search(rf"^  metric {name}\s+[\d.]+\s+default", out, flags=re.M), out
    assert re.search(r"fid_inf [\d.]+, fid 95% \[[\d.]+, [\d.]+\]", out), out


def test_quality_per_minute_repeats_arms_and_summarises(tiny_fmnist, tiny_env, tmp_path):
    spec = importlib.util.spec_from_file_location("qpm", BENCH / "quality_per_minute.py")
    qpm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qpm)
    assert qpm.DEFAULT_ARMS == ("fashion_mnist_10min.yaml", "fashion_mnist_flow_10min.yaml")  # the flow arm
    # the default arms, the flow recipe drawing in 2 Euler steps here (its 10 Heun steps cost seconds per grid)
    flow = str(BENCH.parent / "configs" / "fashion_mnist_flow_10min.yaml") + " objective.solver=euler objective.steps=2"
    r = run_bench("quality_per_minute.py", "--data-root", str(tiny_fmnist), "--no-verify", "--minutes", "0.02",
                  "--repeats", "2", "--snapshots", "0.01", "--slice-seconds", "0.3", "--eval-samples", "64",
                  "--out", str(tmp_path / "q.json"), "--grids", str(tmp_path / "grids"),
                  "--arm", str(BENCH.parent / "configs" / "fashion_mnist_10min.yaml"), "--arm", flow, env=tiny_env)
    out = r.stdout
    for seed in (0, 1):  # where it is, on stderr (a log gets the bar's last line when it stops): never silent
        assert re.search(rf"^seed {seed}: training 3 arms .*100%", r.stderr, flags=re.M), r.stderr
        assert re.search(rf"^seed {seed}: evaluating the snapshots .*100%", r.stderr, flags=re.M), r.stderr
    assert "(a) DCGAN paper recipe" in out and "(b) genlab fashion_mnist_10min" in out, out
    assert "(c) genlab fashion_mnist_flow_10min" in out, out
    grids = sorted(p.name for p in (tmp_path / "grids").iterdir())  # the arms side by side at every minute
    assert grids == [f"seed{s}_minute{m}.png" for s in (0, 1) for m in ("00.01", "00.02")], grids
    width = Image.open(tmp_path / "grids" / grids[0]).size[0]
    assert width == 2 * (3 * (8 * 30 + 2) + 2 * 12)  # three 8-wide grids of 28px images (+ padding), scale 2
    res = json.loads((tmp_path / "q.json").read_text())
    assert len(res["arms"]) == 3 and [r["seed"] for r in res["repeats"]] == [0, 1], res["arms"]
    triple = r"\s+(\d+)\s+([\d.]+)\s+([\d.]+)"
    for rep in res["repeats"]:  # each repeat prints a row per snapshot: steps, FID and KL per arm, then b/a, c/a
        text = out.split(f"## seed {rep['seed']}:")[1].split("##")[0]
        for i, mark in enumerate(("0.01", "0.02")):
            snaps = [arm[i] for arm in rep["snapshots"]]
            m = re.search(rf"^\s+{mark}{triple * 3}\s+([\d.]+)\s+([\d.]+)$", text, flags=re.M)
            assert m, text
            cells = m.groups()
            for k, snap in enumerate(snaps):
                steps, fid, kl = cells[3 * k:3 * k + 3]
                assert snap["steps"] == int(steps) >= 1 and snap["fid"] > 0 and snap["kl"] >= 0
                assert (f"{snap['fid']:.2f}", f"{snap['kl']:.4f}") == (fid, kl)
            for k, ratio in enumerate(cells[9:], start=1):
                assert_quotient(ratio, cells[3 * k + 1], cells[1])
    summary = out.split("## 2 repeat(s)")[1]
    fid = [[rep["snapshots"][a][1]["fid"] for rep in res["repeats"]] for a in range(3)]  # at the budget's end
    ratios = [b / a for b, a in zip(fid[1], fid[0])]
    row = re.search(r"^\s+0\.02\s+(.*)$", summary, flags=re.M).group(1)
    cells = re.findall(r"([\d.]+) \+- ([\d.]+)", row)
    assert len(cells) == 8, row  # FID a, b, c, b/a, c/a, KL a, b, c
    assert cells[1] == (f"{statistics.fmean(fid[1]):.2f}", f"{statistics.stdev(fid[1]):.2f}"), (cells, fid)
    assert cells[3] == (f"{statistics.fmean(ratios):.2f}", f"{statistics.stdev(ratios):.2f}"), (cells, ratios)
    # the flow arm against genlab's best GAN, minute by minute
    c_over_b = [c / b for c, b in zip(fid[2], fid[1])]
    versus = summary.split("FID over (b)'s at each minute")[1]
    row = re.search(r"^\s+0\.02\s+(.*)$", versus, flags=re.M).group(1)
    assert row.split() == [f"{statistics.fmean(c_over_b):.2f}", "+-", f"{statistics.stdev(c_over_b):.2f}"], row
    assert "minutes to the baseline's 0.02-minute FID" in summary, summary
    assert re.search(r"^  \(a\) 0\.0[12] \+- 0\.0\d$", summary, flags=re.M), summary  # it reaches its own FID
    assert re.search(r"^targets \(issue 26\), best arm \([bc]\), means: FID ratio <= 0\.2 at 0\.02 min: (met|missed) "
                     r".* within 0\.75 min: (met|missed)", summary, flags=re.M), summary
    rep = res["repeats"][0]
    for lab, ips, cost, nfe in zip("abc", rep["images_per_s"], rep["sampling"], (1, 1, 2), strict=True):
        assert cost["nfe"] == nfe and cost["seconds_per_10k"] > 0  # the flow arm here: Euler, 2 steps
        assert re.search(rf"^\({lab}\) .*: {ips:.0f} images/s; sampling {cost['seconds_per_10k']:.1f} s per 10k "
                         rf"images \({nfe} NFE per image\)$", out, flags=re.M), out
    # --combine: a run of seed 0 and one of seed 1, summarised together, is the 2-repeat run's summary
    for rep in res["repeats"]:
        (tmp_path / f"seed{rep['seed']}.json").write_text(json.dumps({**res, "repeats": [rep]}))
    both = bench("quality_per_minute.py", "--combine", str(tmp_path / "seed1.json"), str(tmp_path / "seed0.json"),
                 "--out", str(tmp_path / "both.json"))
    assert both.startswith("combined 2 file(s): 2 repeats"), both
    assert both.split("## 2 repeat(s)")[1] == summary, both
    assert json.loads((tmp_path / "both.json").read_text())["summary"] == res["summary"]
    twice = subprocess.run([sys.executable, str(BENCH / "quality_per_minute.py"), "--combine",
                            str(tmp_path / "seed0.json"), str(tmp_path / "q.json")], capture_output=True, text=True)
    assert twice.returncode == 2 and "seed(s) [0] appear twice" in twice.stderr.splitlines()[-1], twice.stderr


def test_quality_per_minute_time_to_target_interpolates():
    sys.path.insert(0, str(BENCH))
    try:
        import quality_per_minute as qpm
    finally:
        sys.path.remove(str(BENCH))
    curve = [(0.5, 40.0), (1.0, 20.0), (2.0, 10.0)]
    assert qpm.minutes_to_reach(curve, 15.0) == pytest.approx(1.5)  # halfway from 20 to 10
    assert qpm.minutes_to_reach(curve, 50.0) == 0.5 and qpm.minutes_to_reach(curve, 5.0) is None
    assert qpm.snapshot_marks(10, None) == [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9, 10]
    assert qpm.snapshot_marks(2.2, "1,0.5,3") == [0.5, 1, 2.2]


def test_dropout_prints_both_layouts_and_the_speed_up():
    out = bench("dropout.py", "--shape", "8,4,6,6", "--repeats", "1", "--iters", "2")
    for layout in ("contiguous", "channels_last"):  # speed-up = nn.Dropout ms / genlab ms, as printed
        m = re.search(rf"^{layout}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, flags=re.M)
        assert m, out
        reference_ms, genlab_ms, speed_up = m.groups()
        assert_quotient(speed_up, reference_ms, genlab_ms)


def tiny_sets(root: Path) -> list[str]:
    return [x for kv in (f"data.root={root}", "data.verify=false", "data.limit=128") for x in ("--set", kv)]


def test_contention_runs_each_arm_idle_and_busy_and_prints_its_ratios(tiny_fmnist):
    out = bench("contention.py", "--seconds", "3", "--warmup", "0", "--every", "1", "--repeats", "1",
                "--arms", "one,adaptive", *tiny_sets(tiny_fmnist))
    runs = re.findall(r"^repeat 1 (idle|busy) (\w+) +(\d+) images/s", out, re.M)
    assert sorted((c, a) for c, a, _ in runs) == [("busy", "adaptive"), ("busy", "one"), ("idle", "adaptive"),
                                                    ("idle", "one")]
    speed = {(c, a): s for c, a, s in runs}
    for arm in ("one", "adaptive"):  # | arm | idle | busy | busy / idle | ...: from the speeds printed above
        row = re.search(rf"^\| {arm} \| (\d+) \| (\d+) \| ([\d.]+) \|", out, re.M)
        assert row and row.group(1) == speed[("idle", arm)] and row.group(2) == speed[("busy", arm)], out
        assert_quotient(row.group(3), row.group(2), row.group(1))


def test_precision_trains_both_precisions_per_seed_and_judges_quality(tiny_fmnist, tiny_env):
    out = bench("precision.py", "--seeds", "0,1", "--steps", "3", "--num-samples", "200", *tiny_sets(tiny_fmnist),
                env=tiny_env)
    fids = {(p, int(s)): float(f) for s, p, f in re.findall(r"seed (\d) (fp32|bf16): FID ([\d.]+)", out)}
    assert sorted(fids) == [("bf16", 0), ("bf16", 1), ("fp32", 0), ("fp32", 1)]
    row = re.search(r"^\| demo_fashion_mnist_dcgan \| ([\d.]+) / ([\d.]+) \(([\d.]+) \+- ([\d.]+)\) \| "
                    r"([\d.]+) / ([\d.]+) \(([\d.]+) \+- ([\d.]+)\) \| (\d+) \| (\d+) \| ([\d.]+)x \| (yes|no) \|$",
                    out, re.M)
    assert row, out
    g = row.groups()
    assert [float(g[0]), float(g[1]), float(g[4]), float(g[5])] == pytest.approx(
        [fids[("fp32", 0)], fids[("fp32", 1)], fids[("bf16", 0)], fids[("bf16", 1)]], abs=0.006)
    f32 = [fids[("fp32", 0)], fids[("fp32", 1)]]
    mean32, sd32, meanb = statistics.mean(f32), statistics.stdev(f32), float(g[6])
    assert float(g[2]) == pytest.approx(mean32, abs=0.006) and float(g[3]) == pytest.approx(sd32, abs=0.006)
    assert_quotient(g[10], g[8], g[9])  # the speed-up is fp32's command time over bf16's
    keeps = meanb <= mean32 + sd32
    if abs(meanb - (mean32 + sd32)) > 0.02:  # far enough from the line for the rounded figures to decide it
        assert g[11] == ("yes" if keeps else "no"), out


def test_joined_conv_prints_each_condition_width_and_the_speed_up():
    out = bench("joined_conv.py", "--conds", "3,5", "--batch", "2", "--width", "4", "--repeats", "1", "--iters", "1")
    for cond in (3, 5):  # speed-up = concat ms / joined ms, as printed
        m = re.search(rf"^{cond}\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x$", out, flags=re.M)
        assert m, out
        concat_ms, joined_ms, speed_up = m.groups()
        assert_quotient(speed_up, concat_ms, joined_ms)
