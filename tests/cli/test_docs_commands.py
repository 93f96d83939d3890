"""Docs that cannot drift from the CLI: every `genlab ...` command line in README.md and docs/*.md names a real
command (and sub-command), and every --option it uses (also in the line's trailing comment) is one of that
command's options, read from the Typer app itself (the click command tree of ``genlab.cli.app``; typer vendors
click, so groups and options are recognised by their attributes: ``commands``, ``opts``).

A line may list alternatives (``genlab interpolate|latent|coverage``), optional parts in brackets
(``[--checkpoint last|best|PATH]``), continuation backslashes and ``python -m genlab`` / ``torchrun ... -m
genlab``; placeholders such as ``RUN`` or ``<recipe>`` are arguments and are not checked."""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer

from genlab.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?$(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
#: `genlab` as a command word, then the rest of the line (a sub-command is a lowercase word, or alternatives a|b)
COMMAND = re.compile(r"(?:^|[\s;&|(])genlab\s+([a-z][a-z0-9|-]*(?:\s.*)?)$")
Command = Any  # a click command of typer's vendored click: .name, .params; a group also has .commands


def command_lines(text: str) -> list[str]:
    """Every `genlab ...` command of a Markdown text: lines of code blocks (backslash continuations joined) and
    inline code spans, from the word after `genlab` to the end (trailing comments included)."""
    found = []
    pieces = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():  # a line quoting a command in backticks: the quote
            pieces += INLINE.findall(line) if "`" in line else [line]
    pieces += INLINE.findall(FENCE.sub("", text))
    found = []
    for piece in pieces:
        code, sep, comment = piece.strip().partition(" #")  # `genlab` inside a comment is prose
        m = COMMAND.search(code.rstrip())
        if m:
            found.append(m.group(1) + sep + comment)
    return found


def tokens(line: str) -> list[str]:
    try:
        out = shlex.split(line, comments=False)
    except ValueError:  # an unbalanced quote in prose
        out = line.split()
    return [t.strip("[](),;") for t in out]


def options_of(cmd: Command) -> set[str]:
    names = {"--help"}
    for p in cmd.params:
        if p.param_type_name == "option":
            names.update(p.opts)
            names.update(p.secondary_opts)
    return names


def check_line(root: Command, line: str) -> list[str]:
    """What in one command line does not exist in the CLI (empty: all of it does)."""
    code, _, comment = line.partition(" #")
    words = tokens(code)
    problems = []
    targets: list[Command] = []
    for name in words[0].split("|"):
        cmd = root.commands.get(name)
        if cmd is None:
            problems.append(f"`genlab {name}` is not a command (commands: {', '.join(sorted(root.commands))})")
            continue
        if hasattr(cmd, "commands") and len(words) > 1 and not words[1].startswith("-") and "|" not in words[0]:
            for sub in words[1].split("|"):
                if sub not in cmd.commands:
                    problems.append(f"`genlab {name} {sub}` is not a command (sub-commands: "
                                    f"{', '.join(sorted(cmd.commands))})")
                else:
                    targets.append(cmd.commands[sub])
        else:
            targets.append(cmd)
    used = [w.split("=", 1)[0] for w in words[1:] if w.startswith("-") and len(w) > 1 and not w[1].isdigit()]
    used += re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", comment)
    for opt in used:
        for cmd in targets:
            if opt not in options_of(cmd):
                problems.append(f"`genlab {words[0]}`: {opt} is not an option of `{cmd.name}` "
                                f"(options: {', '.join(sorted(options_of(cmd)))})")
    return problems


def doc_problems(text: str) -> list[str]:
    root = typer.main.get_command(app)
    assert "train" in root.commands and "curves" in root.commands["plot"].commands
    return [p for line in command_lines(text) for p in check_line(root, line)]


def test_every_documented_command_and_option_exists():
    lines = {doc.name: command_lines(doc.read_text()) for doc in DOCS}
    # the extraction finds the README's commands, sub-commands and alternatives (a broken one would check nothing)
    assert len(lines["README.md"]) > 40 and len(lines) > 3, lines
    assert any(ln.startswith("plot curves") for ln in lines["README.md"])
    assert any(ln.startswith("interpolate|latent|coverage") for ln in lines["README.md"])
    problems = {doc.name: doc_problems(doc.read_text()) for doc in DOCS}
    assert not any(problems.values()), problems


def test_a_misspelt_option_command_or_sub_command_is_found():
    readme = (ROOT / "README.md").read_text()
    assert "genlab train --resume runs/x" in readme and "genlab plot curves runs/demo" in readme
    for wrong, expect in ((readme.replace("genlab train --resume runs/x", "genlab train --resum runs/x", 1),
                           "--resum is not an option of `train`"),
                          (readme.replace("genlab plot curves runs/demo", "genlab plot curve runs/demo", 1),
                           "`genlab plot curve` is not a command"),
                          (readme.replace("genlab datasets list", "genlab dataset list", 1),
                           "`genlab dataset` is not a command"),
                          ("```bash\ngenlab interpolate runs/demo   # linear or slerp (--mode)\n```\n",
                           "--mode is not an option of `interpolate`")):
        found = doc_problems(wrong)
        assert any(expect in p for p in found), (expect, found)


def test_readme_names_every_key_a_resume_may_change():
    from genlab.resume import RESUMABLE_KEYS

    readme = (ROOT / "README.md").read_text()
    start = readme.index("A resume may change only the keys")
    said = readme[start:readme.index("\n\n", start)]
    named = set(re.findall(r"`([a-z_]+(?:\.[a-z_*]+)?)`", said))
    assert named == {k + "*" if k.endswith(".") else k for k in RESUMABLE_KEYS}, named
