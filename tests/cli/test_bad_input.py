"""Bad input to every `genlab` command: one line on stderr naming the problem and the fix, exit 2, no traceback,
nothing written; Ctrl-C (a real SIGINT) exits 130 with one line saying what was saved.

The real executable runs as a subprocess. The run folders are trained once per module (tiny dcgan, cgan and
conv-vae on the ``tiny_fmnist`` IDX files), and the table runs concurrently (each case ~4 s of CPU: the imports).
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

EXE = Path(sys.executable).with_name("genlab")
COMMON = ["data.name=fashion-mnist", "data.verify=false", "data.resolution=28", "data.channels=1", "data.limit=64",
          "model.latent_dim=8", "model.hidden_dim=8", "train.batch_size=32", "train.epochs=1", "log.every_steps=1",
          "log.num_samples=16", "log.progress=false", "log.tensorboard=false", "train.threads=1",
          "train.device=cpu"]
RUNS = {"dcgan": ["model.name=dcgan"], "cgan": ["model.name=cgan"],
        "vae": ["model.name=conv-vae", "data.resolution=32"]}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder``: relative name -> (size, mtime_ns)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def world(tiny_fmnist, tmp_path_factory) -> dict:
    """Trained run folders, corrupt copies of one, and the bad files the table names."""
    import shutil

    from genlab.recipe import load_config
    from genlab.training.loop import train

    base = tmp_path_factory.mktemp("bad_input")
    cache = base / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        for name, ov in RUNS.items():
            cfg = load_config(None, [*COMMON, f"data.root={tiny_fmnist}", *ov, f"name={name}"])
            train(cfg, base / "runs" / name, log=lambda *_: None)
    runs = base / "runs"
    for name in ("bad_yaml", "list_yaml", "bad_noise"):
        shutil.copytree(runs / "dcgan", runs / name)
    (runs / "bad_yaml" / "config.yaml").write_text("data: [\n  name: }\n")
    (runs / "list_yaml" / "config.yaml").write_text("- 1\n- 2\n")
    noise = runs / "bad_noise" / "noise.pt"
    noise.write_bytes(noise.read_bytes()[:100])
    f = base / "files"
    f.mkdir()
    (f / "recipe_dir").mkdir()
    (f / "binary.yaml").write_bytes(b"\x00\x01\x89PNG\xff\xfe")
    (f / "list.yaml").write_text("- data\n- model\n")
    (f / "syntax.yaml").write_text("model: {name: dcgan\n")
    (f / "interp.yaml").write_text("train:\n  epochs: ${train.nope}\n")
    (f / "blocker").write_text("a file, not a folder\n")
    (f / "not_tensor.pt").write_text("these are not latents\n")
    torch.save(torch.zeros(3, 5), f / "wrong_dim.pt")
    torch.save(torch.zeros(7), f / "one_d.pt")
    (f / "empty_images").mkdir()
    readonly = f / "readonly"
    readonly.mkdir()
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)  # 0o500
    (f / "sweep.yaml").write_text("base: nope.yaml\n")
    recipe = Path(__file__).resolve().parents[2] / "configs" / "demo_fashion_mnist_dcgan.yaml"
    (f / "good_sweep.yaml").write_text(f"base: {recipe}\ngrid: {{model.latent_dim: [8]}}\n")
    (f / "docs" / "photos").mkdir(parents=True)  # a user's own folder: no command may delete or write into it
    (f / "docs" / "thesis.tex").write_text("\\chapter{One}\n")
    (f / "docs" / "results.csv").write_text("my,own,results\n")
    (f / "docs" / "photos" / "cat.png").write_bytes(b"\x89PNG")
    (f / "lightning" / "checkpoints").mkdir(parents=True)  # another tool's project: config.yaml + checkpoints/
    (f / "lightning" / "config.yaml").write_text("model:\n  lr: 0.001\n")
    (f / "lightning" / "checkpoints" / "last.ckpt").write_bytes(b"a month of GPU time")
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
    env.pop("GENLAB_DATA_DIR", None)
    yield {"base": base, "runs": runs, "files": f, "env": env, "data": tiny_fmnist}
    readonly.chmod(0o700)


def genlab(args: list[str], env: dict, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


# (id, arguments ({R}: run folders, {F}: bad files, {D}: the dataset, {C}: the case's own empty cwd), key words of
# the one error line). Every case must also leave its cwd empty and the run folders untouched.
CASES = [
    # train: recipes and overrides
    ("train-yaml-syntax", ["train", "{F}/syntax.yaml"], ["syntax.yaml", "not valid YAML", "fix the file"]),
    ("train-yaml-list", ["train", "{F}/list.yaml"], ["list.yaml", "not a mapping", "configs/"]),
    ("train-binary-recipe", ["train", "{F}/binary.yaml"], ["binary.yaml", "not a text YAML file", "give a recipe"]),
    ("train-recipe-folder", ["train", "{F}/recipe_dir"], ["recipe_dir", "is a folder", "give a recipe file"]),
    ("train-bad-interpolation", ["train", "{F}/interp.yaml"], ["train.nope", "not found", "must name an existing"]),
    ("train-resume-bad-config", ["train", "--resume", "{R}/bad_yaml"], ["config.yaml", "not a readable", "restore"]),
    ("train-resume-list-config", ["train", "--resume", "{R}/list_yaml"], ["config.yaml", "YAML list", "restore"]),
    ("train-resume-bad-noise", ["train", "--resume", "{R}/bad_noise"], ["noise.pt", "not a readable", "delete it"]),
    # sample
    ("sample-n-0", ["sample", "{R}/dcgan", "-n", "0"], ["-n 0", "at least 1"]),
    ("sample-nrow-0", ["sample", "{R}/dcgan", "--nrow", "0", "-o", "{C}/s.png"], ["--nrow 0", "images per row"]),
    ("sample-label-unconditional", ["sample", "{R}/dcgan", "--label", "3", "-o", "{C}/s.png"],
     ["unconditional", "drop --label"]),
    ("sample-label-out-of-range", ["sample", "{R}/cgan", "--label", "10", "-o", "{C}/s.png"],
     ["[10]", "out of range", "0..9"]),
    ("sample-unknown-suffix", ["sample", "{R}/dcgan", "-o", "{C}/grid.xyz"], ["'.xyz'", ".png, .jpg"]),
    ("sample-out-under-file", ["sample", "{R}/dcgan", "-o", "{F}/blocker/s.png"], ["blocker", "is a file", "another"]),
    ("sample-out-proc", ["sample", "{R}/dcgan", "-n", "2", "-o", "/proc/x.png"], ["'/proc'", "another"]),
    ("sample-markup-kept", ["sample", '{C}/[/bold] pip install "genlab[ray]"'],
     ['[/bold] pip install "genlab[ray]"', "not a genlab run folder", "genlab train"]),
    # eval, eval-folder
    ("eval-num-samples-0", ["eval", "{R}/dcgan", "--num-samples", "0"], ["--num-samples 0", "at least 1"]),
    ("sample-steps-one-step-model", ["sample", "{R}/dcgan", "--steps", "3", "-o", "{C}/s.png"],
     ["dcgan draws each image in one network call", "flow and diffusion models"]),
    ("eval-solver-unknown", ["eval", "{R}/dcgan", "--solver", "rk4"], ["unknown ODE solver 'rk4'", "euler, heun"]),
    ("eval-batch-size-0", ["eval", "{R}/dcgan", "--batch-size", "0"], ["--batch-size 0", "images per batch"]),
    ("eval-out-under-file", ["eval", "{R}/dcgan", "--out", "{F}/blocker/e.json"], ["blocker", "is a file"]),
    ("eval-rfid-gan", ["eval", "{R}/dcgan", "--metrics", "fid,rfid"],
     ["rfid needs a model with an encoder", "dcgan has none", "drop rfid from --metrics"]),
    ("eval-folder-batch-size", ["eval-folder", "{F}/empty_images", "--against", "fashion-mnist:test",
                                "--batch-size", "-1"], ["--batch-size -1", "at least 1"]),
    # analysis
    ("interpolate-steps-1", ["interpolate", "{R}/dcgan", "--steps", "1"], ["--steps 1", "at least 2"]),
    ("interpolate-latents-not-tensor", ["interpolate", "{R}/dcgan", "--latents", "{F}/not_tensor.pt"],
     ["not_tensor.pt", "not a tensor file", "torch.save"]),
    ("interpolate-latents-wrong-dim", ["interpolate", "{R}/dcgan", "--latents", "{F}/wrong_dim.pt"],
     ["(3, 5)", "latent_dim=8", "(K, 8)"]),
    ("latent-steps-0", ["latent", "{R}/dcgan", "--steps", "0"], ["--steps 0", "at least 2"]),
    ("class-grid-n-0", ["class-grid", "{R}/cgan", "-n", "0"], ["-n 0", "images per class"]),
    ("coverage-n-0", ["coverage", "{R}/dcgan", "-n", "0"], ["-n 0", "at least 1"]),
    ("neighbours-space", ["neighbours", "{R}/dcgan", "--space", "colour"], ["--space 'colour'", "features, pixels"]),
    ("plot-progress-columns-0", ["plot", "progress", "{R}/dcgan", "--columns", "0"], ["--columns 0", "per row"]),
    # report, sweep, export, datasets, features, models
    ("report-not-a-run", ["report", "{C}/nothing"], ["is not a folder", "run folders"]),
    ("sweep-workers-0", ["sweep", "{F}/sweep.yaml", "--workers", "0"], ["--workers 0", "at least 1"]),
    ("sweep-cpus-per-run-0", ["sweep", "{F}/sweep.yaml", "--executor", "ray", "--cpus-per-run", "0"],
     ["--cpus-per-run 0.0", "positive number of CPUs"]),
    ("search-workers-0", ["search", "{F}/sweep.yaml", "--workers", "0"], ["--workers 0", "at least 1"]),
    ("search-gpus-per-run-negative", ["search", "{F}/sweep.yaml", "--executor", "ray", "--gpus-per-run", "-1"],
     ["--gpus-per-run -1.0", "zero or more GPUs"]),
    ("sweep-out-under-file", ["sweep", "{F}/sweep.yaml", "--out", "{F}/blocker/sw"], ["blocker", "is a file"]),
    ("export-out-proc", ["export", "{R}/dcgan", "-o", "/proc/exported"], ["'/proc'", "another"]),
    # nothing of the user's and nothing of a run is deleted or replaced (genlab.deletion)
    ("export-overwrite-documents", ["export", "{R}/dcgan", "-o", "{F}/docs", "--overwrite"],
     ["docs", "refusing to --overwrite", "not a genlab export folder"]),
    ("export-into-cwd", ["export", "{R}/dcgan", "-o", "{C}", "--overwrite"], ["refusing to export into",
                                                                              "the current folder"]),
    ("train-overwrite-other-project", ["train", "--run-dir", "{F}/lightning", "--overwrite", "data.root={D}",
                                       "data.verify=false"], ["lightning", "refusing to --overwrite",
                                                              "not a genlab run folder"]),
    ("sweep-out-documents", ["sweep", "{F}/good_sweep.yaml", "--out", "{F}/docs"], ["docs", "not a sweep folder"]),
    ("eval-out-records", ["eval", "{R}/dcgan", "--out", "{R}/dcgan/metrics.jsonl"], ["metrics.jsonl",
                                                                                      "would replace"]),
    ("eval-out-checkpoint", ["eval", "{R}/dcgan", "--out", "{R}/dcgan/checkpoints/step_000000002.pt"],
     ["step_000000002.pt", "would replace"]),
    ("eval-out-status", ["eval", "{R}/dcgan", "--out", "{R}/dcgan/status.json"], ["status.json", "would replace"]),
    ("eval-out-suffix", ["eval", "{R}/dcgan", "--out", "{F}/docs/thesis.tex"], ["thesis.tex", "a .json file"]),
    ("report-out-config", ["report", "{R}/dcgan", "-o", "{R}/dcgan/config.yaml"], ["config.yaml", "would replace"]),
    ("sample-out-runs-grid", ["sample", "{R}/dcgan", "-o", "{R}/dcgan/samples/epoch_0001.png"],
     ["epoch_0001.png", "would replace"]),
    ("plot-curves-sibling", ["plot", "curves", "{R}/dcgan", "-o", "{R}/dcgan/status.png"],
     ["status.json", "would replace"]),
    ("datasets-prepare-resolution", ["datasets", "prepare", "fashion-mnist", "--resolution", "0"],
     ["--resolution 0", "at least 8"]),
    ("features-channels", ["features", "train-classifier", "fashion-mnist", "--channels", "2"], ["--channels 2"]),
    ("features-variant-cached", ["features", "train-classifier", "fashion-mnist", "--width", "8", "--cached-only"],
     ["never cached", "--cached-only"]),
    ("features-width", ["features", "train-classifier", "fashion-mnist", "--width", "0"], ["--width 0"]),
    ("models-unknown", ["models", "show"], ["No such command 'show'", "genlab models --help"]),
]
if os.geteuid() != 0:  # root writes into a 0o500 folder anyway
    CASES.append(("sample-out-readonly", ["sample", "{R}/dcgan", "-o", "{F}/readonly/s.png"],
                  ["readonly", "not writable", "permissions"]))
# a failed start of `genlab train` leaves nothing behind either (not even runs/ in the current folder)
CASES += [
    ("train-unknown-dataset", ["train", "data.name=imagenet-99"], ["unknown dataset 'imagenet-99'", "mnist"]),
    ("train-empty-image-folder", ["train", "data.name=image-folder", "data.root={F}/empty_images"],
     ["no images in", "empty_images"]),
]
GOOD = {  # grids in the format their suffix names
    "jpg": (["sample", "{R}/dcgan", "-n", "4", "-o", "{C}/grid.jpg"], "JPEG"),
    "webp": (["sample", "{R}/cgan", "-n", "4", "-o", "{C}/grid.webp"], "WEBP"),
    "markup": (["sample", "{R}/dcgan", "-n", "4", "-o", "{C}/[bold]grid.png"], "PNG"),
}


def fill(args: list[str], world: dict, cwd: Path) -> list[str]:
    return [a.replace("{R}", str(world["runs"])).replace("{F}", str(world["files"]))
            .replace("{D}", str(world["data"])).replace("{C}", str(cwd)) for a in args]


def run_table(world) -> dict:
    """Every case of the tables run once, concurrently; the run folders' snapshots before and after."""
    jobs = {cid: args for cid, args, _ in CASES}
    jobs.update({f"good-{k}": args for k, (args, _) in GOOD.items()})
    before = snapshot(world["runs"]), snapshot(world["files"])

    def one(item):
        cid, args = item
        cwd = world["base"] / "cwd" / cid
        cwd.mkdir(parents=True)
        return cid, (genlab(fill(args, world, cwd), world["env"], cwd), cwd)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        out = dict(pool.map(one, jobs.items()))
    out["_snapshots"] = (before, (snapshot(world["runs"]), snapshot(world["files"])))
    return out


def assert_one_error_line(r: subprocess.CompletedProcess, words: list[str], code: int = 2) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def check_bad(cid: str, words: list[str], results: dict) -> None:
    r, cwd = results[cid]
    assert_one_error_line(r, words)
    assert list(cwd.iterdir()) == [], f"{cid} wrote {list(cwd.iterdir())}"


def check_good(suffix: str, results: dict) -> None:
    r, cwd = results[f"good-{suffix}"]
    assert r.returncode == 0, r.stderr
    (written,) = list(cwd.iterdir())
    with Image.open(written) as img:
        assert img.format == GOOD[suffix][1] and img.mode == "RGB"
    assert written.name in r.stdout.replace("\n", "")  # "[bold]" printed as text, not read as Rich markup


@pytest.mark.timeout(1800)  # ~40 commands: ~3 min on an idle 2-core machine, far more on a loaded one
def test_bad_input_is_one_line_exit_2_and_writes_nothing_and_grids_take_their_suffix_format(world):
    """The whole table in one test (one pytest-xdist worker runs it: the cases are ~4 s of CPU each, the imports);
    the failure message lists every failing case with its assertion."""
    results = run_table(world)
    failures = []
    for cid, _, words in CASES:
        try:
            check_bad(cid, words, results)
        except AssertionError as e:
            failures.append(f"{cid}: {e}")
    for suffix in sorted(GOOD):
        try:
            check_good(suffix, results)
        except AssertionError as e:
            failures.append(f"good-{suffix}: {e}")
    (runs_before, files_before), (runs_after, files_after) = results["_snapshots"]
    changed = sorted(set(runs_before.items()) ^ set(runs_after.items()))
    if changed:
        failures.append(f"a bad-input case changed the run folders: {changed}")
    if files_before != files_after:
        failures.append("a bad-input case changed the bad files")
    assert not failures, f"{len(failures)} case(s) failed:\n" + "\n".join(failures)


# ------------------------------------------------------------------------------------------------------ Ctrl-C
def start(args: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(EXE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=cwd)


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 120) -> None:
    """Read stdout until a line holding ``needle`` (the command is really working then)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if needle in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"ended before printing {needle!r}: {proc.stderr.read()}")
    raise AssertionError(f"no {needle!r} within {timeout}s")


def wait_for_file(proc: subprocess.Popen, path: Path, timeout: float = 120) -> None:
    """Wait until ``path`` exists; fail at once when the command ended first, and after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while not path.is_file():
        if proc.poll() is not None:
            raise AssertionError(f"ended (exit {proc.returncode}) before writing {path}: {proc.stderr.read()}")
        if time.time() > deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"no {path} within {timeout}s")
        time.sleep(0.05)


def interrupt(proc: subprocess.Popen, after_s: float = 1.0, sig: int = signal.SIGINT) -> str:
    """Send ``sig`` after ``after_s``; the command must end with one error line and 128 + the signal."""
    time.sleep(after_s)
    assert proc.poll() is None, "finished before the signal; the test needs a longer command"
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # never leave a runaway command behind a failed test
            proc.kill()
            proc.communicate()
    assert "Traceback" not in err, err
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err  # above it: data-loading warnings
    return errors[0]


def test_ctrl_c_in_train_saves_a_checkpoint_and_says_how_to_resume(world, tmp_path):
    run = tmp_path / "run"
    proc = start(["train", *COMMON, f"data.root={world['data']}", "train.epochs=1000", "train.batch_size=4",
                  "--run-dir", str(run)], world["env"], tmp_path)
    wait_for_line(proc, "runtime:")
    wait_for_file(proc, run / "metrics.jsonl")  # the first step is done
    line = interrupt(proc, 0.2)
    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    assert "interrupted (Ctrl-C) at step" in line and f"saved checkpoint {ckpts[-1]}" in line
    assert f"genlab train --resume {run}" in line


@pytest.mark.parametrize("sig, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")])
def test_kill_and_a_closed_terminal_stop_training_like_ctrl_c(world, tmp_path, sig, name):
    """`kill` (schedulers, `timeout`, container stops) and SIGHUP checkpoint, mark the run interrupted, exit with
    128 + the signal, and the run resumes from there."""
    run = tmp_path / "run"
    proc = start(["train", *COMMON, f"data.root={world['data']}", "train.epochs=1000", "train.batch_size=4",
                  "--run-dir", str(run)], world["env"], tmp_path)
    wait_for_line(proc, "runtime:")
    wait_for_file(proc, run / "metrics.jsonl")  # the first step is done
    line = interrupt(proc, 0.2, sig)
    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    assert f"interrupted ({name}) at step" in line and f"saved checkpoint {ckpts[-1]}" in line
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    r = genlab(["train", "--resume", str(run), "train.epochs=1"], world["env"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


@pytest.mark.parametrize("after_s", [0.5, 1.5])
def test_ctrl_c_in_the_first_seconds_is_one_line(world, tmp_path, after_s):
    """The handler goes in before anything heavy is imported (genlab.__main__): no traceback from an import."""
    proc = start(["eval", str(world["runs"] / "dcgan"), "--num-samples", "200000", "--metrics", "fid",
                  "--features", "classifier", "--out", str(tmp_path / "e.json")], world["env"], tmp_path)
    line = interrupt(proc, after_s)
    assert line.startswith("error: interrupted (Ctrl-C)")
    assert not (tmp_path / "e.json").exists()


def test_ctrl_c_in_eval_writes_nothing(world, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(world["runs"] / "dcgan", run)
    before = snapshot(run)
    proc = start(["eval", str(run), "--num-samples", "200000", "--metrics", "fid", "--features", "classifier"],
                 world["env"], tmp_path)
    wait_for_line(proc, "evaluating fid")
    line = interrupt(proc)
    assert "interrupted (Ctrl-C); nothing was written" in line
    assert snapshot(run) == before


def test_ctrl_c_in_report_writes_no_report(world, tmp_path):
    runs = [str(world["runs"] / n) for n in ("vae", "cgan", "dcgan")]
    proc = start(["report", *runs, "-o", str(tmp_path / "r.html")], world["env"], tmp_path)
    wait_for_line(proc, "report: run")
    line = interrupt(proc, 0.5)
    assert "interrupted (Ctrl-C); the report was not written" in line
    assert not (tmp_path / "r.html").exists()


def _sweep_world(world, tmp_path) -> tuple[Path, Path]:
    recipe = {"name": "tiny", "data": {"name": "fashion-mnist", "root": str(world["data"]), "resolution": 28,
                                       "limit": 64, "verify": False},
              "model": {"name": "dcgan", "latent_dim": 8, "hidden_dim": 8},
              "train": {"epochs": 1, "batch_size": 4, "threads": 1},
              "log": {"every_steps": 1, "tensorboard": False}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    (tmp_path / "s.yaml").write_text("base: tiny.yaml\ngrid: {train.epochs: [1, 1000]}\n")
    return tmp_path / "s.yaml", tmp_path / "out"


def _start_sweep(world, tmp_path) -> tuple[subprocess.Popen, Path]:
    sweep, out = _sweep_world(world, tmp_path)
    proc = start(["sweep", str(sweep), "--out", str(out), "--threads", "1"], world["env"], tmp_path)
    wait_for_line(proc, "[1/2] epochs=1/seed=0 ok")
    second = out / "epochs=1000" / "seed=0"
    wait_for_file(proc, second / "metrics.jsonl")
    return proc, second


@pytest.mark.parametrize("sig, name", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")])
def test_a_stopped_sweep_names_the_finished_runs_and_how_to_continue(world, tmp_path, sig, name):
    proc, second = _start_sweep(world, tmp_path)
    line = interrupt(proc, 0.2, sig)
    assert f"sweep interrupted ({name}): 1 of 2 run(s) finished (epochs=1/seed=0)" in line
    assert "checkpointed and stopped: epochs=1000/seed=0" in line and "same `genlab sweep` command again" in line
    assert list((second / "checkpoints").glob("step_*.pt"))
    assert json.loads((second / "status.json").read_text())["state"] == "interrupted"
    r = genlab(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--dry-run"], world["env"],
               tmp_path)
    assert r.returncode == 0 and "1 finished, 1 resume" in r.stdout, r.stdout + r.stderr


def test_a_killed_sweep_leaves_no_run_training_alone(world, tmp_path):
    """kill -9 of the sweep: the kernel sends its runs SIGINT (PR_SET_PDEATHSIG), so they checkpoint and stop."""
    from genlab.rundir import RunDir

    proc, second = _start_sweep(world, tmp_path)
    proc.kill()
    proc.communicate()
    deadline = time.time() + 120
    while RunDir.of(second).lock_owner() is not None and time.time() < deadline:
        time.sleep(0.1)
    assert RunDir.of(second).lock_owner() is None, "the run went on training after its sweep was killed"
    assert json.loads((second / "status.json").read_text())["state"] == "interrupted"
    assert list((second / "checkpoints").glob("step_*.pt"))
