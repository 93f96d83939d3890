"""What a run leaves behind is real: TensorBoard can read the events, PNGs open, the CLI speaks in one line."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from genlab.api import train
from genlab.recipe import load_config


@pytest.fixture(scope="module")
def run(tiny_fmnist, tmp_path_factory):
    run = tmp_path_factory.mktemp("out") / "run"
    cfg = load_config("configs/demo_fashion_mnist_dcgan.yaml", [
        f"data.root={tiny_fmnist}", "data.verify=false", "data.limit=64", "model.hidden_dim=8", "train.batch_size=16",
        "train.epochs=2", "log.every_steps=2", "log.progress=false", "log.keep_checkpoints=1", "train.device=cpu"])
    train(cfg, run_dir=run, evaluate=False, log=lambda *_: None)  # genlab.train: with the trackers (TensorBoard)
    return run


def test_tensorboard_reads_scalars_and_images(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for key in ("loss_D", "loss_G", "D(x)", "D(G(z))", "lr/G", "lr/D", "time/images_per_s"):
        assert key in tags["scalars"], tags["scalars"]
    steps = [e.step for e in acc.Scalars("loss_D")]
    assert steps == [2, 4, 6, 8]
    assert "samples" in tags["images"]
    assert {"config/text_summary", "status/text_summary"} <= set(tags["tensors"]), tags["tensors"]
    [status] = acc.Tensors("status/text_summary")
    assert status.step == 8 and status.tensor_proto.string_val == [b"finished"]


def test_sample_grids_open_and_checkpoints_pruned(run):
    pngs = sorted((run / "samples").glob("epoch_*.png"))
    assert [p.name for p in pngs] == ["epoch_0001.png", "epoch_0002.png"]
    with Image.open(pngs[-1]) as im:
        im.verify()
    with Image.open(pngs[-1]) as im:
        assert im.size == (8 * 30 + 2, 8 * 30 + 2)  # 64 fixed-noise images of 28 px, padding 2
    assert [p.name for p in (run / "checkpoints").glob("step_*.pt")] == ["step_000000008.pt"]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["epoch"] == 2


def genlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True, timeout=300)


def test_cli_sample_writes_png_and_is_seeded(run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((a, 1), (b, 1), (c, 2)):
        r = genlab("sample", str(run), "-n", "16", "-o", str(out), "--seed", str(seed))
        assert r.returncode == 0, r.stderr + r.stdout
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    with Image.open(a) as im:
        assert im.size == (4 * 30 + 2, 4 * 30 + 2)


@pytest.mark.parametrize("args, words", [
    (["train", "configs/demo_fashion_mnist_dcgan.yaml", "model.latent_dim=0"], ["model.latent_dim=0"]),
    (["train", "configs/demo_fashion_mnist_dcgan.yaml", "model.latnet_dim=3"], ["model.latnet_dim"]),
    (["train", "configs/demo_fashion_mnist_dcgan.yaml", "data.resolution=50"], ["data.resolution=50"]),
    (["sample", "/nonexistent/run"], ["not a genlab run folder"]),
    (["train", "--resume", "/nonexistent/run"], ["not a genlab run folder"]),
])
def test_cli_errors_are_one_line(args, words):
    r = genlab(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = r.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) <= 2, err  # Rich may wrap one long line
    for w in words:
        assert w in err.replace("\n", ""), err


def test_python_dash_m_and_help_lists_registries():
    r = genlab("--help")
    assert r.returncode == 0
    r = genlab("train", "--help")
    assert "dcgan" in r.stdout and "fashion-mnist" in r.stdout


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    from genlab.io import atomic_write_text

    p = atomic_write_text(tmp_path / "x.txt", "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    assert p.read_text() == "hello" and not list(tmp_path.glob(".x.txt.*"))
