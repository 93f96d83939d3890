"""Score any generator: ``genlab.evaluate`` of a tensor, an ``.npz`` of images, a folder, a callable
``f(n, seed)``, an ``nn.Module`` and an export, against a dataset or a statistics file; and ``--features auto``:
a checked download with progress from a (local) mirror, the classifier only when that fails, said in the result."""
from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.data.base import to_float
from genlab.errors import ConfigError
from genlab.evaluation import auto_features, summary_line
from genlab.metrics import get_extractor
from genlab.metrics.features import inception_fid
from genlab.metrics.reference import native_ref
from genlab.metrics.work_progress import progress_to
from genlab.scoring import load_image_array

EXE = Path(sys.executable).with_name("genlab")
COMMON = {"metrics": "fid,vendi", "features": "classifier", "verify": False}


@pytest.fixture(scope="module")
def cache(tmp_path_factory, classifier_cache_28):
    dest = tmp_path_factory.mktemp("scorecache")
    shutil.copytree(classifier_cache_28, dest, dirs_exist_ok=True)
    return dest


@pytest.fixture
def env(cache, monkeypatch, tiny_fmnist):
    monkeypatch.setenv("GENLAB_CACHE_DIR", str(cache))
    return {"against": "fashion-mnist:test", "root": str(tiny_fmnist)}


def bar_images(n: int, seed: int) -> torch.Tensor:
    """uint8 (n, 1, 28, 28): a bright bar at a random row band on noise (the tiny dataset's kind of image)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, k in enumerate(torch.randint(0, 10, (n,), generator=g).tolist()):
        x[i, 0, 2 * k:2 * k + 3, 2:26] = 220
    return x


def test_every_kind_of_image_set_gives_the_numbers_of_its_images(tmp_path, env):
    images = bar_images(48, 0)
    base = genlab.evaluate(images, **env, **COMMON)
    assert base["protocol"]["num_generated"] == 48 and base["fid"] > 0 and base["vendi"]["score"] > 1
    np.savez(tmp_path / "samples.npz", arr_0=images.permute(0, 2, 3, 1).numpy())  # guided-diffusion's layout
    assert torch.equal(load_image_array(tmp_path / "samples.npz"), images)
    genlab.save_images(to_float(images), tmp_path / "folder")
    for source in (to_float(images), tmp_path / "samples.npz", tmp_path / "folder", images.numpy()):
        r = genlab.evaluate(source, **env, **COMMON)
        assert r["fid"] == pytest.approx(base["fid"], rel=1e-6), type(source)
        assert r["vendi"]["score"] == pytest.approx(base["vendi"]["score"], rel=1e-6)
    half = genlab.evaluate(images, num_samples=24, **env, **COMMON)
    assert half["protocol"]["num_generated"] == 24
    with pytest.raises(genlab.errors.GenlabError, match="49 samples asked of a set of 48"):
        genlab.evaluate(images, num_samples=49, **env, **COMMON)


def test_callables_and_modules_draw_seeded_images(env, gan_run):
    def f(n, seed):
        return bar_images(n, 1000 + seed)

    a = genlab.evaluate(f, num_samples=40, batch_size=16, **env, **COMMON)
    b = genlab.evaluate(f, num_samples=40, batch_size=16, **env, **COMMON)
    c = genlab.evaluate(f, num_samples=40, batch_size=16, seed=1, **env, **COMMON)
    assert a["fid"] == b["fid"] != c["fid"] and a["protocol"]["generated"]["sampler"] == "f"
    G = genlab.load_run(gan_run).generator
    m = genlab.evaluate(G, num_samples=40, **env, **COMMON)  # G has latent_dim: N(0, I) latents of that size
    assert m["protocol"]["generated"]["sampler"] == type(G).__name__ and m["fid"] > 0
    with pytest.raises(ConfigError, match="pass latent_dim="):
        genlab.evaluate(torch.nn.Sequential(torch.nn.Linear(8, 784)), num_samples=8, **env, **COMMON)


def test_an_export_scores_exactly_as_its_run(tmp_path, env, gan_run):
    out = genlab.export_generator(gan_run, tmp_path / "export")
    kw = {"num_samples": 40, "metrics": "fid", "features": "classifier", "verify": False}
    from_export = genlab.evaluate(out, **kw)
    from_run = genlab.evaluate(gan_run, **kw)
    assert from_export["fid"] == from_run["fid"] and from_export["protocol"]["reference"]["split"] == "test"
    # `genlab features stats RUN|EXPORT`: the statistics of the same 40 samples, from either
    _, run_stats, meta = genlab.feature_stats(gan_run, tmp_path / "run.npz", features="classifier", num_samples=40)
    _, export_stats, _ = genlab.feature_stats(out, tmp_path / "export.npz", features="classifier", num_samples=40)
    assert run_stats.n == 40 and np.array_equal(run_stats.mu, export_stats.mu) and meta["source"]["step"] > 0


def test_a_statistics_file_is_a_reference_too(tmp_path, env):
    images = bar_images(48, 0)
    path, stats, meta = genlab.feature_stats(env["against"], tmp_path / "test.npz", features="classifier",
                                              root=env["root"], verify=False)
    assert meta["source"]["split"] == "test" and stats.n == 64 and meta["extractor"]["name"] == "classifier"
    direct = genlab.evaluate(images, **env, **COMMON)
    with pytest.raises(ConfigError, match="classifier extractor is trained on a labeled dataset"):
        genlab.evaluate(images, against=str(path), metrics="fid", features="classifier")
    # the classifier is a dataset's: given as an extractor, a statistics file made with it is a reference
    classifier = get_extractor("classifier", dataset=native_ref("fashion-mnist", "test", root=env["root"]))
    from_file = genlab.evaluate(images, against=str(path), metrics="fid", features=classifier)
    assert from_file["fid"] == pytest.approx(direct["fid"], rel=1e-9)
    assert from_file["protocol"]["reference"]["genlab"]["source"]["dataset"] == "fashion-mnist"


class Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP mirror of the weights files (GENLAB_WEIGHTS_MIRROR) holding a file that is NOT Inception's."""
    root = tmp_path / "mirror"
    root.mkdir()
    (root / inception_fid.WEIGHTS_FILE).write_bytes(b"not the weights" * 100_000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Files(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("GENLAB_OFFLINE")
    monkeypatch.setenv("GENLAB_WEIGHTS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    yield root
    server.shutdown()


def test_auto_downloads_with_progress_and_falls_back_only_when_it_fails(mirror, monkeypatch, env, gan_run):
    reports = []
    with progress_to(lambda task, done, total, note="": reports.append((task, done, total))):
        name, why = auto_features("auto")
    assert name == "classifier" and "download failed" in why and "sha256" in why
    task = f"downloading {inception_fid.WEIGHTS_FILE}"
    assert reports[-1] == (task, 1_500_000, 1_500_000) and len(reports) >= 2  # one report per MiB read
    assert not inception_fid.weights_cache_path().exists()  # the wrong file was not kept
    monkeypatch.setenv("GENLAB_OFFLINE", "1")
    assert auto_features("auto") == ("classifier", f"FID Inception weights {inception_fid.WEIGHTS_FILE} not found "
                                                   "and downloads are off ($GENLAB_OFFLINE)")
    r = genlab.evaluate(gan_run, metrics="fid", num_samples=32, verify=False)  # features: the protocol's "auto"
    assert r["protocol"]["extractor"] == "classifier" and r["protocol"]["features_requested"] == "auto"
    assert "not comparable with published numbers" in summary_line(r)
    assert "downloads are off" in r["protocol"]["features_note"]


def test_cli_paper_protocol_offline_is_one_line_and_help_lists_the_protocols(gan_run, tmp_path):
    run = subprocess.run([str(EXE), "eval", str(gan_run), "--protocol", "paper", "--out", str(tmp_path / "e.json")],
                         capture_output=True, text=True, timeout=300)
    out = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 2 and "Traceback" not in out
    assert f"{inception_fid.WEIGHTS_FILE} not found and downloads are off ($GENLAB_OFFLINE)" in out
    assert not (tmp_path / "e.json").exists()
    from typer.testing import CliRunner

    from genlab.cli import app

    helped = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    text = " ".join(helped.output.replace("│", " ").split())
    assert "--protocol" in text and "paper: published FID tables" in text and "genlab: genlab's default" in text
    assert "--reference-stats" in text and "--resize" in text
