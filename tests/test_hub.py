"""The Hugging Face Hub, without network: `genlab export --format hub` writes the Hub's layout and a model card
that huggingface_hub's own parser reads back (metadata, metrics with their protocol); a generator loads by repo
id from a folder laid out as the Hub cache is (HF_HUB_OFFLINE=1), drawing the run's samples bit for bit; `genlab
push` without the Hub fails with one line."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from huggingface_hub.file_download import repo_folder_name
from PIL import Image

import genlab
from genlab.cli.export import ExportFormatName
from genlab.errors import HubError, RunError
from genlab.export import EXPORT_FORMATS, GeneratorInfo, export_generator
from genlab.hub import push_to_hub
from genlab.rundir import genlab_file_at
from genlab.sampling import load_run

EXE = Path(sys.executable).with_name("genlab")
HUB_FILES = {"model.safetensors", "config.json", "README.md", "samples.png", "recipe.yaml"}


def genlab_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def evaluated(gan_run, classifier_cache_28, tiny_fmnist, tmp_path_factory) -> Path:
    """A copy of the tiny GAN run with an eval.json of its last checkpoint (classifier FID with its bootstrap
    interval, class coverage), computed by genlab's evaluation."""
    run = tmp_path_factory.mktemp("hub") / "run"
    shutil.copytree(gan_run, run)
    cache = tmp_path_factory.mktemp("hub_cache")
    shutil.copytree(classifier_cache_28, cache, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", str(cache))
        genlab.evaluate(run, metrics="fid,ci95,coverage", features="classifier", num_samples=64, batch_size=64,
                        out=run / "eval.json", device="cpu", verify=False)
    return run


def test_export_formats_are_the_cli_choices():
    assert sorted(m.value for m in ExportFormatName) == EXPORT_FORMATS.names()


def test_hub_export_layout_and_model_card(evaluated, tmp_path):
    out = tmp_path / "hub"
    r = genlab_cli("export", str(evaluated), "--format", "hub", "-o", str(out), "--repo-id", "someone/tiny-gan")
    assert r.returncode == 0, r.stderr + r.stdout
    assert {p.name for p in out.iterdir()} == HUB_FILES | {".genlab-export"}
    marker = json.loads((out / ".genlab-export").read_text())  # what --overwrite may replace, and only that
    assert marker["format"] == "hub" and set(marker["files"]) == HUB_FILES
    info = GeneratorInfo.read(out / "config.json")
    assert info.model == "dcgan" and info.latent_dim == 8 and info.data["name"] == "fashion-mnist"
    with Image.open(out / "samples.png") as im:
        assert im.size == (8 * 30 + 2, 8 * 30 + 2)  # 64 images of 28 px, 8 per row

    # the card, read by the Hub's own parser
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.library_name == "genlab" and data.pipeline_tag == "unconditional-image-generation"
    assert {"genlab", "dcgan", "fashion-mnist"} <= set(data.tags)
    assert data.datasets == ["zalando-datasets/fashion_mnist"]
    result = json.loads((evaluated / "eval.json").read_text())
    by_name = {e.metric_name: e for e in data.eval_results}
    assert set(by_name) == {"FID", "classes covered", "class KL to real"}
    fid = by_name["FID"]
    assert fid.metric_type == "fid" and fid.metric_value == pytest.approx(result["fid"], abs=1e-6)
    assert fid.task_type == "unconditional-image-generation" and fid.dataset_split == "test"
    protocol = result["protocol"]
    assert fid.metric_args["extractor_hash"] == protocol["extractor_hash"]
    assert fid.metric_args["num_generated"] == 64 and fid.metric_args["step"] == info.step
    assert fid.metric_args["ci95"] == pytest.approx([result["ci95"]["fid_low"], result["ci95"]["fid_high"]], abs=1e-6)
    assert by_name["classes covered"].metric_value == result["coverage"]["classes_covered"]
    # the text: the grid, how to load it, the numbers, the recipe
    assert "![64 samples, seed 0](samples.png)" in card.text
    assert 'genlab.load_generator("someone/tiny-gan")' in card.text
    assert f"| FID | {result['fid']:.4g} | {result['ci95']['fid_low']:.4g} - " in card.text
    assert "model: dcgan" not in card.text and "name: dcgan" in card.text  # the config's YAML

    # the folder loads as it is, drawing the run's images
    g = genlab.load_generator(out, device="cpu")
    assert torch.equal(g.sample(16, seed=3), load_run(evaluated).sample(16, seed=3))


def test_overwrite_replaces_a_hub_export_but_nothing_genlab_did_not_write(evaluated, tmp_path):
    out = export_generator(evaluated, tmp_path / "hub", format="hub")
    before = (out / "README.md").read_text()
    assert export_generator(evaluated, out, format="hub", overwrite=True, repo_id="someone/x") == out
    assert 'load_generator("someone/x")' in (out / "README.md").read_text() != before
    # an output path of another command never replaces a file of the export (the marker lists them)
    assert "samples.png of the genlab export folder" in genlab_file_at(out / "samples.png")
    assert genlab_file_at(out / "other.png") is None
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="'notes.txt', which genlab does not write into export folders"):
        export_generator(evaluated, out, format="hub", overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").is_file()


def test_numbers_of_another_checkpoint_are_not_claimed(evaluated, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(evaluated, run)
    result = json.loads((run / "eval.json").read_text())
    result["protocol"]["step"] -= 1  # as if eval.json measured an earlier checkpoint
    (run / "eval.json").write_text(json.dumps(result))
    out = export_generator(run, tmp_path / "hub", format="hub")
    card = ModelCard.load(out / "README.md")
    assert card.data.eval_results is None and card.data.library_name == "genlab"
    assert "measured another checkpoint" in card.text and "| FID |" not in card.text


def _hub_cache(export: Path, cache: Path, repo_id: str) -> Path:
    """``export``'s files in ``cache`` as huggingface_hub lays out a downloaded model repo: blobs named by
    hash, snapshots/<commit>/<file> links to them, refs/main naming the commit."""
    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    commit = hashlib.sha1(repo_id.encode()).hexdigest()  # any 40-hex commit id
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    for f in export.iterdir():
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy2(f, blob)
        (repo / "snapshots" / commit / f.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


LOAD_SCRIPT = """
import sys, torch, genlab
from genlab.errors import HubError
g = genlab.load_generator("someone/tiny-gan")
print(g.folder)
torch.save(g.sample(16, seed=3), sys.argv[1])
try:
    genlab.load_generator("someone/not-cached")
except HubError as e:
    print("error:", e)
"""


def test_load_by_repo_id_from_the_hub_cache_offline(evaluated, tmp_path):
    export = export_generator(evaluated, tmp_path / "export", format="hub", repo_id="someone/tiny-gan")
    snapshot = _hub_cache(export, tmp_path / "hf-cache", "someone/tiny-gan")
    out = tmp_path / "samples.pt"
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf-home")}
    r = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(out)], capture_output=True, text=True, timeout=300,
                       env=env, cwd=tmp_path)  # a fresh process: huggingface_hub reads HF_* when imported
    assert r.returncode == 0, r.stderr + r.stdout
    lines = r.stdout.strip().splitlines()
    assert Path(lines[0]) == snapshot  # loaded from the cache's snapshot, not from the export folder
    assert torch.equal(torch.load(out), load_run(evaluated).sample(16, seed=3))
    assert len(lines) == 2 and "'someone/not-cached' is not in the Hub cache" in lines[1]
    assert "HF_HUB_OFFLINE" in lines[1]


def test_push_without_the_hub_is_one_line(evaluated, tmp_path):
    r = genlab_cli("push", str(evaluated), "someone/tiny-gan", env={"HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "HF_HUB_OFFLINE is set" in r.stderr and "Traceback" not in r.stderr
    # no network: an endpoint whose port refuses connections (bound, not listening)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
        r = genlab_cli("push", str(evaluated), "someone/tiny-gan",
                       env={"HF_ENDPOINT": endpoint, "HF_TOKEN": "hf_test", "HF_HOME": str(tmp_path / "hf")})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr + r.stdout
    assert f"the Hub ({endpoint}) cannot be reached" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(HubError, match="is not a Hub repo id; use USER/NAME"):
        push_to_hub(evaluated, "not a repo id")


def test_a_class_conditional_card(tmp_path):
    run = tmp_path / "cgan"
    shutil.copytree(Path(__file__).resolve().parent / "fixtures" / "runs_v010" / "cgan", run)  # a 0.1.0 run
    out = export_generator(run, tmp_path / "hub", format="hub", repo_id="someone/cgan")
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag is None  # the Hub has no class-conditional task
    assert "class-conditional" in card.data.tags and card.data.eval_results is None  # not evaluated
    assert "labels=[3]" in card.text and "Not evaluated" in card.text
    g = genlab.load_generator(out, device="cpu")
    assert torch.equal(g.sample(6, seed=1, labels=[2, 7]), load_run(run).sample(6, seed=1, labels=[2, 7]))
