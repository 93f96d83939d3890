"""genlab.deletion: genlab deletes only what it can prove it wrote, never a protected folder, and an output path
never replaces a run's own files. Every "nothing deleted" check compares every file of the user's folder
(names, sizes and contents) before and after."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genlab.deletion import protected_reason
from genlab.errors import RunError
from genlab.export import META_FILE, WEIGHTS_FILE, export_generator, load_generator
from genlab.rundir import EXPORT_MARKER, RunDir, check_output_file, genlab_file_at

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs_v010"


def contents(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: files by content, links by target, folders as "dir"."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = f"-> {p.readlink()}" if p.is_symlink() else "dir" if p.is_dir() else p.read_bytes()
    return out


def documents(folder: Path) -> Path:
    """A user's folder of their own files."""
    (folder / "photos").mkdir(parents=True)
    (folder / "thesis.tex").write_text("\\chapter{One}\n")
    (folder / "photos" / "cat.png").write_bytes(b"\x89PNG not really")
    (folder / ".hidden").write_text("secret\n")
    return folder


def lightning_project(folder: Path) -> Path:
    """The layout of a PyTorch Lightning / Hydra project: config.yaml and checkpoints/ too."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "lightning_logs" / "version_0").mkdir(parents=True)
    (folder / ".hydra").mkdir()
    (folder / "config.yaml").write_text("model:\n  lr: 0.001\ntrainer:\n  max_epochs: 10\n")
    (folder / "checkpoints" / "epoch=9-step=1000.ckpt").write_bytes(b"weights of a month of GPU time")
    (folder / ".hydra" / "overrides.yaml").write_text("[]\n")
    return folder


# ------------------------------------------------------------------------------------------ protected folders
def test_protected_folders_are_named(tmp_path, monkeypatch):
    home = tmp_path / "home" / "me"
    work = home / "project" / "work"
    work.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert protected_reason("/") == "the root folder"
    assert protected_reason("/proc") == "a mount point"
    assert protected_reason(".") == "the current folder" and protected_reason(work) == "the current folder"
    assert protected_reason("..").startswith("a parent of the current folder")
    assert protected_reason(home).startswith("a parent of the current folder")  # cwd is inside $HOME
    monkeypatch.chdir(tmp_path)
    assert protected_reason(home) == "your home folder ($HOME)"
    assert protected_reason(tmp_path / "home").startswith("a parent of your home folder")
    assert protected_reason(work) is None and protected_reason(tmp_path / "nowhere") is None


# ------------------------------------------------------------------------------------------ export --overwrite
def export_of(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "dcgan-ema"
    shutil.copytree(FIXTURES / "dcgan-ema", run)
    return run


def test_export_overwrite_never_deletes_a_users_folder(tmp_path, monkeypatch):
    run = export_of(tmp_path)
    docs = documents(tmp_path / "docs")
    before = contents(docs)
    with pytest.raises(RunError) as e:
        export_generator(run, docs, overwrite=True)
    assert "refusing to --overwrite" in str(e.value) and "not a genlab export folder" in str(e.value)
    assert contents(docs) == before
    # $HOME from $HOME, the current folder, a parent of it: refused even when they look like an export
    home = documents(tmp_path / "home")
    export_generator(run, tmp_path / "e")
    for name in (WEIGHTS_FILE, META_FILE, EXPORT_MARKER):
        shutil.copy(tmp_path / "e" / name, home / name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    before = contents(tmp_path)
    for target, why in ((home, "the current folder"), (Path("."), "the current folder"),
                        (tmp_path, "a parent of the current folder")):
        with pytest.raises(RunError, match=why):
            export_generator(run, target, overwrite=True)
        assert contents(tmp_path) == before
    monkeypatch.chdir(tmp_path / "runs")
    with pytest.raises(RunError, match="your home folder"):
        export_generator(run, home, overwrite=True)
    assert contents(tmp_path) == before


def test_export_overwrite_replaces_only_an_earlier_export(tmp_path):
    run = export_of(tmp_path)
    out = tmp_path / "export"
    export_generator(run, out)
    assert json.loads((out / EXPORT_MARKER).read_text())["files"] == [WEIGHTS_FILE, META_FILE]
    export_generator(run, out, checkpoint="step_000000008.pt", overwrite=True)
    assert load_generator(out).info.step == 8
    (out / "notes.txt").write_text("mine")  # a user's file inside an export: the export is no longer provable
    before = contents(out)
    with pytest.raises(RunError, match="notes.txt"):
        export_generator(run, out, overwrite=True)
    assert contents(out) == before
    # an export of an earlier genlab (no marker): exactly its two files
    old = tmp_path / "old_export"
    old.mkdir()
    for name in (WEIGHTS_FILE, META_FILE):
        shutil.copy(out / name, old / name)
    export_generator(run, old, overwrite=True)
    assert load_generator(old).info.step == 16 and (old / EXPORT_MARKER).is_file()
    (old / EXPORT_MARKER).unlink()
    (old / META_FILE).write_text(json.dumps({"format": "someone-else"}))
    with pytest.raises(RunError, match="not a genlab export folder"):
        export_generator(run, old, overwrite=True)
    assert not list(tmp_path.glob(".old_export*")) and not list(tmp_path.glob(".export*"))  # no debris


# ------------------------------------------------------------------------------------------ train --overwrite
def test_train_overwrite_refuses_another_tools_project_and_a_run_holding_user_files(tmp_path):
    project = lightning_project(tmp_path / "project")
    before = contents(project)
    with pytest.raises(RunError) as e:
        RunDir.of(project).create(overwrite=True)
    assert "refusing to --overwrite" in str(e.value) and "not a genlab run folder" in str(e.value)
    assert contents(project) == before
    # genlab 0.1.0 runs (no marker) are recognised by their whole set of files ...
    old = tmp_path / "v010"
    shutil.copytree(FIXTURES / "dcgan-ema", old)
    (old / "notes.txt").write_text("what I tried\n")  # ... and nothing else
    before = contents(old)
    with pytest.raises(RunError, match="notes.txt"):
        RunDir.of(old).create(overwrite=True)
    assert contents(old) == before
    (old / "notes.txt").unlink()
    (old / "config.yaml").write_text("model:\n  lr: 0.1\n")  # not a genlab config
    with pytest.raises(RunError, match="not a genlab config"):
        RunDir.of(old).create(overwrite=True)
    shutil.copy(FIXTURES / "dcgan-ema" / "config.yaml", old / "config.yaml")
    with RunDir.of(old).create(overwrite=True):
        assert sorted(p.name for p in old.iterdir()) == [".genlab-run", ".lock", "checkpoints", "samples"]


def test_train_overwrite_removes_links_not_what_they_point_to(tmp_path):
    docs = documents(tmp_path / "docs")
    before = contents(docs)
    run = RunDir.of(tmp_path / "run")
    run.create().release()
    shutil.rmtree(run.checkpoints)
    run.checkpoints.symlink_to(docs)  # a run whose checkpoints/ is a link to the user's folder
    (run.samples / "mine").symlink_to(docs / "thesis.tex")
    with run.create(overwrite=True):
        assert run.checkpoints.is_dir() and not run.checkpoints.is_symlink()
    assert contents(docs) == before


# ------------------------------------------------------------------------------------------ output paths
def test_an_output_path_never_names_a_runs_own_files(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "cgan", run)
    for rel in ("metrics.jsonl", "config.yaml", "status.json", "noise.pt", "checkpoints/step_000000016.pt",
                "samples/epoch_0001.png", "tb/x.json", ".genlab-run"):
        assert genlab_file_at(run / rel) is not None, rel
        with pytest.raises(RunError, match="would replace"):
            check_output_file(run / rel, (Path(rel).suffix or ".json",), "--out")
    for rel in ("eval.json", "analysis/curves.png", "report.html", "other.json"):
        assert genlab_file_at(run / rel) is None
    with pytest.raises(RunError, match="writes a .json file"):
        check_output_file(tmp_path / "thesis.tex", (".json",), "--out")
    (tmp_path / "out.json").mkdir()
    with pytest.raises(RunError, match="is a folder"):
        check_output_file(tmp_path / "out.json", (".json",), "--out")
    with pytest.raises(RunError, match="not a regular file"):  # writing would replace the device with a file
        check_output_file("/dev/null", ("",), "--out")


def test_eval_out_cannot_replace_the_runs_records_or_checkpoints(tmp_path):
    import genlab

    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "dcgan-ema", run_dir)
    before = contents(run_dir)
    run = genlab.load_run(run_dir)
    for target in (run_dir / "metrics.jsonl", run_dir / "checkpoints" / "step_000000016.pt",
                   run_dir / "status.json", tmp_path / "result.txt"):
        with pytest.raises(RunError):
            run.evaluate("fid", 16, features="classifier", out=target)
    with pytest.raises(RunError, match="would replace"):
        run.save_grid(run.sample(4), run_dir / "samples" / "epoch_0001.png")
    assert contents(run_dir) == before


def test_a_sweep_never_writes_into_a_users_folder(tmp_path):
    from genlab.sweeps.grid import parse_sweep
    from genlab.sweeps.runner import run_sweep

    docs = documents(tmp_path / "docs")
    (docs / "results.csv").write_text("my,own,results\n")
    before = contents(docs)
    recipe = Path(__file__).resolve().parents[1] / "configs" / "demo_fashion_mnist_dcgan.yaml"
    sweep = parse_sweep({"base": str(recipe), "grid": {"model.latent_dim": [8]}})
    with pytest.raises(RunError, match="not a sweep folder"):
        run_sweep(sweep, docs, log=lambda *_: None)
    assert contents(docs) == before


def test_empty_created_folders_go_only_while_empty_and_never_a_protected_one(tmp_path, monkeypatch):
    from genlab.deletion import remove_empty_created

    inner, outer = tmp_path / "runs" / "a", tmp_path / "runs"
    inner.mkdir(parents=True)
    (outer / "other-run").mkdir()  # another run started beside it
    remove_empty_created([inner, outer])
    assert not inner.exists() and outer.is_dir() and (outer / "other-run").is_dir()
    monkeypatch.chdir(outer / "other-run")  # the current folder, empty, is never removed
    remove_empty_created([outer / "other-run"])
    assert (outer / "other-run").is_dir()
