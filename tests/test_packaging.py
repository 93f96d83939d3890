"""genlab as a package: its wheel, installed into a new virtual environment outside the clone, lists and trains
the recipes it ships from any folder; the Makefile's torch step takes the CPU build on a machine without a GPU;
LICENSE matches pyproject.toml.

The new venv gets genlab ONLY from the wheel. Reinstalling torch into it would cost minutes, so it sees the test
venv's packages through a ``.pth`` line written after the wheel is installed. A ``.pth`` line adds a folder to
sys.path without running the ``.pth`` files inside it, so the test venv's editable install of the clone (its
``__editable__.genlab-*.pth``) stays inert: the test asserts that ``genlab`` is imported from the new venv and
that the clone's ``src`` is nowhere on sys.path.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}:\n{r.stdout}\n{r.stderr}"
    return r


def _clean_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, "HOME": str(home), "GENLAB_CACHE_DIR": str(home / "cache"), "PYTHONNOUSERSITE": "1"}


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a copy of the clone's source (pyproject, README, LICENSE, src/ with its configs link,
    configs/), built without network by the test venv's setuptools: nothing is written into the clone."""
    src = tmp_path / "source"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "src", src / "src", symlinks=True, ignore=ignore)
    shutil.copytree(REPO / "configs", src / "configs", ignore=ignore)
    assert (src / "src" / "genlab" / "configs").is_symlink()  # the package's recipes are configs/, not a copy
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist, src], cwd=tmp_path)
    wheels = list(dist.glob("genlab-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_in_a_new_venv_trains_a_recipe_by_name_from_any_folder(tmp_path, tiny_fmnist):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        shipped = sorted(n.removeprefix("genlab/configs/") for n in z.namelist() if n.startswith("genlab/configs/"))
    assert shipped == sorted(p.relative_to(REPO / "configs").as_posix() for p in (REPO / "configs").rglob("*.yaml"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    py = venv / "bin" / "python"
    # the wheel first, into a venv that has nothing else: pip sees no other genlab
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp_path)
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path)
                .stdout.strip())
    (site / "zz_test_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, numpy, ...

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(tmp_path / "home")
    probe = ("import genlab, json, sys; print(json.dumps({'file': genlab.__file__, 'path': sys.path, "
             "'recipes': str(__import__('genlab.recipe_files').recipe_files.SHIPPED)}))")
    where = json.loads(_run([py, "-c", probe], cwd=elsewhere, env=env).stdout)
    assert Path(where["file"]).resolve().is_relative_to(venv.resolve()), where["file"]
    assert Path(where["recipes"]).resolve().is_relative_to(venv.resolve())
    clone_src = (REPO / "src").resolve()
    assert not any(p and Path(p).resolve() == clone_src for p in where["path"]), where["path"]

    exe = venv / "bin" / "genlab"
    listed = _run([exe, "recipes", "list"], cwd=elsewhere, env={**env, "COLUMNS": "200"}).stdout
    assert "demo_fashion_mnist_dcgan (demo)" in listed and "sweeps/mnist_latent_hidden" in listed

    r = _run([exe, "train", "demo", f"data.root={tiny_fmnist}", "data.verify=false", "data.limit=64",
              "train.max_steps=2", "train.batch_size=16", "model.hidden_dim=8", "model.latent_dim=8",
              "log.progress=false", "log.tensorboard=false", "train.threads=1", "--run-dir", "runs/demo"],
             cwd=elsewhere, env=env)
    assert "finished 2 steps" in r.stdout, r.stdout
    run = elsewhere / "runs" / "demo"
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert (run / "checkpoints").is_dir() and list(run.glob("samples/*.png"))
    assert "demo-fashion-mnist-dcgan" in (run / "config.yaml").read_text()


def _install_torch(env_extra: dict, tmp_path: Path) -> str:
    """scripts/install_torch.sh in its dry-run mode (a real `pip install --dry-run` of pip's choice; nothing is
    installed): what the Makefile would run."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "nvidia-smi").exists()]
    env = {**os.environ, "PATH": os.pathsep.join(path), "TORCH_DRY_RUN": "1", **env_extra}
    if "FAKE_GPU" in env_extra:  # this machine has no GPU: a stand-in nvidia-smi that lists one
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-0)'\n")
        (fake / "nvidia-smi").chmod(0o755)
        env["PATH"] = f"{fake}{os.pathsep}{env['PATH']}"
    r = _run(["bash", REPO / "scripts" / "install_torch.sh", sys.executable], cwd=tmp_path, env=env)
    return r.stdout


def test_make_installs_the_cpu_build_of_torch_without_a_gpu(tmp_path):
    import torch

    assert "+cpu" in torch.__version__ or not sys.platform.startswith("linux")  # the CPU wheel this venv took
    spec = f"torch=={torch.__version__.split('+')[0]}"
    out = _install_torch({"TORCH_SPEC": spec}, tmp_path)
    assert f"pip's choice for {spec} is a CPU build" in out, out
    assert out.strip().splitlines()[-1].endswith(f"pip install -q {spec}")
    # negative control: with a GPU the same step keeps pip's default (CUDA) build
    gpu = _install_torch({"TORCH_SPEC": spec, "FAKE_GPU": "1"}, tmp_path)
    assert "an NVIDIA GPU is present" in gpu and "CPU build" not in gpu
    forced = _install_torch({"TORCH_SPEC": spec, "TORCH_INDEX": "https://example.invalid/whl/cpu"}, tmp_path)
    assert forced.strip().endswith("--extra-index-url https://example.invalid/whl/cpu")


def test_license_file_matches_pyproject():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and "Keep a Changelog" in changelog
