"""A Ctrl-C whose KeyboardInterrupt is swallowed on the way (a weakref callback, a ``__del__``, a library's broad
``except``) still stops the command: nothing is committed and the CLI exits 130 with its one line."""
from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from genlab import signals
from genlab.io import atomic_write_text


@pytest.fixture
def genlab_sigint():
    """genlab's SIGINT handler and unraisable hook for one test, then the previous ones back."""
    old_handler, old_hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    signals.clear()
    signals.install()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_handler)
        sys.unraisablehook = old_hook
        signals.clear()


class _KillsOnDelete:
    """Sends this process SIGINT from ``__del__``: the KeyboardInterrupt is raised there, where Python ignores it."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


def test_a_ctrl_c_swallowed_in_del_is_remembered_and_blocks_the_next_atomic_write(genlab_sigint, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    obj = _KillsOnDelete()
    del obj  # the handler runs inside __del__; Python swallows its KeyboardInterrupt (silently: our hook)
    gc.collect()
    assert signals.received()
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind
    signals.clear()
    atomic_write_text(target, "new")  # handled: writing works again
    assert target.read_text() == "new"


def test_without_the_cli_handler_nothing_is_remembered(tmp_path):
    """genlab used as a library: importing it installs nothing, so a real SIGINT under Python's own handler,
    caught by the caller, leaves genlab's writes alone."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    signals.clear()
    try:
        import genlab.cli  # noqa: F401  (importing the CLI must not install its handler either)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(10**6))  # the handler runs here
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert not signals.received()
        atomic_write_text(tmp_path / "x", "ok")
        assert (tmp_path / "x").read_text() == "ok"
    finally:
        signal.signal(signal.SIGINT, old)


# The real CLI (genlab.cli.main in its own process, real SIGINT): the report command, with its work replaced by
# one that loses the KeyboardInterrupt the way libraries do and then writes its file as if nothing happened.
SWALLOWING_REPORT = """
import os, signal, sys
import genlab.reporting.html as html
from genlab.io import atomic_write_text

def build_report(paths, out, **kw):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(10**6))  # the handler runs here
    except BaseException as e:
        {swallow}
    return atomic_write_text(out, "<html></html>")

html.build_report = build_report
sys.argv = ["genlab", "report", "{run}", "-o", "{out}"]
from genlab.cli import main
main()
"""


@pytest.mark.parametrize("swallow", ["pass", "raise RuntimeError('state lost') from None"],
                         ids=["ignored", "turned-into-another-error"])
def test_the_cli_exits_130_and_writes_nothing_when_a_ctrl_c_was_swallowed(tmp_path, swallow):
    run, out = tmp_path / "run", tmp_path / "r.html"
    run.mkdir()
    code = textwrap.dedent(SWALLOWING_REPORT).format(swallow=swallow, run=run, out=out)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert r.stderr.strip().splitlines() == [
        "error: interrupted (Ctrl-C); the report was not written (it is written in one go at the end)"]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
