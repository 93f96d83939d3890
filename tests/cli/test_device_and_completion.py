"""Every command that runs a network defaults to ``--device auto``; shell completion is on and completes commands
and the shipped recipes' names through the real ``genlab`` executable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from genlab.cli import app, resolve_device
from genlab.errors import ConfigError

EXE = Path(sys.executable).with_name("genlab")
#: the commands that load a generator or a feature extractor
NETWORK_COMMANDS = {"sample", "eval", "eval-folder", "interpolate", "latent", "class-grid", "coverage",
                    "neighbours", "report"}


def _commands(group, prefix: str = "") -> dict:
    out = {}
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out.update(_commands(cmd, f"{prefix}{name} "))
        else:
            out[prefix + name] = cmd
    return out


def test_every_device_option_defaults_to_auto():
    commands = _commands(typer.main.get_command(app))
    with_device = {name: p for name, cmd in commands.items() for p in cmd.params if p.name == "device"}
    assert NETWORK_COMMANDS <= set(with_device), NETWORK_COMMANDS - set(with_device)
    assert {name: p.default for name, p in with_device.items()} == {name: "auto" for name in with_device}
    assert all("cuda" in (p.help or "") and "mps" in (p.help or "") for p in with_device.values())


def test_auto_picks_the_cpu_on_this_machine_and_a_missing_gpu_is_refused():
    assert not torch.cuda.is_available() and not torch.backends.mps.is_available()  # this machine: CPU only
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def _complete(words: str) -> list[str]:
    """What the shell gets for ``words`` (the last one being typed), through Click's completion protocol."""
    env = {"_GENLAB_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    r = CliRunner().invoke(app, [], env=env, prog_name="genlab")
    assert r.exit_code == 0, r.output
    return r.output.split()


def test_shell_completion_script_and_answers():
    # the installed executable prints the script the shell sources
    r = subprocess.run([str(EXE), "--show-completion", "bash"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "SHELL": "/bin/bash"})
    assert r.returncode == 0, r.stderr
    assert "_GENLAB_COMPLETE=complete_bash" in r.stdout
    assert "complete -o default -F _genlab_completion genlab" in r.stdout
    # and what that script asks: commands, options, the shipped recipes' names
    assert _complete("genlab rec") == ["recipes"]
    assert "--device" in _complete("genlab sample runs/x --dev")
    assert _complete("genlab train fashion_mnist_fa") == ["fashion_mnist_fast"]
    shipped = sorted(p.stem for p in (Path(__file__).parents[2] / "configs").glob("fashion_mnist_f*.yaml"))
    assert len(shipped) > 1 and _complete("genlab train fashion_mnist_f") == shipped
    assert _complete("genlab train de") == ["demo", "demo_fashion_mnist_dcgan"]
    assert _complete("genlab train fashion_mnist_fast train.epochs=") == []  # an override: no recipe names
