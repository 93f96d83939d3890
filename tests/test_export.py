"""Generator export (genlab/export.py, `genlab export`): safetensors + JSON that rebuild the generator without
the run folder and draw exactly the run's images."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.errors import GenlabError, RunError
from genlab.export import META_FILE, WEIGHTS_FILE, export_generator, load_generator

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "runs_v010"


def copy_run(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / "runs" / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


@pytest.mark.parametrize("name, ema, conditioning", [("dcgan-ema", True, "none"), ("cgan", False, "class")])
def test_an_export_samples_bit_for_bit_like_its_run_without_the_run_folder(name, ema, conditioning, tmp_path):
    run_dir = copy_run(name, tmp_path)
    run = genlab.load_run(run_dir)
    expected = run.sample(16, seed=3)
    labeled = conditioning != "none"
    if labeled:
        expected_label = run.sample(5, seed=1, labels=[2, 7])
    else:  # labels for an unconditional model are an error, not silently ignored
        with pytest.raises(GenlabError, match=f"model {run.cfg.model.name} is unconditional"):
            run.sample(5, seed=1, labels=[2, 7])
    state = {k: v.clone() for k, v in run.generator.state_dict().items()}  # the EMA copy when the run has one
    out = export_generator(run_dir, tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == [".genlab-export", META_FILE, WEIGHTS_FILE]
    assert [p.name for p in (tmp_path).iterdir() if p.name.startswith(".")] == []  # no staging folder left
    weights = load_file(str(out / WEIGHTS_FILE))
    assert weights.keys() == state.keys() and all(torch.equal(weights[k], state[k]) for k in state)

    shutil.rmtree(run_dir)  # the export stands alone
    gen = load_generator(out)
    assert torch.equal(gen.sample(16, seed=3), expected)
    if labeled:
        assert torch.equal(gen.sample(5, seed=1, labels=[2, 7]), expected_label)
    else:
        with pytest.raises(GenlabError, match=f"model {run.cfg.model.name} is unconditional"):
            gen.sample(5, seed=1, labels=[2, 7])
    assert not gen.net.training and isinstance(gen.net, torch.nn.Module)
    info = json.loads((out / META_FILE).read_text())
    assert (info["model"], info["ema"], info["conditioning"], info["step"], info["epoch"]) == (
        run.cfg.model.name, ema, conditioning, 16, 2)
    assert info["data"] == {"name": "fashion-mnist", "resolution": 28, "channels": 1}
    assert info["num_classes"] == 10 and info["class_names"][1] == "Trouser" and info["text"] is None
    assert info["model_options"]["latent_dim"] == gen.latent_dim == 8
    assert info["genlab_version"] == genlab.__version__ and info["format"] == "genlab-generator"


def test_a_text_model_export_keeps_its_vocabulary(tiny_fmnist, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "fashion-mnist").symlink_to(tiny_fmnist)
    monkeypatch.setenv("GENLAB_DATA_DIR", str(data))
    run = genlab.train(None, ["model.name=text-dcgan", "data.resolution=28", "data.verify=false", "model.hidden_dim=4",
                              "model.latent_dim=6", "model.embed_dim=8", "train.batch_size=8", "train.max_steps=2",
                              "log.progress=false", "log.tensorboard=false", "log.num_samples=4", "train.device=cpu"],
                       run_dir=tmp_path / "text", log=lambda *_: None)
    gen = load_generator(export_generator(run.path, tmp_path / "export"))
    assert gen.info.text["vocab"] == run.loaded.extra["text"]["vocab"]
    assert torch.equal(gen.sample(6, seed=2), run.sample(6, seed=2))
    caption = gen.info.text["class_captions"][1]
    assert torch.equal(gen.sample(4, seed=5, prompt=caption), run.sample(4, seed=5, prompt=caption))


def test_export_refuses_a_non_empty_folder_unless_overwrite(tmp_path):
    run_dir = copy_run("dcgan-ema", tmp_path)
    out = tmp_path / "export"
    out.mkdir()
    export_generator(run_dir, out)  # an empty folder is fine
    with pytest.raises(RunError, match="not empty"):
        export_generator(run_dir, out)
    (out / "stale.txt").write_text("old")  # a file genlab did not write: the folder is not replaced
    with pytest.raises(RunError, match="stale.txt"):
        export_generator(run_dir, out, checkpoint="step_000000008.pt", overwrite=True)
    (out / "stale.txt").unlink()
    export_generator(run_dir, out, checkpoint="step_000000008.pt", overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [".genlab-export", META_FILE, WEIGHTS_FILE]
    assert load_generator(out).info.step == 8
    with pytest.raises(RunError, match="not a generator export"):
        load_generator(tmp_path)
    (out / META_FILE).write_text("{}")
    with pytest.raises(RunError, match="not a genlab generator export"):
        load_generator(out)


def genlab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genlab", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


def test_the_export_command(tmp_path):
    run_dir = copy_run("cgan", tmp_path)
    out = tmp_path / "export"
    r = genlab_cli("export", str(run_dir), "-o", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "cgan" in r.stdout and (out / WEIGHTS_FILE).is_file()
    assert torch.equal(load_generator(out).sample(16, seed=3), genlab.load_run(run_dir).sample(16, seed=3))
    r = genlab_cli("export", str(run_dir), "-o", str(out))
    assert r.returncode == 2 and "not empty" in r.stderr and "--overwrite" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = genlab_cli("export", str(run_dir), "-o", str(out), "--overwrite", "--checkpoint", "step_000000008.pt")
    assert r.returncode == 0, r.stderr + r.stdout
    assert json.loads((out / META_FILE).read_text())["step"] == 8
    r = genlab_cli("export", str(tmp_path / "nope"), "-o", str(tmp_path / "e2"))
    assert r.returncode == 2 and "not a genlab run folder" in r.stderr


def test_a_flow_export_integrates_the_same_ode_as_its_run(flow_run, tmp_path):
    """A flow model's export draws with the run's sampler (its steps, solver) and takes other ones as the run does."""
    run = genlab.load_run(flow_run)
    expected = run.sample(6, seed=2, labels=[1, 4])
    other = run.sample(6, seed=2, labels=[1, 4], steps=3, solver="euler")
    guided = run.sample(6, seed=2, labels=[1, 4], guidance=2.0)
    assert not torch.equal(expected, other) and not torch.equal(expected, guided)
    gen = load_generator(export_generator(flow_run, tmp_path / "export"))
    assert torch.equal(gen.sample(6, seed=2, labels=[1, 4]), expected)
    assert torch.equal(gen.sample(6, seed=2, labels=[1, 4], steps=3, solver="euler"), other)
    assert torch.equal(gen.sample(6, seed=2, labels=[1, 4], guidance=2.0), guided)
    assert gen.info.sampling == {"process": "flow", "solver": "euler", "steps": 2, "nfe": 2, "guidance": 1.0}
    assert gen.latent_dim == 28 * 28 and gen.info.model == "cflow-unet"
    with pytest.raises(GenlabError, match="steps=0"):
        gen.sample(2, steps=0)
