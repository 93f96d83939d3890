"""The installed ``genlab`` executable answers bad input with one line and exit 2, never a traceback.

Run as a subprocess exactly as a user runs it, also with ``click`` made unimportable: Typer >= 0.29 vendors
Click and a fresh ``pip install genlab`` has no ``click`` package (ray brings one into the dev venv, which hid
that the error handler imported it).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("genlab")


def genlab(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def no_click(tmp_path_factory) -> dict:
    """An environment in which ``import click`` fails, as on a fresh install."""
    shim = tmp_path_factory.mktemp("no_click") / "click"
    shim.mkdir()
    (shim / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'click'\", name='click')\n")
    return {"PYTHONPATH": str(shim.parent)}


CASES = [
    (["trian"], ["No such command 'trian'", "train", "genlab --help"]),
    (["sample", "--no-such-option"], ["No such option: --no-such-option", "genlab sample --help"]),
    (["sample"], ["Missing argument", "genlab sample --help"]),
    (["sample", "x", "-n", "abc"], ["'-n'", "integer"]),
    (["eval", "--num-samples", "ten", "x"], ["--num-samples"]),
    (["datasets", "prepare"], ["Missing argument"]),
    (["sample", "/nonexistent/[/bold]run"], ["'/nonexistent/[/bold]run' is not a genlab run folder"]),
    (["train", "model.latnet_dim=3"], ["unknown config key 'model.latnet_dim'"]),
]


# every case without Click (a fresh install); with Click (ray brings it) a few: tests/cli/test_bad_input.py runs
# 36 more bad inputs in that environment
PARAMS = [(a, w, False) for a, w in CASES] + [(a, w, True) for a, w in CASES[:3]]


@pytest.mark.parametrize("args, words, click_installed", PARAMS,
                         ids=[" ".join(a) + (" with-click" if c else " without-click") for a, _, c in PARAMS])
def test_bad_input_gets_one_line_and_exit_2(args, words, click_installed, no_click, tmp_path):
    r = genlab(*args, env=None if click_installed else no_click, cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    assert list(tmp_path.iterdir()) == [], "a failed command wrote files"


def test_no_arguments_shows_the_help_without_an_error_line(no_click):
    r = genlab(env=no_click)
    assert "Traceback" not in r.stderr and "error" not in r.stderr, r.stderr
    assert "Commands" in r.stdout and "train" in r.stdout


def test_a_failure_outside_genlab_errors_is_one_line_too(tmp_path, no_click):
    """An OSError that no check before it caught (a run folder /proc cannot hold) is one line naming the path,
    exit 2: a problem the user can fix, not the "internal error" of a bug."""
    r = genlab("train", "model.name=dcgan", "--run-dir", "/proc/genlab-run", env=no_click, cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr)
    err = r.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "'/proc/genlab-run'" in err and "check the path and its permissions" in err, err
    assert list(tmp_path.iterdir()) == [], "a failed command wrote files"


def test_a_markdown_table_stays_text_where_the_output_is_not_a_terminal(monkeypatch):
    """In a log, Rich's rendering cut a wide table to 80 columns; and a cell like [lr] is not Rich markup."""
    import io

    from genlab import cli

    buf = io.StringIO()
    monkeypatch.setattr(cli.console, "_file", buf)  # "file" would read back, and leave, pytest's stream
    table = "| trial | space [lr] | FID |\n|---|---|---|\n| 14 | " + "x" * 120 + " | 6.85 |"
    cli.print_markdown(table)
    assert buf.getvalue() == table + "\n"
