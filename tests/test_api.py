"""The public Python API (genlab/api.py): docs/python_api.md's example runs as written, `import genlab` stays
cheap, and the calls answer bad input with a GenlabError."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genlab
from genlab.errors import ConfigError, GenlabError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python_api.md"
FIXTURES = ROOT / "tests" / "fixtures" / "runs_v010"


@pytest.fixture
def data_env(tiny_fmnist, tmp_path, monkeypatch) -> Path:
    """The tiny IDX dataset as Fashion-MNIST through $GENLAB_DATA_DIR."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "fashion-mnist").symlink_to(tiny_fmnist)
    monkeypatch.setenv("GENLAB_DATA_DIR", str(data))
    return data


def doc_code() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
    assert blocks, f"{DOC} has no python code block"
    return "\n".join(blocks)


def test_the_documented_example_runs(data_env, tmp_path, monkeypatch):
    from genlab.metrics.features import train_classifier

    # the classifier features with few steps, cached under the key the example looks up: the dataset found
    # through $GENLAB_DATA_DIR (data.root unset), not conftest's explicit root (the default recipe takes minutes)
    train_classifier("fashion-mnist", 28, 1, epochs=8, batch_size=32, verify=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")  # the example runs from the repository root
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": "__doc_example__"}
    # the tiny data is not Fashion-MNIST's published files: the example's recipe is told so (data.verify=false)
    code = doc_code()
    assert code.count('"eval.every=0"]') == 1
    code = code.replace('"eval.every=0"]', '"eval.every=0", "data.verify=false"]')
    exec(compile(code, str(DOC), "exec"), namespace)
    run = namespace["run"]
    assert run.step == 4 and run.loaded.ema is not None  # the tiny dataset: one epoch of 256 images / batch 64
    assert (work / "runs/api-demo/analysis/curves.png").is_file()
    assert (work / "exports/api-demo/generator.safetensors").is_file()
    assert namespace["result"]["fid"] > 0 and namespace["folder_result"]["fid"] > 0
    # the callbacks example resumed the run (to the tiny set's second epoch) with its own logger
    assert namespace["more"].step == 8
    assert (work / "runs/api-demo/losses.txt").read_text().splitlines()[-1] == "# finished at step 8"


def test_import_genlab_loads_nothing_else():
    code = ("import sys, genlab; heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'numpy', 'typer', 'omegaconf') or m.startswith('genlab.')); print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_reading_a_run_imports_nothing_of_training():
    """Loading a checkpoint to draw or to evaluate (genlab.sampling, genlab.evaluation's glue aside) needs the
    checkpoint file's reader and the networks, not the training loop."""
    code = ("import sys; from genlab.sampling import load_run, restore; from genlab.checkpoint import load_checkpoint; "
            "print(sorted(m for m in sys.modules if m.startswith('genlab.training')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_public_names_are_lazy_attributes():
    from genlab import api, export, hub

    assert genlab.train is api.train and genlab.load_run is api.load_run and genlab.evaluate is api.evaluate
    assert genlab.load_generator is hub.load_generator and genlab.export_generator is export.export_generator
    assert genlab.compare is api.compare and genlab.to_image is api.to_image and genlab.push_to_hub is hub.push_to_hub
    assert {"train", "load_run", "evaluate", "load_generator", "export_generator"} <= set(dir(genlab))
    with pytest.raises(AttributeError):
        genlab.no_such_name  # noqa: B018


def test_a_loaded_run_samples_interpolates_and_plots(tmp_path):
    shutil.copytree(FIXTURES / "cgan", tmp_path / "cgan")
    run = genlab.load_run(tmp_path / "cgan")
    assert (run.step, run.epoch, run.num_classes) == (16, 2, 10)
    assert torch.equal(run.sample(8, seed=3), run.loaded.sample(8, seed=3))
    threes = run.sample(4, seed=1, labels=[3])
    assert torch.equal(threes, run.loaded.generate(run.loaded.latents(4, 1), torch.full((4,), 3)))
    assert run.interpolate(seeds=[1, 2, 3], steps=5, label=2).shape == (9, 1, 28, 28)
    paths = run.plot_curves(tmp_path / "c.png")
    assert [p.name for p in paths] == ["c.png", "c.svg"]
    folder = run.save_images(run.sample(3), tmp_path / "imgs")
    assert sorted(p.name for p in folder.iterdir()) == ["sample_000000.png", "sample_000001.png",
                                                        "sample_000002.png"]
    assert run.records()


def test_train_takes_a_config_and_resumes(data_env, tmp_path):
    from genlab.recipe import load_config

    cfg = load_config(ROOT / "configs" / "demo_fashion_mnist_dcgan.yaml", ["model.latent_dim=8", "model.hidden_dim=8"])
    quiet = ["train.epochs=1", "train.max_steps=2", "eval.every=0", "log.progress=false", "log.tensorboard=false",
             "data.verify=false", "train.device=cpu"]  # the tiny IDX files are not the published ones
    run = genlab.train(cfg, quiet, run_dir=tmp_path / "r", log=lambda *_: None)
    assert run.step == 2 and run.cfg.model.latent_dim == 8
    resumed = genlab.train(None, ["train.max_steps=4"], run_dir=tmp_path / "r", resume=True, log=lambda *_: None)
    assert resumed.step == 4
    with pytest.raises(ConfigError, match="model.latent_dim"):
        genlab.train(None, ["model.latent_dim=16"], run_dir=tmp_path / "r", resume=True, log=lambda *_: None)


def test_bad_input_is_a_genlab_error(tmp_path):
    shutil.copytree(FIXTURES / "dcgan-ema", tmp_path / "run")
    with pytest.raises(GenlabError, match="not a genlab run folder"):
        genlab.load_run(tmp_path / "missing")
    with pytest.raises(ConfigError, match="split="):
        genlab.evaluate(tmp_path / "run", against="fashion-mnist:test")
    with pytest.raises(GenlabError, match="neither a run folder"):
        genlab.evaluate(tmp_path / "nothing-here", against="fashion-mnist:test")
    (tmp_path / "imgs").mkdir()
    with pytest.raises(ConfigError, match="against="):
        genlab.evaluate(tmp_path / "imgs")
    with pytest.raises(ConfigError, match="neither a folder nor a dataset"):
        genlab.evaluate(tmp_path / "imgs", against="no-such-set:test")
    with pytest.raises(ConfigError, match="positive"):
        genlab.load_run(tmp_path / "run").sample(0)
